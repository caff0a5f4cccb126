"""Typed Python bindings for the Consortium and AnchorRegistry contracts (IdentityRegistry's
is in ``ledger.contracts.identity``), and the event decoding of all three.

Writes go through `ChainClient.transact` (signed locally, gas estimated first, so a
rejected call never reaches a block) and raise `ContractReverted` whose `.reason` is the
contract's named reason (see contracts/*.vy). Reads take an optional `block` so that a
verifier can ask what was true when a batch was anchored.

bytes32 values are accepted as 32 bytes or 0x-hex and returned as bytes; addresses are
returned checksummed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import BlockIdentifier

from ledger.chain.client import TxResult
from ledger.chain.interfaces import ChainAPI
from ledger.contracts.compiler import compiled
from ledger.errors import ChainError, InvalidInput

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MAX_PROOF = 32
BlockId = BlockIdentifier


class Role(IntEnum):
    BUREAU = 1
    SCHOOL = 2
    PARTNER = 3
    AUDITOR = 4


class MemberStatus(IntEnum):
    ACTIVE = 1
    SUSPENDED = 2
    REMOVED = 3


class ProposalAction(IntEnum):
    ADMIT = 1
    SUSPEND = 2
    REINSTATE = 3
    REMOVE = 4
    CHANGE_ROLE = 5


class AnchorKind(IntEnum):
    CREDENTIAL = 1
    LEARNING_RECORD = 2
    EVALUATION_DATA = 3
    RESOURCE = 4
    AUDIT_REPORT = 5
    ACCESS_LOG = 6
    SIGNATURE = 7  # a signed or sealed document, timestamped


class LeafStatus(IntEnum):
    VALID = 0  # never changed
    REVOKED = 1  # final
    SUSPENDED = 2
    REINSTATED = 3  # valid again
    SUPERSEDED = 4  # final


# Which roles may anchor which kind (mirrors KIND_ROLES in AnchorRegistry.vy).
KIND_ROLES: dict[AnchorKind, frozenset[Role]] = {
    AnchorKind.CREDENTIAL: frozenset({Role.SCHOOL, Role.PARTNER}),
    AnchorKind.LEARNING_RECORD: frozenset({Role.SCHOOL}),
    AnchorKind.EVALUATION_DATA: frozenset({Role.SCHOOL}),
    AnchorKind.RESOURCE: frozenset({Role.SCHOOL, Role.PARTNER}),
    AnchorKind.AUDIT_REPORT: frozenset({Role.AUDITOR}),
    AnchorKind.ACCESS_LOG: frozenset(Role),
    AnchorKind.SIGNATURE: frozenset({Role.BUREAU, Role.SCHOOL, Role.PARTNER}),
}


# --- value objects ----------------------------------------------------------------


@dataclass(frozen=True)
class MemberInfo:
    member_id: int
    name: str
    role: Role
    status: MemberStatus
    admitted_block: int
    accounts: tuple[str, ...]  # current (not retired) signing accounts

    @property
    def is_active(self) -> bool:
        return self.status is MemberStatus.ACTIVE


@dataclass(frozen=True)
class AccountRights:
    """The Consortium's per-account packed word, decoded."""

    member_id: int  # 0: the account was never bound
    role: Role | None  # None for a retired or unknown account
    status: MemberStatus | None
    current: bool  # a current (not retired) account

    @classmethod
    def unpack(cls, word: int) -> AccountRights:
        role, status = (word >> 64) & 0xFF, (word >> 72) & 0xFF
        return cls(member_id=word & (2**64 - 1),
                   role=Role(role) if role else None,
                   status=MemberStatus(status) if status else None,
                   current=bool((word >> 80) & 1))

    @property
    def can_act(self) -> bool:
        return self.current and self.status is MemberStatus.ACTIVE


