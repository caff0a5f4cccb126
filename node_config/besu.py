"""Generate a Hyperledger Besu QBFT network for a consortium definition.

Output layout (`out_dir`):

    genesis.json                     the network's genesis
    <org-id>/                        one self-contained directory per validator organisation
        genesis.json                 a copy, so the directory can be shipped on its own
        key, key.pub                 node key pair (key is mode 0600)
        config.toml                  Besu options; paths are relative to this directory
        static-nodes.json            enode URLs of all validators
        permissions_config.toml      nodes and accounts allowlists

Start a node with `cd <out_dir>/<org-id> && besu --config-file=config.toml`.

The genesis `extraData` follows Besu's QBFT format (block header validator selection):
RLP([32-byte vanity, [validator addresses], vote, round, [seals]]), where the genesis
block has no vote (empty list), round 0 (encoded as the empty byte string) and no seals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
import rlp
from eth_utils import is_checksum_address, keccak

from ledger.consortium.definition import ConsortiumDefinition, Organisation
from ledger.errors import ConfigError, InvalidInput

DEFAULT_CHAIN_ID = 4478
DEFAULT_P2P_PORT = 30303
DEFAULT_RPC_PORT = 8545
DEFAULT_BALANCE_WEI = 10**6 * 10**18
# Free-gas networks: a large block gas limit (Besu's free-gas guide uses this value).
DEFAULT_GAS_LIMIT = 0x1FFFFFFFFFFFFF
# Istanbul/QBFT block identification, required by Besu in BFT genesis files.
QBFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
RPC_APIS = ("ETH", "NET", "WEB3", "QBFT", "PERM", "TXPOOL")
# EVM milestones at genesis. Contracts must be compiled for an EVM version no newer than
# the one chosen here (Vyper's `evm_version`). Besu supports Shanghai in QBFT since 24.1.
EVM_FORKS: dict[str, dict[str, int]] = {
    "london": {"berlinBlock": 0, "londonBlock": 0},
    "shanghai": {"berlinBlock": 0, "londonBlock": 0, "shanghaiTime": 0},
    "cancun": {"berlinBlock": 0, "londonBlock": 0, "shanghaiTime": 0, "cancunTime": 0},
}
DEFAULT_EVM_FORK = "shanghai"

_VANITY = bytes(32)
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_VOTE_ADD = b"\xff"  # Besu's Vote.ADD_BYTE_VALUE; a drop vote is the empty byte string
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# --- extraData ----------------------------------------------------------------------------


def encode_qbft_extra_data(validators: Iterable[bytes | str], *, sort: bool = True) -> str:
    """QBFT genesis extraData for `validators` (20-byte addresses or hex strings), 0x-hex.

    Sorted ascending by default, as Besu's documentation asks for the initial validators.
    `sort=False` keeps the given order, which is what `besu rlp encode` does.
    """
    addresses = [_address_bytes(v) for v in validators]
    if len(set(addresses)) != len(addresses):
        raise InvalidInput("duplicate validator address in QBFT extraData")
    if sort:
        addresses.sort()
    # [vanity, validators, no vote, round 0 as the empty scalar, no seals]
    return "0x" + rlp.encode([_VANITY, addresses, [], b"", []]).hex()


@dataclass(frozen=True)
class QbftVote:
    recipient: str
    add: bool


@dataclass(frozen=True)
class QbftExtraData:
    vanity: bytes
    validators: tuple[str, ...]  # 0x-prefixed lowercase hex, in encoded order
    vote: QbftVote | None
    round: int
    seals: tuple[bytes, ...]


def decode_qbft_extra_data(extra_data: str | bytes) -> QbftExtraData:
    """Decode QBFT extraData (hex string or bytes); raises InvalidInput if malformed."""
    raw = _hex_bytes(extra_data, "QBFT extraData") if isinstance(extra_data, str) else extra_data
    try:
        items = rlp.decode(bytes(raw))
    except rlp.exceptions.DecodingError as exc:
        raise InvalidInput(f"QBFT extraData is not valid RLP: {exc}") from None
    if not isinstance(items, list) or len(items) != 5:
        raise InvalidInput("QBFT extraData must be an RLP list of 5 items")
    vanity, validators, vote, round_bytes, seals = items
    if not isinstance(vanity, bytes) or len(vanity) != 32:
        raise InvalidInput("QBFT extraData vanity must be 32 bytes")
    if not isinstance(validators, list) or not all(
        isinstance(v, bytes) and len(v) == 20 for v in validators
    ):
        raise InvalidInput("QBFT extraData validators must be a list of 20-byte addresses")
    if not isinstance(round_bytes, bytes) or len(round_bytes) > 4 or round_bytes[:1] == b"\x00":
        # Besu reads the round as a canonical int scalar: no leading zero, at most 4 bytes.
        raise InvalidInput("QBFT extraData round must be a scalar of at most 4 bytes")
    if not isinstance(seals, list) or not all(isinstance(s, bytes) for s in seals):
        raise InvalidInput("QBFT extraData seals must be a list of byte strings")
    return QbftExtraData(
        vanity=vanity,
        validators=tuple("0x" + v.hex() for v in validators),
        vote=_decode_vote(vote),
        round=int.from_bytes(round_bytes, "big"),
        seals=tuple(seals),
    )


def _decode_vote(vote: Any) -> QbftVote | None:
    if vote == []:
        return None
    if (
        isinstance(vote, list)
        and len(vote) == 2
        and isinstance(vote[0], bytes)
        and len(vote[0]) == 20
        and vote[1] in (_VOTE_ADD, b"")
    ):
        return QbftVote(recipient="0x" + vote[0].hex(), add=vote[1] == _VOTE_ADD)
    raise InvalidInput("QBFT extraData vote must be empty or [address, 0xff | empty]")


# --- node keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeKey:
    """A secp256k1 node key pair; the address is the node's (validator's) address."""

    private_key: bytes
    public_key: bytes  # 64 bytes: uncompressed point without the 0x04 prefix
    address: str  # 0x-prefixed lowercase hex

    @classmethod
    def from_private_key(cls, private_key: bytes) -> NodeKey:
        point = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
        return cls(private_key=private_key, public_key=point, address=validator_address(point))

    @classmethod
    def generate(cls) -> NodeKey:
        return cls.from_private_key(coincurve.PrivateKey().secret)

    @classmethod
    def from_seed(cls, seed: bytes | str, label: str) -> NodeKey:
        """Deterministic key for tests and reproducible demos; never for production."""
        seed_bytes = seed.encode() if isinstance(seed, str) else seed
        counter = 0
        while True:
            candidate = keccak(b"eduledger-node-key\x00" + seed_bytes + b"\x00" + label.encode()
                               + counter.to_bytes(4, "big"))
            if 0 < int.from_bytes(candidate, "big") < _SECP256K1_N:
                return cls.from_private_key(candidate)
            counter += 1  # astronomically rare: the hash is not a valid scalar

    def enode(self, host: str, port: int) -> str:
        return f"enode://{self.public_key.hex()}@{host}:{port}"


def validator_address(public_key: bytes) -> str:
    """Address of a node: the last 20 bytes of keccak256 of its 64-byte public key."""
    if len(public_key) == 65 and public_key[0] == 4:
        public_key = public_key[1:]
    if len(public_key) != 64:
        raise InvalidInput("a node public key must be 64 bytes (uncompressed, no 0x04 prefix)")
    return "0x" + keccak(public_key)[-20:].hex()


# --- network generation -------------------------------------------------------------------


@dataclass(frozen=True)
class BesuNode:
    org_id: str
    directory: Path
    address: str
    enode: str
    host: str
    p2p_port: int
    rpc_port: int

    @property
    def rpc_url(self) -> str:
        # The RPC interface listens on the loopback interface only (see _config_toml).
        return f"http://127.0.0.1:{self.rpc_port}"


@dataclass(frozen=True)
class BesuNetwork:
    directory: Path
    genesis_file: Path
    chain_id: int
    extra_data: str
    nodes: tuple[BesuNode, ...]
    accounts: tuple[str, ...]

    @property
    def validators(self) -> tuple[str, ...]:
        """Validator addresses, ascending, as in extraData."""
        return tuple(sorted(node.address for node in self.nodes))


def generate_besu_network(
    definition: ConsortiumDefinition,
    out_dir: str | Path,
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_period_seconds: int = 2,
    epoch_length: int = 30000,
    request_timeout_seconds: int = 4,
    account_addresses: Mapping[str, str] | None = None,
    account_balance_wei: int = DEFAULT_BALANCE_WEI,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    evm_fork: str = DEFAULT_EVM_FORK,
    seed: bytes | str | None = None,
    overwrite: bool = False,
) -> BesuNetwork:
    """Write genesis, node keys and per-node Besu configuration for the validator orgs.

    `account_addresses` maps organisation ids to their signing account addresses: those
    accounts are funded in the genesis alloc and are the accounts allowlist (account
    permissioning is always on, so with no accounts nobody can send transactions until
    one is added with perm_addAccountsToAllowlist). `seed` makes node keys deterministic,
    for tests only. An existing network in `out_dir` is kept unless `overwrite` is true,
    because regenerating it replaces the validator keys.
    """
    source = definition.source
    out = Path(out_dir)
    _check_parameters(source, chain_id, block_period_seconds, epoch_length,
                      request_timeout_seconds, evm_fork)
    validators = definition.validators
    if not validators:
        raise ConfigError(f"{source}: no organisation has runs_validator = true "
                          "(a Besu network needs at least one validator)")
    accounts = _account_addresses(definition, account_addresses or {})
    ports = _node_ports(definition, validators)

    existing = [out / "genesis.json"] + [out / org.id / "key" for org in validators]
    if not overwrite and any(path.exists() for path in existing):
        raise ConfigError(f"{out}: already holds a generated network (genesis.json or node "
                          "keys); choose another directory or overwrite it explicitly")

    keys = {
        org.id: NodeKey.from_seed(seed, org.id) if seed is not None else NodeKey.generate()
        for org in validators
    }
    nodes = tuple(
        BesuNode(
            org_id=org.id,
            directory=out / org.id,
            address=keys[org.id].address,
            enode=keys[org.id].enode(org.host, ports[org.id][0]),
            host=org.host,
            p2p_port=ports[org.id][0],
            rpc_port=ports[org.id][1],
        )
        for org in validators
    )
    extra_data = encode_qbft_extra_data([node.address for node in nodes])
    genesis = build_genesis(
        extra_data,
        chain_id=chain_id,
        block_period_seconds=block_period_seconds,
        epoch_length=epoch_length,
        request_timeout_seconds=request_timeout_seconds,
        alloc={address: account_balance_wei for address in accounts.values()},
        gas_limit=gas_limit,
        evm_fork=evm_fork,
    )
    allowlist = list(accounts.values())
    try:
        _write_network(out, genesis, validators, nodes, keys, allowlist, overwrite)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the network: {exc.strerror or exc}") from None
    return BesuNetwork(
        directory=out,
        genesis_file=out / "genesis.json",
        chain_id=chain_id,
        extra_data=extra_data,
        nodes=nodes,
        accounts=tuple(allowlist),
    )


def _write_network(out: Path, genesis: dict[str, Any], validators: tuple[Organisation, ...],
                   nodes: tuple[BesuNode, ...], keys: Mapping[str, NodeKey],
                   allowlist: list[str], overwrite: bool) -> None:
    enodes = [node.enode for node in nodes]
    out.mkdir(parents=True, exist_ok=True)
    genesis_text = json.dumps(genesis, indent=2) + "\n"
    _write(out / "genesis.json", genesis_text)
    for org, node in zip(validators, nodes, strict=True):
        node.directory.mkdir(exist_ok=True)
        if overwrite and (node.directory / "data").exists():
            # Chain data of the old genesis would make Besu refuse to start.
            shutil.rmtree(node.directory / "data")
        key = keys[org.id]
        _write(node.directory / "key", "0x" + key.private_key.hex(), mode=0o600)
        _write(node.directory / "key.pub", "0x" + key.public_key.hex())
        _write(node.directory / "genesis.json", genesis_text)
        _write(node.directory / "static-nodes.json", json.dumps(enodes, indent=2) + "\n")
        _write(node.directory / "permissions_config.toml", _permissions_toml(enodes, allowlist))
        _write(node.directory / "config.toml", _config_toml(org, node))


def build_genesis(
    extra_data: str,
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_period_seconds: int = 2,
    epoch_length: int = 30000,
    request_timeout_seconds: int = 4,
    alloc: Mapping[str, int] | None = None,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    evm_fork: str = DEFAULT_EVM_FORK,
) -> dict[str, Any]:
    """The genesis document for a free-gas QBFT network (as a JSON-ready dict)."""
    config: dict[str, Any] = {"chainId": chain_id, **EVM_FORKS[evm_fork]}
    # Free gas: with London's base fee, zeroBaseFee plus min-gas-price=0 on every node.
    config["zeroBaseFee"] = True
    config["qbft"] = {
        "blockperiodseconds": block_period_seconds,
        "epochlength": epoch_length,
        "requesttimeoutseconds": request_timeout_seconds,
    }
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "extraData": extra_data,
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": QBFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "baseFeePerGas": "0x0",
        "alloc": {
            address.removeprefix("0x"): {"balance": hex(balance)}
            for address, balance in (alloc or {}).items()
        },
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
    }


def _check_parameters(source: str, chain_id: int, block_period: int, epoch: int,
                      timeout: int, evm_fork: str) -> None:
    for name, value in (("chain_id", chain_id), ("block_period_seconds", block_period),
                        ("epoch_length", epoch), ("request_timeout_seconds", timeout)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{source}: {name} must be a positive integer, not {value!r}")
    if evm_fork not in EVM_FORKS:
        raise ConfigError(f"{source}: unknown EVM fork '{evm_fork}' "
                          f"(expected one of {', '.join(EVM_FORKS)})")


def _account_addresses(definition: ConsortiumDefinition,
                       given: Mapping[str, str]) -> dict[str, str]:
    """Validated account addresses, 0x lowercase, in the definition's organisation order."""
    source = definition.source
    for org_id in given:
        if org_id not in definition.ids:
            raise ConfigError(f"{source}: account address given for unknown organisation "
                              f"'{org_id}'")
    accounts: dict[str, str] = {}
    for org_id in definition.ids:
        if org_id not in given:
            continue
        try:
            address = "0x" + _address_bytes(given[org_id]).hex()
        except InvalidInput:
            raise ConfigError(f"{source}: organisation '{org_id}' has invalid account "
                              f"address {given[org_id]!r}") from None
        other = next((o for o, a in accounts.items() if a == address), None)
        if other is not None:
            raise ConfigError(f"{source}: organisations '{other}' and '{org_id}' have the "
                              f"same account address {address}")
        accounts[org_id] = address
    return accounts


