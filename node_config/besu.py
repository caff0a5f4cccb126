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

Besu version: QBFT with Shanghai (the default EVM fork here) needs Besu 24.5.2 or later, and
26.1.x is broken for it (fixed in 26.2.0); see BESU_VERSION_NOTE, which every config.toml and
the README repeat.

Every value written into these files is validated or escaped: organisation ids (directory names,
`identity`) must be slugs, hosts must be IP addresses (IPv6 is written `[addr]` in enode URLs),
ports and numbers are checked integers, addresses are hex, TOML strings are escaped as TOML basic
strings and each TOML file is parsed back before it is written, and user text in a comment (the
organisation's name) has its control, format and line-separator characters escaped.

The genesis `extraData` follows Besu's QBFT format (block header validator selection):
RLP([32-byte vanity, [validator addresses], vote, round, [seals]]), where the genesis
block has no vote (empty list), round 0 (encoded as the empty byte string) and no seals.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import textwrap
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
import rlp
from eth_utils import is_checksum_address, keccak

from ledger.consortium.definition import (
    SLUG_RE,
    UNSAFE_CATEGORIES,
    ConsortiumDefinition,
    Organisation,
    node_host,
)
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
# the one chosen here (Vyper's `evm_version`). For the Besu versions that run QBFT with
# Shanghai, see BESU_VERSION_NOTE.
EVM_FORKS: dict[str, dict[str, int]] = {
    "london": {"berlinBlock": 0, "londonBlock": 0},
    "shanghai": {"berlinBlock": 0, "londonBlock": 0, "shanghaiTime": 0},
    "cancun": {"berlinBlock": 0, "londonBlock": 0, "shanghaiTime": 0, "cancunTime": 0},
}
DEFAULT_EVM_FORK = "shanghai"
# Besu's QBFT first produced Shanghai blocks in 24.3.0, with wrong withdrawals; 24.5.1 fixed
# that but rejected such blocks, and 24.5.2 is the release to start from (Besu PR #7115: BFT
# blocks' withdrawals are not validated). 26.1.x fails to sync a QBFT chain with Shanghai from
# scratch (Besu issue #9786); 26.2.0 fixes it.
BESU_VERSION_NOTE = ("run Besu 24.5.2 or later, but not 26.1.x: QBFT with Shanghai needs "
                     "24.5.2 or later, and 26.1.x is broken for it (fixed in 26.2.0)")

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
        """The node's enode URL; an IPv6 host is written in brackets, as Besu requires."""
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidInput(f"a P2P port must be an integer from 1 to 65535, not {port!r}")
        return f"enode://{self.public_key.hex()}@{_url_host(host)}:{port}"


def _url_host(host: str) -> str:
    """`host` (an IP address) as written in a URL: IPv6 in brackets, IPv4 as it is.

    Besu reads an enode URL with java.net.URI: without brackets, `fd00::1:30303` has no host
    ("Missing or invalid host or ip address") and the node does not start.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(f"an enode host must be an IP address, not {host!r}") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise InvalidInput(f"an enode host cannot carry an IPv6 zone: {host!r}")
        return f"[{address}]"
    return str(address)


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
    host: str  # the IP address, canonical; IPv6 without brackets (as Besu's p2p-host takes it)
    p2p_port: int
    rpc_port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def p2p_address(self) -> str:
        """host:port as peers dial it; IPv6 in brackets."""
        return f"[{self.host}]:{self.p2p_port}" if self.is_ipv6 else f"{self.host}:{self.p2p_port}"

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
                      request_timeout_seconds, evm_fork, gas_limit, account_balance_wei)
    validators = definition.validators
    if not validators:
        raise ConfigError(f"{source}: no organisation has runs_validator = true "
                          "(a Besu network needs at least one validator)")
    # The definition parser checks all this too; the generator does not rely on it, because a
    # definition can be built in code, and these values become directory names and file text.
    hosts = _check_validators(source, validators)
    accounts = _account_addresses(definition, account_addresses or {})
    ports = _node_ports(definition, validators, hosts)

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
            enode=keys[org.id].enode(hosts[org.id], ports[org.id][0]),
            host=hosts[org.id],
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
    # Every file's text is made (and each TOML file read back) before anything is written.
    genesis_text = json.dumps(genesis, indent=2) + "\n"
    static_nodes = json.dumps(enodes, indent=2) + "\n"
    permissions = _permissions_toml(enodes, allowlist)
    configs = {org.id: _config_toml(org, node, genesis)
               for org, node in zip(validators, nodes, strict=True)}
    out.mkdir(parents=True, exist_ok=True)
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
        _write(node.directory / "static-nodes.json", static_nodes)
        _write(node.directory / "permissions_config.toml", permissions)
        _write(node.directory / "config.toml", configs[org.id])


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
                      timeout: int, evm_fork: str, gas_limit: int, balance: int) -> None:
    for name, value in (("chain_id", chain_id), ("block_period_seconds", block_period),
                        ("epoch_length", epoch), ("request_timeout_seconds", timeout),
                        ("gas_limit", gas_limit)):
        if not _is_int(value) or value < 1:
            raise ConfigError(f"{source}: {name} must be a positive integer, not {value!r}")
    if not _is_int(balance) or balance < 0:
        raise ConfigError(f"{source}: account_balance_wei must be a non-negative integer, "
                          f"not {balance!r}")
    if not isinstance(evm_fork, str) or evm_fork not in EVM_FORKS:
        raise ConfigError(f"{source}: unknown EVM fork {evm_fork!r} "
                          f"(expected one of {', '.join(EVM_FORKS)})")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_validators(source: str, validators: tuple[Organisation, ...]) -> dict[str, str]:
    """Check what of each validator reaches a file; the canonical host of each, by org id."""
    hosts: dict[str, str] = {}
    for org in validators:
        if not isinstance(org.id, str) or not SLUG_RE.fullmatch(org.id):
            # The id names the node's directory: no '/', '..' or line break may get there.
            raise ConfigError(f"{source}: organisation id {org.id!r} is invalid (expected 2 to "
                              "40 lowercase letters, digits or '-', not starting with '-')")
        if org.id in hosts:
            raise ConfigError(f"{source}: organisation id '{org.id}' is used more than once")
        for key, port in (("p2p_port", org.p2p_port), ("rpc_port", org.rpc_port)):
            if port is not None and (not _is_int(port) or not 1 <= port <= 65535):
                raise ConfigError(f"{source}: organisation '{org.id}' has {key} {port!r} out "
                                  "of range (1 to 65535)")
        if not isinstance(org.host, str):
            raise ConfigError(f"{source}: organisation '{org.id}' has host {org.host!r}, "
                              "which is not an IP address")
        try:
            hosts[org.id] = node_host(org.host)
        except ValueError as exc:
            raise ConfigError(f"{source}: organisation '{org.id}' has host {org.host!r}, "
                              f"{exc}") from None
    return hosts


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


def _node_ports(definition: ConsortiumDefinition, validators: tuple[Organisation, ...],
                hosts: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """(p2p, rpc) port of each validator: as given, else the default plus its position."""
    ports: dict[str, tuple[int, int]] = {}
    used: dict[tuple[str, int], str] = {}
    for index, org in enumerate(validators):
        host = hosts[org.id]
        p2p = org.p2p_port if org.p2p_port is not None else DEFAULT_P2P_PORT + index
        rpc = org.rpc_port if org.rpc_port is not None else DEFAULT_RPC_PORT + index
        for port in (p2p, rpc):
            # Defaults can collide with ports given explicitly for another node.
            other = used.get((host, port))
            if other is not None:
                raise ConfigError(f"{definition.source}: nodes of '{other}' and '{org.id}' "
                                  f"would both use port {port} on {host}; set "
                                  "rpc_port/p2p_port explicitly")
            used[(host, port)] = org.id
        ports[org.id] = (p2p, rpc)
    return ports


def _config_toml(org: Organisation, node: BesuNode, genesis: Mapping[str, Any]) -> str:
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
        # The address this node advertises to its peers: a bare IP address, IPv6 without
        # brackets (Besu checks it with Guava's InetAddresses.isInetAddress).
        ("p2p-host", node.host),
    ]
    if node.is_ipv6:
        # Besu listens on 0.0.0.0 by default, an IPv4 address; a node reached over IPv6 listens
        # on all interfaces, IPv6 included ("::").
        options.append(("p2p-interface", "::"))
    options += [
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
    forks = genesis.get("config", {})
    shanghai = "shanghaiTime" in forks
    version = (f"Besu version: {BESU_VERSION_NOTE}. This network's genesis "
               f"{'enables' if shanghai else 'does not enable'} Shanghai.")
    comments = [
        # The name is the one piece of free text here; comment_text escapes what could end
        # the comment line (a newline would let the rest of the name become options).
        f"Besu node of {org.name} ({org.id}), generated by eduledger.",
        "Start it from this directory: besu --config-file=config.toml",
        *textwrap.wrap(version, width=90),
    ]
    return render_toml(comments, options)


def _permissions_toml(enodes: list[str], accounts: list[str]) -> str:
    return render_toml(
        ["Local permissioning: only these nodes may connect, only these accounts transact."],
        [("nodes-allowlist", enodes), ("accounts-allowlist", accounts)],
        multiline_arrays=True, blank_after_comments=False,
    )


# --- writing TOML -------------------------------------------------------------------------
# The standard library reads TOML (tomllib) but does not write it. The files here are flat
# lists of `key = value` with strings, integers, booleans and arrays of strings, which this
# writes; every document is read back with tomllib and must give exactly the options written.

_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_TOML_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                       "\f": "\\f", "\r": "\\r"}


def render_toml(comments: list[str], options: list[tuple[str, Any]], *,
                multiline_arrays: bool = False, blank_after_comments: bool = True) -> str:
    """A TOML document: `comments` as `#` lines (escaped), then one line per option."""
    lines = [f"# {comment_text(comment)}" for comment in comments]
    if comments and blank_after_comments:
        lines.append("")
    for key, value in options:
        if not _BARE_KEY_RE.fullmatch(key):
            raise ValueError(f"not a bare TOML key: {key!r}")
        lines.append(f"{key} = {toml_value(value, multiline_arrays=multiline_arrays)}")
    text = "\n".join(lines) + "\n"
    # The escaping is meant to make this impossible; if it ever fails, nothing is written.
    if len(dict(options)) != len(options) or tomllib.loads(text) != dict(options):
        raise AssertionError("generated TOML does not read back as the options written")
    return text


def toml_value(value: Any, *, multiline_arrays: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        items = [toml_value(v) for v in value]
        if multiline_arrays and items:
            return "[\n" + "".join(f"  {item},\n" for item in items) + "]"
        return "[" + ", ".join(items) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_string(value: str) -> str:
    """`value` as a TOML basic string.

    Quotes and backslashes are escaped, and so is every character in UNSAFE_CATEGORIES
    (control characters, the newline among them, invisible format characters, U+2028 and
    U+2029): TOML forbids control characters in a basic string, and the others would make the
    file display differently from what it holds. Every other character is written as it is, in
    UTF-8. (A JSON string is not a TOML string: JSON writes characters beyond U+FFFF as
    surrogate pairs, which TOML forbids.)
    """
    out = ['"']
    for ch in value:
        short = _TOML_SHORT_ESCAPES.get(ch)
        if short is not None:
            out.append(short)
        elif unicodedata.category(ch) in UNSAFE_CATEGORIES:
            if unicodedata.category(ch) == "Cs":
                raise ValueError("a lone surrogate cannot be written to a TOML file")
            out.append(_unicode_escape(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def comment_text(text: str) -> str:
    """`text` made safe for one `#` comment line: characters in UNSAFE_CATEGORIES (a newline,
    a carriage return, U+2028, a bidirectional override, ...) are shown as \\uXXXX escapes, so
    nothing in it can end the comment or hide what follows."""
    return "".join(_unicode_escape(ch) if unicodedata.category(ch) in UNSAFE_CATEGORIES else ch
                   for ch in text)


def _unicode_escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


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
    "BESU_VERSION_NOTE",
    "BesuNetwork",
    "BesuNode",
    "NodeKey",
    "QbftExtraData",
    "QbftVote",
    "build_genesis",
    "comment_text",
    "decode_qbft_extra_data",
    "encode_qbft_extra_data",
    "generate_besu_network",
    "render_toml",
    "toml_string",
    "toml_value",
    "validator_address",
]