@dataclass(frozen=True)
class KeyInfo:
    key: bytes
    member_id: int  # 0: unknown key
    valid_from: int
    valid_until: int | None  # None: still valid; else the first block it is not valid

    @property
    def known(self) -> bool:
        return self.member_id != 0

    def valid_at(self, block_number: int) -> bool:
        return (self.known and self.valid_from <= block_number
                and (self.valid_until is None or block_number < self.valid_until))


@dataclass(frozen=True)
class ProposalInfo:
    proposal_id: int
    action: ProposalAction
    member_id: int  # for admit: 0 until executed, then the new member's id
    role: Role | None
    account: str | None
    proposer: str
    approvals: int
    executed: bool
    created_block: int
    name: str


@dataclass(frozen=True)
class ProposalOutcome:
    proposal_id: int
    executed: bool
    member_id: int | None  # the member acted on, when executed (the new id for admit)
    tx: TxResult


@dataclass(frozen=True)
class RootInfo:
    root: bytes
    member_id: int  # 0: never anchored
    kind: AnchorKind | None
    count: int
    block_number: int

    @property
    def anchored(self) -> bool:
        return self.member_id != 0


@dataclass(frozen=True)
class LeafStatusInfo:
    leaf: bytes
    root: bytes
    status: LeafStatus
    reason: int
    block_number: int  # of the last change; 0 if never changed
    superseded_by: bytes | None

    @property
    def is_valid(self) -> bool:
        return self.status in (LeafStatus.VALID, LeafStatus.REINSTATED)

    @property
    def is_final(self) -> bool:
        """Never valid again (a revoked leaf may still be superseded by its correction)."""
        return self.status in (LeafStatus.REVOKED, LeafStatus.SUPERSEDED)


# --- argument helpers -------------------------------------------------------------