def _node_ports(definition: ConsortiumDefinition,
                validators: tuple[Organisation, ...]) -> dict[str, tuple[int, int]]:
    """(p2p, rpc) port of each validator: as given, else the default plus its position."""
    ports: dict[str, tuple[int, int]] = {}
    used: dict[tuple[str, int], str] = {}
    for index, org in enumerate(validators):
        p2p = org.p2p_port if org.p2p_port is not None else DEFAULT_P2P_PORT + index
        rpc = org.rpc_port if org.rpc_port is not None else DEFAULT_RPC_PORT + index
        for port in (p2p, rpc):
            # Defaults can collide with ports given explicitly for another node.
            other = used.get((org.host, port))
            if other is not None:
                raise ConfigError(f"{definition.source}: nodes of '{other}' and '{org.id}' "
                                  f"would both use port {port} on {org.host}; set "
                                  "rpc_port/p2p_port explicitly")
            used[(org.host, port)] = org.id
        ports[org.id] = (p2p, rpc)
    return ports


def _config_toml(org: Organisation, node: BesuNode) -> str:
    # Paths are relative to the node directory: Besu resolves them against its working
    # directory, so the node is started from there and the directory can be moved.
    options: list[tuple[str, Any]] = [
        ("identity", org.id),
        ("data-path", "data"),
        ("genesis-file", "genesis.json"),
        ("node-private-key-file", "key"),
        ("min-gas-price", 0),
        # An archive node: verification and audits read the consortium's state at the block
        # a batch was anchored (was the issuer a member then? its key valid?), which may be
        # years back. Besu's default Bonsai storage keeps only the last 512 blocks' state
        # (17 minutes at 2 s blocks); Forest, synced in full, keeps every block's.
        ("data-storage-format", "FOREST"),
        ("sync-mode", "FULL"),
        ("p2p-host", node.host),
        ("p2p-port", node.p2p_port),
        # Peers come from static-nodes.json; discovery would only find strangers.
        ("discovery-enabled", False),
        ("static-nodes-file", "static-nodes.json"),
        ("rpc-http-enabled", True),
        # JSON-RPC has no authentication here: it listens on the loopback interface only,
        # for the organisation's own eduledger service.
        ("rpc-http-host", "127.0.0.1"),
        ("rpc-http-port", node.rpc_port),
        ("rpc-http-api", list(RPC_APIS)),
        ("host-allowlist", ["localhost", "127.0.0.1"]),
        ("permissions-nodes-config-file-enabled", True),
        ("permissions-nodes-config-file", "permissions_config.toml"),
        ("permissions-accounts-config-file-enabled", True),
        ("permissions-accounts-config-file", "permissions_config.toml"),
    ]
    lines = [
        f"# Besu node of {org.name} ({org.id}), generated by eduledger.",
        "# Start it from this directory: besu --config-file=config.toml",
        "",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in options]
    return "\n".join(lines) + "\n"


