"""Anchoring: batches of salted leaf hashes → one Merkle root on chain, exactly once.

A batch is *accepted* when its leaves, root and every proof are committed to SQL in one
transaction (status pending). Only then is the root sent to the chain. The registry
anchors a root once and only once, so resuming is simple and safe: for every batch not
yet marked anchored, look the root up on chain; if it is there, record where; if not,
send it. A crash between any two steps therefore ends, after restart, with the batch
anchored exactly once and SQL agreeing with the chain.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import Engine, Table, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ledger.anchoring.interfaces import BatchRecords
from ledger.anchoring.models import AnchorBatch, AnchorLeaf, AnchorStatus
from ledger.anchoring.proof import AnchorProof
from ledger.chain import ChainAPI
from ledger.contracts.bindings import AnchorKind, AnchorRegistryContract
from ledger.errors import Conflict, ContractReverted, InvalidInput, NotFound
from ledger.keys.interfaces import AccountSource
from ledger.merkle import MerkleTree
from ledger.store import session_scope
from ledger.store.columns import utcnow

log = logging.getLogger("eduledger.anchoring")

MAX_BATCH = 100_000
MAX_IDEMPOTENCY_KEY = 128  # the column's length (PostgreSQL enforces it, SQLite does not)

ZERO32 = b"\x00" * 32
_ANCHOR_LEAF: Table = AnchorLeaf.__table__  # type: ignore[attr-defined]


def parse_kind(value: str | int | AnchorKind) -> AnchorKind:
    if isinstance(value, AnchorKind):
        return value
    try:
        return AnchorKind(value) if isinstance(value, int) else AnchorKind[value.upper()]
    except (KeyError, ValueError):
        names = ", ".join(k.name.lower() for k in AnchorKind)
        raise InvalidInput(f"unknown anchor kind {value!r} (expected one of {names})",
                           code="unknown_kind") from None


def same_request(batch: AnchorBatch, request_hash: str | None) -> AnchorBatch:
    """The batch an idempotency key made, if this request is the one that made it; a key
    reused for another request is refused (IETF Idempotency-Key: 422), not answered with a
    batch that does not hold what was asked."""
    if batch.request_hash is not None and request_hash is not None and batch.request_hash != request_hash:
        raise InvalidInput("this Idempotency-Key was already used for a different request; use a new "
                           "key for a new request", code="idempotency_key_reused")
    return batch


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _proof_json(proof: list[bytes]) -> str:
    """``json.dumps`` of the hex siblings, built directly (hex needs no escaping): a batch
    of 10,000 leaves has 140,000 of them."""
    return '["0x' + '", "0x'.join([p.hex() for p in proof]) + '"]' if proof else "[]"


def _leaf_bytes(value: bytes | str) -> bytes:
    raw = HexBytes(value) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InvalidInput("every leaf must be a 32-byte hash", code="bad_leaf")
    return bytes(raw)


class AnchoringService:
    """``AnchoringAPI`` over one AnchorRegistry: batches in SQL, roots on chain."""

    def __init__(self, engine: Engine, client: ChainAPI, registry: AnchorRegistryContract,
                 signers: AccountSource, *, from_block: int = 0) -> None:
        self.engine = engine
        self.client = client
        self.registry = registry
        self.signers = signers
        self.from_block = from_block
        self._in_flight: dict[str, int] = {}  # batch id -> callers of process() now, here
        self._in_flight_lock = threading.Lock()
        anchored_abi = next(e for e in registry.contract.abi
                            if e.get("type") == "event" and e.get("name") == "Anchored")
        self._anchored_topic = _hex(event_abi_to_log_topic(cast(ABIEvent, anchored_abi)))

    # -- accept ------------------------------------------------------------------

    def accept(self, member_org: str, kind: str | int | AnchorKind, leaves: Sequence[bytes | str], *,
               metadata_hash: bytes | None = None, idempotency_key: str | None = None,
               request_hash: str | None = None, records: BatchRecords | None = None) -> AnchorBatch:
        """Validate, build the tree and commit the batch; nothing is on chain yet.

        `records.attach(session, batch, tree)` adds the caller's own rows (e.g. the
        credentials behind the leaves) to the same transaction, so they exist exactly when
        the batch does.
        """
        kind_ = parse_kind(kind)
        if not leaves:
            raise InvalidInput("a batch needs at least one leaf", code="empty_batch")
        if len(leaves) > MAX_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH} leaves", code="batch_too_large")
        if idempotency_key is not None:
            if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY or "\x00" in idempotency_key:
                raise InvalidInput(f"an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} characters, "
                                   "without NUL", code="bad_idempotency_key")
            existing = self._by_idempotency_key(idempotency_key)
            if existing is not None:
                return same_request(existing, request_hash)
        tree = MerkleTree([_leaf_bytes(leaf) for leaf in leaves])
        batch = AnchorBatch(
            kind=kind_.name.lower(), root=_hex(tree.root), leaf_count=len(tree.leaves),
            metadata_hash=_hex(metadata_hash or ZERO32), member_org=member_org,
            idempotency_key=idempotency_key, request_hash=request_hash,
        )
        rows = [
            {"batch_id": batch.id, "position": i, "leaf_hash": _hex(leaf), "proof_json": _proof_json(proof)}
            for i, (leaf, proof) in enumerate(zip(tree.leaves, tree.proofs(), strict=True))
        ]
        try:
            with session_scope(self.engine) as session:
                session.add(batch)
                session.flush()
                # a Core INSERT (one executemany): the rows are complete, and the ORM's bulk
                # path costs as much again as the database
                session.execute(insert(_ANCHOR_LEAF), rows)
                if records is not None:
                    records.attach(session, batch, tree)
        except IntegrityError:
            if idempotency_key is not None:
                existing = self._by_idempotency_key(idempotency_key)
                if existing is not None:
                    return same_request(existing, request_hash)
            raise Conflict("a leaf of this batch, or its root, is already anchored in "
                           "another batch", code="duplicate_leaf") from None
        return batch

    def _by_idempotency_key(self, key: str) -> AnchorBatch | None:
        with session_scope(self.engine) as session:
            return session.exec(select(AnchorBatch).where(AnchorBatch.idempotency_key == key)).first()

    # -- anchor ------------------------------------------------------------------

    def anchor(self, member_org: str, kind: str | int | AnchorKind, leaves: Sequence[bytes | str], *,
               metadata_hash: bytes | None = None, idempotency_key: str | None = None,
               request_hash: str | None = None, records: BatchRecords | None = None) -> AnchorBatch:
        """Accept a batch and anchor it now; a batch the contract rejects leaves no trace
        (`records.detach(session, batch_id)` removes what `records.attach` added)."""
        batch = self.accept(member_org, kind, leaves, metadata_hash=metadata_hash,
                            idempotency_key=idempotency_key, request_hash=request_hash, records=records)
        try:
            return self.process(batch.id)
        except ContractReverted:
            self._discard(batch.id, records)
            raise

    def _discard(self, batch_id: str, records: BatchRecords | None = None) -> None:
        with session_scope(self.engine) as session:
            if records is not None:
                records.detach(session, batch_id)
            session.execute(delete(AnchorLeaf).where(AnchorLeaf.batch_id == batch_id))  # type: ignore[arg-type]
            session.execute(delete(AnchorBatch).where(AnchorBatch.id == batch_id))  # type: ignore[arg-type]

    def process(self, batch_id: str) -> AnchorBatch:
        with self._in_flight_lock:
            self._in_flight[batch_id] = self._in_flight.get(batch_id, 0) + 1
        try:
            return self._process(batch_id)
        finally:
            with self._in_flight_lock:
                left = self._in_flight.pop(batch_id) - 1
                if left:
                    self._in_flight[batch_id] = left

    def _process(self, batch_id: str) -> AnchorBatch:
        batch = self.get(batch_id)
        if batch.status == AnchorStatus.ANCHORED.value:
            return batch
        root = HexBytes(batch.root)
        found = self._find_anchor(root)
        if found is None:
            signer = self.signers.account_for(batch.member_org)
            try:
                metadata = bytes(HexBytes(batch.metadata_hash)) if batch.metadata_hash else ZERO32
                result = self.registry.anchor(signer, bytes(root), parse_kind(batch.kind).value,
                                              batch.leaf_count, metadata)
            except ContractReverted as exc:
                if exc.reason != "root-exists":
                    self._mark_failed(batch.id, exc.reason)
                    raise
                # Another attempt got there first (e.g. before a crash): find it.
                found = self._find_anchor(root)
                if found is None:
                    raise
            else:
                found = (result.tx_hash, result.block_number)
        return self._mark_anchored(batch.id, *found)

    def resume(self) -> list[AnchorBatch]:
        """Finish every accepted batch that is not anchored yet: after a restart, and on every
        background pass, so a batch accepted while the chain was unreachable is anchored as
        soon as it is back. A batch that a request of this process is anchoring right now is
        left to it (both would succeed, but the second transaction would be wasted)."""
        with session_scope(self.engine) as session:
            ids = session.exec(
                select(AnchorBatch.id)
                .where(AnchorBatch.status.in_([AnchorStatus.PENDING.value,  # type: ignore[attr-defined]
                                               AnchorStatus.SUBMITTED.value]))
                .order_by(AnchorBatch.created_at)  # type: ignore[arg-type]
            ).all()
        done = []
        with self._in_flight_lock:
            busy = set(self._in_flight)
        for batch_id in ids:
            if batch_id in busy:
                continue
            try:
                done.append(self.process(batch_id))
            except ContractReverted as exc:
                log.warning("batch %s was rejected by the contract: %s", batch_id, exc.reason)
        return done

    def _find_anchor(self, root: bytes) -> tuple[str, int] | None:
        logs = self.client.get_logs(self.registry.address, self.from_block,
                                    topics=[self._anchored_topic, _hex(root)])
        if not logs:
            return None
        entry = logs[0]
        return HexBytes(entry["transactionHash"]).to_0x_hex(), int(entry["blockNumber"])

    def _mark_anchored(self, batch_id: str, tx_hash: str, block_number: int) -> AnchorBatch:
        block = self.client.block(block_number)
        with session_scope(self.engine, write=True) as session:
            batch = session.get(AnchorBatch, batch_id)
            assert batch is not None
            batch.status = AnchorStatus.ANCHORED.value
            batch.tx_hash = tx_hash.lower()
            batch.block_number = block_number
            batch.block_time = datetime.fromtimestamp(int(block["timestamp"]), UTC)
            batch.chain_id = self.client.chain_id
            batch.contract_address = self.registry.address.lower()
            batch.error = None
            batch.updated_at = utcnow()
            session.add(batch)
        return batch

    def _mark_failed(self, batch_id: str, reason: str) -> None:
        with session_scope(self.engine, write=True) as session:
            batch = session.get(AnchorBatch, batch_id)
            if batch is not None:
                batch.status = AnchorStatus.FAILED.value
                batch.error = reason
                batch.updated_at = utcnow()
                session.add(batch)

    # -- read --------------------------------------------------------------------

    def get(self, batch_id: str) -> AnchorBatch:
        with session_scope(self.engine) as session:
            batch = session.get(AnchorBatch, batch_id)
        if batch is None:
            raise NotFound(f"no anchor batch {batch_id}", code="batch_not_found")
        return batch

    def proof_for(self, leaf: bytes | str) -> AnchorProof | None:
        """The proof of an anchored leaf; None if it is in no anchored batch."""
        leaf_hex = _hex(_leaf_bytes(leaf))
        with session_scope(self.engine) as session:
            row = session.exec(select(AnchorLeaf).where(AnchorLeaf.leaf_hash == leaf_hex)).first()
            batch = session.get(AnchorBatch, row.batch_id) if row is not None else None
        if row is None or batch is None or batch.status != AnchorStatus.ANCHORED.value:
            return None
        return self.proof_in(batch, row.leaf_hash, json.loads(row.proof_json))

    def proof_in(self, batch: AnchorBatch, leaf_hash: str, proof: list[str]) -> AnchorProof:
        return AnchorProof(leaf=leaf_hash, proof=proof, root=batch.root,
                           chain_id=batch.chain_id or self.client.chain_id,
                           contract=self.registry.address, tx_hash=batch.tx_hash,
                           block_number=batch.block_number)