def to_bytes32(value: bytes | bytearray | str, what: str = "value") -> bytes:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidInput(f"{what} is not hex: {value!r}") from None
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        raise InvalidInput(f"{what} must be 32 bytes or 0x-hex, got {type(value).__name__}")
    if len(raw) != 32:
        raise InvalidInput(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def to_address(value: str | LocalAccount | None, what: str = "account") -> str:
    if value is None:
        return ZERO_ADDRESS
    if not isinstance(value, str):
        value = getattr(value, "address", value)
    if not isinstance(value, str) or not Web3.is_address(value):
        raise InvalidInput(f"{what} is not an address: {value!r}")
    return Web3.to_checksum_address(value)


def _opt_address(value: str) -> str | None:
    return None if int(value, 16) == 0 else Web3.to_checksum_address(value)


# --- events -----------------------------------------------------------------------

# The contracts whose events `decode_log` knows; their event signatures are distinct.
EVENT_CONTRACTS = ("Consortium", "AnchorRegistry", "IdentityRegistry")


def _event_signature(event: dict[str, Any]) -> str:
    return f"{event['name']}({','.join(i['type'] for i in event['inputs'])})"


@cache
def _events() -> dict[str, tuple[str, dict[str, Any]]]:
    table: dict[str, tuple[str, dict[str, Any]]] = {}
    for contract in EVENT_CONTRACTS:
        for entry in compiled(contract).abi:
            if entry.get("type") == "event":
                topic = "0x" + keccak(text=_event_signature(entry)).hex()
                if topic in table:  # decode_log tells events apart by topic0 alone
                    raise ChainError(f"event {entry['name']} of {contract} has the signature "
                                     f"of one of {table[topic][0]}")
                table[topic] = (contract, entry)
    return table


def event_abis() -> dict[str, dict[str, Any]]:
    """Every event ABI of the EVENT_CONTRACTS, keyed by topic0 (0x-hex, lowercase)."""
    return {topic: dict(abi) for topic, (_, abi) in _events().items()}


def event_contract(topic0: str | bytes) -> str | None:
    """The contract name ("Consortium", "AnchorRegistry", "IdentityRegistry") of a known
    topic0, else None."""
    hit = _events().get(_hex(topic0))
    return hit[0] if hit else None


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return bytes(HexBytes(value))


def _field(log: Any, name: str) -> Any:
    try:
        return log[name]
    except (TypeError, KeyError):
        return getattr(log, name)


def _normalise(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return Web3.to_checksum_address(value)
    return value


def decode_log(log: Any) -> tuple[str, dict[str, Any]] | None:
    """(event name, args) of one log of the EVENT_CONTRACTS; None for any other event.

    Accepts receipt / eth_getLogs entries as web3 returns them and plain JSON-RPC dicts
    (hex strings).
    """
    topics = list(_field(log, "topics"))
    if not topics:
        return None
    hit = _events().get(_hex(topics[0]))
    if hit is None:
        return None
    _, event = hit
    indexed = [i for i in event["inputs"] if i["indexed"]]
    plain = [i for i in event["inputs"] if not i["indexed"]]
    if len(topics) != len(indexed) + 1:
        return None  # same signature, different indexing: not ours
    args: dict[str, Any] = {}
    for inp, topic in zip(indexed, topics[1:], strict=True):
        args[inp["name"]] = _normalise(inp["type"], abi_decode([inp["type"]], _raw(topic))[0])
    values = abi_decode([i["type"] for i in plain], _raw(_field(log, "data")))
    for inp, value in zip(plain, values, strict=True):
        args[inp["name"]] = _normalise(inp["type"], value)
    ordered = {i["name"]: args[i["name"]] for i in event["inputs"]}
    return event["name"], ordered


def decode_events(logs: Iterable[Any], *,
                  address: str | Iterable[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Decode the logs of the EVENT_CONTRACTS, in order, skipping any other log; with
    `address`, only logs emitted by that contract (or those contracts)."""
    wanted: set[str] | None = None
    if address is not None:
        items = [address] if isinstance(address, str) else list(address)
        wanted = {a.lower() for a in items}
    out = []
    for log in logs:
        if wanted is not None and str(_field(log, "address")).lower() not in wanted:
            continue
        decoded = decode_log(log)
        if decoded is not None:
            out.append(decoded)
    return out


# --- bindings ---------------------------------------------------------------------


MAX_NAME_BYTES = 128  # String[128] in Consortium.vy


def check_name(name: str) -> str:
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidInput(f"an organisation name is at most {MAX_NAME_BYTES} bytes in UTF-8",
                           code="name_too_long")
    return name


class _Binding:
    NAME = ""

    def __init__(self, client: ChainAPI, address: str,
                 deploy_tx: TxResult | None = None) -> None:
        self.client = client
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = client.contract(self.address, compiled(self.NAME).abi)
        self.deploy_tx = deploy_tx

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address})"

    def events(self, result: TxResult | Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
        """This contract's events in a transaction result (or in raw logs)."""
        logs = result.logs if isinstance(result, TxResult) else result
        return decode_events(logs, address=self.address)

    def _send(self, signer: LocalAccount, fn: str, *args: Any,
              gas: int | None = None) -> TxResult:
        return self.client.transact(signer, self.contract, fn, *args, gas=gas)

    def _call(self, fn: str, *args: Any, block: BlockId = "latest") -> Any:
        return self.client.call(self.contract, fn, *args, block=block)

    @classmethod
    def _deploy_contract(cls, client: ChainAPI, signer: LocalAccount,
                         *args: Any) -> tuple[str, TxResult]:
        art = compiled(cls.NAME)
        result = client.deploy(signer, art.abi, art.bytecode, *args)
        if not result.contract_address:
            raise ChainError(f"{cls.NAME} deployment returned no address")
        return result.contract_address, result


class ConsortiumContract(_Binding):
    NAME = "Consortium"

    @classmethod
    def deploy(cls, client: ChainAPI, signer: LocalAccount, bureau_name: str,
               governors: Sequence[str | LocalAccount], threshold: int,
               bureau_account: str | LocalAccount | None = None) -> ConsortiumContract:
        """Deploy; the bureau becomes member 1 with `bureau_account` (default: signer)."""
        check_name(bureau_name)
        address, tx = cls._deploy_contract(
            client, signer, bureau_name, to_address(bureau_account),
            [to_address(g, "governor") for g in governors], int(threshold))
        return cls(client, address, tx)

    @classmethod
    def at(cls, client: ChainAPI, address: str) -> ConsortiumContract:
        return cls(client, address)

    # -- governance --

    def propose(self, signer: LocalAccount, action: ProposalAction, *, member_id: int = 0,
                name: str = "", role: Role | int = 0,
                account: str | LocalAccount | None = None) -> ProposalOutcome:
        check_name(name)
        tx = self._send(signer, "propose", int(action), int(member_id), name, int(role),
                        to_address(account))
        return self._outcome(tx)

    def propose_admit(self, signer: LocalAccount, name: str, role: Role | int,
                      account: str | LocalAccount) -> int:
        return self.propose(signer, ProposalAction.ADMIT, name=name, role=role,
                            account=account).proposal_id

    def propose_suspend(self, signer: LocalAccount, member_id: int) -> int:
        return self.propose(signer, ProposalAction.SUSPEND, member_id=member_id).proposal_id

    def propose_reinstate(self, signer: LocalAccount, member_id: int) -> int:
        return self.propose(signer, ProposalAction.REINSTATE, member_id=member_id).proposal_id

    def propose_remove(self, signer: LocalAccount, member_id: int) -> int:
        return self.propose(signer, ProposalAction.REMOVE, member_id=member_id).proposal_id

    def propose_change_role(self, signer: LocalAccount, member_id: int,
                            role: Role | int) -> int:
        return self.propose(signer, ProposalAction.CHANGE_ROLE, member_id=member_id,
                            role=role).proposal_id

    def approve(self, signer: LocalAccount, proposal_id: int) -> ProposalOutcome:
        return self._outcome(self._send(signer, "approve", int(proposal_id)),
                             proposal_id=int(proposal_id))

    def _outcome(self, tx: TxResult, proposal_id: int | None = None) -> ProposalOutcome:
        executed, member_id = False, None
        for name, args in self.events(tx):
            if name == "ProposalCreated":
                proposal_id = int(args["proposalId"])
            elif name == "ProposalExecuted":
                executed, member_id = True, int(args["memberId"])
        if proposal_id is None:
            raise ChainError("propose mined without a ProposalCreated event")
        return ProposalOutcome(proposal_id, executed, member_id, tx)

    # -- a member's own accounts and keys --

    def add_account(self, signer: LocalAccount, account: str | LocalAccount) -> TxResult:
        return self._send(signer, "addAccount", to_address(account))

    def retire_account(self, signer: LocalAccount, account: str | LocalAccount) -> TxResult:
        return self._send(signer, "retireAccount", to_address(account))

    def add_signing_key(self, signer: LocalAccount, public_key: bytes | str) -> TxResult:
        """Register a 32-byte ed25519 public key, valid from the block of this tx."""
        return self._send(signer, "addSigningKey", to_bytes32(public_key, "public key"))

    def retire_signing_key(self, signer: LocalAccount, public_key: bytes | str) -> TxResult:
        return self._send(signer, "retireSigningKey", to_bytes32(public_key, "public key"))

    # -- views --

    def member_of(self, account: str | LocalAccount, *, block: BlockId = "latest") -> int:
        return int(self._call("memberOf", to_address(account), block=block))

    def member(self, member_id: int, *, block: BlockId = "latest") -> MemberInfo:
        """Raises ContractReverted("unknown-member") for an id never admitted."""
        name, role, status, admitted, accounts = self._call("member", int(member_id),
                                                            block=block)
        return MemberInfo(int(member_id), name, Role(role), MemberStatus(status),
                          int(admitted), tuple(Web3.to_checksum_address(a) for a in accounts))

    def role_of(self, account: str | LocalAccount, *,
                block: BlockId = "latest") -> Role | None:
        role = int(self._call("roleOf", to_address(account), block=block))
        return Role(role) if role else None

    def is_active(self, account: str | LocalAccount, *, block: BlockId = "latest") -> bool:
        return bool(self._call("isActive", to_address(account), block=block))

    def is_current_account(self, account: str | LocalAccount, *,
                           block: BlockId = "latest") -> bool:
        return bool(self._call("isCurrentAccount", to_address(account), block=block))

    def anchor_rights(self, account: str | LocalAccount, *,
                      block: BlockId = "latest") -> AccountRights:
        return AccountRights.unpack(int(self._call("anchorRights", to_address(account),
                                                   block=block)))

    def key_info(self, public_key: bytes | str, *, block: BlockId = "latest") -> KeyInfo:
        key = to_bytes32(public_key, "public key")
        member_id, valid_from, valid_until = self._call("keyInfo", key, block=block)
        return KeyInfo(key, int(member_id), int(valid_from), int(valid_until) or None)

    def key_valid_at(self, member_id: int, public_key: bytes | str, block_number: int, *,
                     block: BlockId = "latest") -> bool:
        return bool(self._call("keyValidAt", int(member_id),
                               to_bytes32(public_key, "public key"), int(block_number),
                               block=block))

    def member_count(self, *, block: BlockId = "latest") -> int:
        return int(self._call("memberCount", block=block))

    def governors(self, *, block: BlockId = "latest") -> list[str]:
        return [Web3.to_checksum_address(a) for a in self._call("governors", block=block)]

    def is_governor(self, account: str | LocalAccount, *, block: BlockId = "latest") -> bool:
        return bool(self._call("isGovernor", to_address(account), block=block))

    def threshold(self, *, block: BlockId = "latest") -> int:
        return int(self._call("threshold", block=block))

    def proposal_count(self, *, block: BlockId = "latest") -> int:
        return int(self._call("proposalCount", block=block))

    def proposal(self, proposal_id: int, *, block: BlockId = "latest") -> ProposalInfo:
        """Raises ContractReverted("unknown-proposal") for an id never proposed."""
        (action, member_id, role, account, proposer, approvals, executed, created,
         name) = self._call("proposal", int(proposal_id), block=block)
        return ProposalInfo(int(proposal_id), ProposalAction(action), int(member_id),
                            Role(role) if role else None, _opt_address(account),
                            Web3.to_checksum_address(proposer), int(approvals),
                            bool(executed), int(created), name)

    def has_approved(self, proposal_id: int, governor: str | LocalAccount, *,
                     block: BlockId = "latest") -> bool:
        return bool(self._call("hasApproved", int(proposal_id), to_address(governor),
                               block=block))


class AnchorRegistryContract(_Binding):
    NAME = "AnchorRegistry"

    @classmethod
    def deploy(cls, client: ChainAPI, signer: LocalAccount,
               consortium: str | ConsortiumContract) -> AnchorRegistryContract:
        target = consortium.address if isinstance(consortium, ConsortiumContract) else consortium
        address, tx = cls._deploy_contract(client, signer, to_address(target, "consortium"))
        return cls(client, address, tx)

    @classmethod
    def at(cls, client: ChainAPI, address: str) -> AnchorRegistryContract:
        return cls(client, address)

    def consortium_address(self) -> str:
        return Web3.to_checksum_address(self._call("CONSORTIUM"))

    def anchor(self, signer: LocalAccount, root: bytes | str, kind: AnchorKind | int,
               count: int, metadata_hash: bytes | str = ZERO32, *,
               gas: int | None = None) -> TxResult:
        if not 0 <= int(count) < 2**32:
            raise InvalidInput(f"count must fit in 32 bits, got {count}")
        return self._send(signer, "anchor", to_bytes32(root, "root"), int(kind), int(count),
                          to_bytes32(metadata_hash, "metadata hash"), gas=gas)

    def set_status(self, signer: LocalAccount, leaf: bytes | str, root: bytes | str,
                   proof: Sequence[bytes | str], status: LeafStatus | int, reason: int = 0,
                   superseded_by: bytes | str | None = None, *,
                   gas: int | None = None) -> TxResult:
        if len(proof) > MAX_PROOF:
            raise InvalidInput(f"a proof has at most {MAX_PROOF} hashes, got {len(proof)}")
        if not 0 <= int(reason) < 2**16:
            raise InvalidInput(f"reason must fit in 16 bits, got {reason}")
        return self._send(signer, "setStatus", to_bytes32(leaf, "leaf"),
                          to_bytes32(root, "root"),
                          [to_bytes32(p, f"proof element {i}") for i, p in enumerate(proof)],
                          int(status), int(reason),
                          ZERO32 if superseded_by is None else to_bytes32(superseded_by,
                                                                          "superseded_by"),
                          gas=gas)

    def revoke(self, signer: LocalAccount, leaf: bytes | str, root: bytes | str,
               proof: Sequence[bytes | str], reason: int = 0) -> TxResult:
        return self.set_status(signer, leaf, root, proof, LeafStatus.REVOKED, reason)

    def suspend(self, signer: LocalAccount, leaf: bytes | str, root: bytes | str,
                proof: Sequence[bytes | str], reason: int = 0) -> TxResult:
        return self.set_status(signer, leaf, root, proof, LeafStatus.SUSPENDED, reason)

    def reinstate(self, signer: LocalAccount, leaf: bytes | str, root: bytes | str,
                  proof: Sequence[bytes | str], reason: int = 0) -> TxResult:
        return self.set_status(signer, leaf, root, proof, LeafStatus.REINSTATED, reason)

    def supersede(self, signer: LocalAccount, leaf: bytes | str, root: bytes | str,
                  proof: Sequence[bytes | str], superseded_by: bytes | str,
                  reason: int = 0) -> TxResult:
        return self.set_status(signer, leaf, root, proof, LeafStatus.SUPERSEDED, reason,
                               superseded_by)

    def is_anchored(self, root: bytes | str, *, block: BlockId = "latest") -> bool:
        return bool(self._call("isAnchored", to_bytes32(root, "root"), block=block))

    def root_info(self, root: bytes | str, *, block: BlockId = "latest") -> RootInfo:
        raw = to_bytes32(root, "root")
        member_id, kind, count, block_number = self._call("rootInfo", raw, block=block)
        return RootInfo(raw, int(member_id), AnchorKind(kind) if kind else None, int(count),
                        int(block_number))

    def status_of(self, leaf: bytes | str, root: bytes | str, *,
                  block: BlockId = "latest") -> LeafStatusInfo:
        """Status of `leaf` under `root` (statuses are kept per root, see the contract)."""
        raw_leaf, raw_root = to_bytes32(leaf, "leaf"), to_bytes32(root, "root")
        status, reason, block_number, superseded_by = self._call(
            "statusOf", raw_leaf, raw_root, block=block)
        sup = bytes(superseded_by)
        return LeafStatusInfo(raw_leaf, raw_root, LeafStatus(status), int(reason),
                              int(block_number), None if sup == ZERO32 else sup)

    def status_changed_by(self, leaf: bytes | str, root: bytes | str, *,
                          block: BlockId = "latest") -> int:
        return int(self._call("statusChangedBy", to_bytes32(leaf, "leaf"),
                              to_bytes32(root, "root"), block=block))


def deploy_all(client: ChainAPI, signer: LocalAccount, bureau_name: str,
               governors: Sequence[str | LocalAccount], threshold: int,
               bureau_account: str | LocalAccount | None = None,
               ) -> tuple[ConsortiumContract, AnchorRegistryContract]:
    """Deploy a Consortium and an AnchorRegistry bound to it."""
    consortium = ConsortiumContract.deploy(client, signer, bureau_name, governors, threshold,
                                           bureau_account)
    registry = AnchorRegistryContract.deploy(client, signer, consortium)
    return consortium, registry