def _permissions_toml(enodes: list[str], accounts: list[str]) -> str:
    return (
        "# Local permissioning: only these nodes may connect, only these accounts transact.\n"
        f"nodes-allowlist = {_toml_array(enodes)}\n"
        f"accounts-allowlist = {_toml_array(accounts)}\n"
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string with ASCII escapes is a valid TOML basic string.
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_array(values: list[str]) -> str:
    if not values:
        return "[]"
    return "[\n" + "".join(f"  {_toml_value(v)},\n" for v in values) + "]"


def _write(path: Path, text: str, *, mode: int = 0o644) -> None:
    # os.open sets the mode at creation, so a secret is never readable by others, even
    # briefly; fchmod fixes the mode of a file that existed before.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(text)


def _address_bytes(value: bytes | str) -> bytes:
    if isinstance(value, bytes | bytearray):
        if len(value) != 20:
            raise InvalidInput(f"an address must be 20 bytes, not {len(value)}")
        return bytes(value)
    if not isinstance(value, str):
        raise InvalidInput(f"an address must be bytes or a hex string, not {type(value).__name__}")
    raw = _hex_bytes(value, "address")
    if len(raw) != 20:
        raise InvalidInput(f"address {value!r} is not 20 bytes")
    digits = value.removeprefix("0x").removeprefix("0X")
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(
        "0x" + digits
    ):
        # Mixed case claims an EIP-55 checksum; a wrong one means a mistyped address.
        raise InvalidInput(f"address {value!r} has an invalid EIP-55 checksum")
    return raw


def _hex_bytes(value: str, what: str) -> bytes:
    digits = value.strip()
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    if len(digits) % 2 or not _HEX_RE.fullmatch(digits):
        raise InvalidInput(f"{what} {value[:80]!r} is not hex")
    return bytes.fromhex(digits)


__all__ = [
    "BesuNetwork",
    "BesuNode",
    "NodeKey",
    "QbftExtraData",
    "QbftVote",
    "build_genesis",
    "decode_qbft_extra_data",
    "encode_qbft_extra_data",
    "generate_besu_network",
    "validator_address",
]
