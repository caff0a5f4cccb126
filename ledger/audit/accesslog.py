"""The access log: every read of personal data, hash-chained and anchored on chain.

Each row says who read (an organisation's id and role, or a holder or the public with
the client address), when (UTC), what (resource kind and id), how (action) and why
(purpose: required when an organisation reads a person's data). Rows form a hash chain::

    row_hash(n) = keccak256(prev_hash_bytes || canonical_json(fields of row n except row_hash))
    prev_hash(n) = row_hash(n - 1),    prev_hash(1) = 32 zero bytes

where the fields are seq, at (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), actor, actor_role, action,
resource_kind, resource_id, purpose, client (the last two may be null) and prev_hash
(``0x`` + 64 lowercase hex digits), and canonical_json is ledger.canonical's RFC 8785 form.

Appending never forks the chain: a writer locks the one-row ``access_log_head`` (seq and
hash of the last row) for the length of its transaction, on PostgreSQL with SELECT ...
FOR UPDATE, on SQLite by starting the transaction with BEGIN IMMEDIATE (the database's
single write lock); it then inserts seq + 1 chained to the head and moves the head, in the
same transaction. ``seq`` is the primary key, so even a writer that skipped the lock could
not create a second row n.

``verify()`` reads one consistent snapshot in chunks and stops at the first row that does
not hold: a gap in seq (a deleted row), a row whose fields no longer match its hash (an
edited row), a prev_hash that is not the previous row's hash (a row inserted, reordered or
edited and re-hashed before it), a row the head does not account for, or a tail cut off
behind the head. Someone who can write the database can rewrite the whole chain after an
edit; ``checkpoint()`` guards against that by anchoring the head hash on chain, and
``verify()`` checks the recomputed hash at every checkpoint's seq against the anchored one
(and, given the registry, that the anchored root really is on chain).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, String, func, insert, inspect, select, type_coerce, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ledger.anchoring.interfaces import AnchoringAPI
from ledger.anchoring.models import AnchorBatch, AnchorStatus
from ledger.audit.models import (
    ACTOR_MAX,
    CLIENT_MAX,
    PURPOSE_MAX,
    RESOURCE_ID_MAX,
    RESOURCE_KIND_MAX,
    AccessLogCheckpointRow,
    AccessLogHeadRow,
    AccessLogRow,
)
from ledger.errors import ConfigError, Conflict, InvalidInput
from ledger.merkle import LEAF_PREFIX, keccak256

__all__ = [
    "ACTIONS",
    "ORG_ROLES",
    "PERSON_ROLES",
    "ZERO_HASH",
    "Access",
    "AccessEntry",
    "AccessLog",
    "AccessLogBroken",
    "AccessLogUnavailable",
    "Checkpoint",
    "VerifyResult",
    "format_time",
    "row_hash",
]

ZERO_HASH = "0x" + "00" * 32
ORG_ROLES = frozenset({"bureau", "school", "partner", "auditor"})
PERSON_ROLES = frozenset({"holder", "public"})
ACTIONS = frozenset({"read", "redeem", "view", "audit_read"})
CHUNK_ROWS = 5_000
MAX_PAGE = 1_000
ANCHOR_KIND = "access_log"

Progress = Callable[[int, int], None]

_LOG = AccessLogRow.__table__  # type: ignore[attr-defined]
_HEAD = AccessLogHeadRow.__table__  # type: ignore[attr-defined]
_CHECKPOINT = AccessLogCheckpointRow.__table__  # type: ignore[attr-defined]
_BATCH = AnchorBatch.__table__  # type: ignore[attr-defined]
_FIELDS = ("seq", "at", "actor", "actor_role", "action", "resource_kind", "resource_id",
           "purpose", "client", "prev_hash", "row_hash")
_RESOURCE_KIND = re.compile(r"[a-z][a-z0-9_]*\Z")
_HEX32 = re.compile(r"0x[0-9a-f]{64}\Z")
_SQLITE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\Z")
_HASHED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False).encode
# C0 and C1 controls (also NUL, which PostgreSQL text refuses) and line/paragraph separators
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# --- errors ---------------------------------------------------------------------------


class AccessLogBroken(Conflict):
    """The chain does not verify where an operation needs it to (e.g. before a checkpoint)."""

    code = "access_log_broken"


class AccessLogUnavailable(ConfigError):
    """The store has no access log tables, or their head row is gone."""

    code = "access_log_unavailable"


# --- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """One access to record (the fields a caller gives; seq, time and hashes are the log's)."""

    actor: str
    actor_role: str
    action: str
    resource_kind: str
    resource_id: str
    purpose: str | None = None
    client: str | None = None


@dataclass(frozen=True)
class AccessEntry:
    """A row of the log as written."""

    seq: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    resource_kind: str
    resource_id: str
    purpose: str | None
    client: str | None
    prev_hash: str
    row_hash: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = format_time(self.at)
        return out


@dataclass(frozen=True)
class VerifyResult:
    """``rows_checked`` counts the rows found intact (before the first broken one)."""

    ok: bool
    rows_checked: int
    first_broken_seq: int | None
    problem: str | None
    checkpoints_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    batch_id: str
    anchored_at: datetime
    root: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["anchored_at"] = format_time(self.anchored_at)
        return out


# --- hashing --------------------------------------------------------------------------


def format_time(at: datetime) -> str:
    """The hashed form of a time: UTC, always with microseconds, ``Z``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("naive datetime: the access log keeps aware UTC times", code="bad_time")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash_fields(seq: int, at: str, actor: str, actor_role: str, action: str,
                 resource_kind: str, resource_id: str, purpose: str | None,
                 client: str | None, prev_hash: str) -> str:
    # Exactly ledger.canonical.canonical_json's bytes for these values (ASCII keys; str, int
    # and None values take its stdlib fast path), without its per-call type walk.
    body = _ENCODE({
        "seq": seq, "at": at, "actor": actor, "actor_role": actor_role, "action": action,
        "resource_kind": resource_kind, "resource_id": resource_id, "purpose": purpose,
        "client": client, "prev_hash": prev_hash,
    }).encode("utf-8")
    return "0x" + keccak256(bytes.fromhex(prev_hash[2:]) + body).hex()


def row_hash(seq: int, at: datetime, actor: str, actor_role: str, action: str,
             resource_kind: str, resource_id: str, purpose: str | None, client: str | None,
             prev_hash: str) -> str:
    """The row hash defined in the module docstring, as ``0x`` + 64 lowercase hex digits."""
    if not _HEX32.match(prev_hash):
        raise InvalidInput("prev_hash must be 0x and 64 lowercase hex digits", code="bad_hash")
    return _hash_fields(seq, format_time(at), actor, actor_role, action, resource_kind,
                        resource_id, purpose, client, prev_hash)


def _head_leaf_root(head_hash: str) -> str:
    """The root of a one-leaf tree over ``head_hash`` (ledger.merkle: the leaf node)."""
    return "0x" + keccak256(LEAF_PREFIX + bytes.fromhex(head_hash[2:])).hex()


# --- input checks ---------------------------------------------------------------------


def _text(value: object, what: str, max_len: int, code: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string", code=code)
    if not value.strip():
        raise InvalidInput(f"{what} must not be empty", code=code)
    if len(value) > max_len:
        raise InvalidInput(f"{what} is longer than {max_len} characters", code=code)
    if _CONTROL.search(value):
        raise InvalidInput(f"{what} contains control characters", code=code)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode", code=code) from None
    return value


def _check(access: Access) -> Access:
    actor = _text(access.actor, "actor", ACTOR_MAX, "bad_actor")
    if access.actor_role not in ORG_ROLES | PERSON_ROLES:
        roles = ", ".join(sorted(ORG_ROLES | PERSON_ROLES))
        raise InvalidInput(f"unknown actor role {access.actor_role!r} (expected one of {roles})",
                           code="bad_actor_role")
    if access.action not in ACTIONS:
        raise InvalidInput(f"unknown action {access.action!r} (expected one of "
                           f"{', '.join(sorted(ACTIONS))})", code="bad_action")
    kind = _text(access.resource_kind, "resource kind", RESOURCE_KIND_MAX, "bad_resource")
    if not _RESOURCE_KIND.match(kind):
        raise InvalidInput("resource kind must be lowercase letters, digits and _",
                           code="bad_resource")
    resource_id = _text(access.resource_id, "resource id", RESOURCE_ID_MAX, "bad_resource")
    purpose = access.purpose
    if purpose is not None and not (isinstance(purpose, str) and purpose.strip()):
        if isinstance(purpose, str):
            purpose = None  # blank: as if not given
        else:
            raise InvalidInput("purpose must be a string", code="bad_purpose")
    if purpose is None:
        if access.actor_role in ORG_ROLES:
            raise InvalidInput("an organisation reading personal data must give its purpose",
                               code="purpose_required")
    else:
        purpose = purpose.strip()
        if len(purpose) > PURPOSE_MAX:
            raise InvalidInput(f"purpose is longer than {PURPOSE_MAX} characters",
                               code="purpose_too_long")
        purpose = _text(purpose, "purpose", PURPOSE_MAX, "bad_purpose")
    client = access.client
    if client is not None:
        client = _text(client, "client", CLIENT_MAX, "bad_client")
        if any(ch.isspace() for ch in client):
            raise InvalidInput("client must not contain spaces", code="bad_client")
    return Access(actor, access.actor_role, access.action, kind, resource_id, purpose, client)


# --- the log --------------------------------------------------------------------------


@dataclass
class _CheckpointInfo:
    seq: int
    head_hash: str
    batch_id: str
    root: str | None
    kind: str | None
    status: str | None
    chain_problem: str | None = None


@dataclass
class _Scan:
    """A verification in progress: where it got and what it found."""

    expected: int  # the next seq
    prev: str  # hash of the row before it
    checked: int = 0
    checkpoints_checked: int = 0
    last_checkpoint: int = 0
    broken_seq: int | None = None
    problem: str | None = None

    def fail(self, seq: int | None, problem: str) -> bool:
        self.broken_seq, self.problem = seq, problem
        return False


class AccessLog:
    """The access log in the SQL store behind ``engine`` (migrated to 0005 or later)."""

    def __init__(self, engine: Engine, *, chunk_rows: int = CHUNK_ROWS) -> None:
        self.engine = engine
        self.chunk_rows = chunk_rows
        self._sqlite = engine.dialect.name == "sqlite"
        # SQLite: BEGIN IMMEDIATE takes the write lock before the head is read.
        self._writer = engine.execution_options(sqlite_immediate=True)
        self._tables_seen = False

    def _ensure_tables(self) -> None:
        """A clear error, instead of an SQL one, for a store not migrated to 0005 yet."""
        if self._tables_seen:
            return
        with self.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
        if not {_LOG.name, _HEAD.name, _CHECKPOINT.name} <= names:
            raise AccessLogUnavailable("this store has no access log: migrate it first",
                                       code="access_log_missing")
        self._tables_seen = True

    # -- write -------------------------------------------------------------------

    def record(self, actor: str, actor_role: str, action: str, resource_kind: str,
               resource_id: str, purpose: str | None = None,
               client: str | None = None) -> AccessEntry:
        """Append one access; returns the row written (committed when this returns)."""
        return self.record_many([Access(actor, actor_role, action, resource_kind, resource_id,
                                        purpose, client)])[0]

    def record_many(self, accesses: Iterable[Access]) -> list[AccessEntry]:
        """Append several accesses in one transaction, in order, all with the same time."""
        checked = [_check(a) for a in accesses]
        if not checked:
            return []
        self._ensure_tables()
        for attempt in range(3):
            try:
                return self._append(checked)
            except IntegrityError:
                # Only a concurrent first-time creation of the head row can collide
                # (seq is assigned under the head lock); try again once it exists.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _append(self, accesses: Sequence[Access]) -> list[AccessEntry]:
        with self._writer.begin() as conn:
            head = conn.execute(
                select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
            ).first()
            if head is None:
                head = self._create_head(conn)
            seq, prev = int(head.seq), str(head.hash)
            at = datetime.now(UTC)
            at_text = format_time(at)
            entries = []
            for a in accesses:
                seq += 1
                h = _hash_fields(seq, at_text, a.actor, a.actor_role, a.action,
                                 a.resource_kind, a.resource_id, a.purpose, a.client, prev)
                entries.append(AccessEntry(seq, at, a.actor, a.actor_role, a.action,
                                           a.resource_kind, a.resource_id, a.purpose, a.client,
                                           prev, h))
                prev = h
            rows = [asdict(e) for e in entries]
            for i in range(0, len(rows), 10_000):
                conn.execute(insert(_LOG), rows[i:i + 10_000])
            conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(seq=seq, hash=prev))
        return entries

    def _create_head(self, conn: Connection) -> Any:
        """The head row is made by the migration; recreate it only for an empty log."""
        if conn.execute(select(_LOG.c.seq).limit(1)).first() is not None:
            raise AccessLogUnavailable("the access log's head row is missing: the log was "
                                       "tampered with; run verification", code="access_log_no_head")
        conn.execute(insert(_HEAD).values(id=1, seq=0, hash=ZERO_HASH))
        return conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
                            .with_for_update()).one()

    # -- read --------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last row; (0, ZERO_HASH) for an empty log."""
        self._ensure_tables()
        with self.engine.connect() as conn:
            row = conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
        if row is None:
            raise AccessLogUnavailable("the access log's head row is missing",
                                       code="access_log_no_head")
        return int(row.seq), str(row.hash)

    def entries(self, after_seq: int = 0, limit: int = 100, *, actor: str | None = None,
                resource_kind: str | None = None,
                resource_id: str | None = None) -> list[AccessEntry]:
        """Rows with seq > after_seq, oldest first, at most ``limit`` (1 to 1000)."""
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise InvalidInput("after_seq must be a non-negative integer", code="bad_cursor")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
        query = select(*(_LOG.c[f] for f in _FIELDS)).where(_LOG.c.seq > after_seq)
        if actor is not None:
            query = query.where(_LOG.c.actor == actor)
        if resource_kind is not None:
            query = query.where(_LOG.c.resource_kind == resource_kind)
        if resource_id is not None:
            query = query.where(_LOG.c.resource_id == resource_id)
        self._ensure_tables()
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_LOG.c.seq).limit(limit)).all()
        return [AccessEntry(*row) for row in rows]

    def checkpoints(self) -> list[Checkpoint]:
        self._ensure_tables()
        query = (select(_CHECKPOINT.c.seq, _CHECKPOINT.c.head_hash, _CHECKPOINT.c.batch_id,
                        _CHECKPOINT.c.anchored_at, _BATCH.c.root, _BATCH.c.tx_hash,
                        _BATCH.c.block_number)
                 .select_from(_CHECKPOINT.outerjoin(_BATCH, _BATCH.c.id == _CHECKPOINT.c.batch_id))
                 .order_by(_CHECKPOINT.c.seq))
        with self.engine.connect() as conn:
            return [Checkpoint(*row) for row in conn.execute(query).all()]

    # -- verify ------------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One read transaction that sees a single consistent state of every table."""
        conn = self.engine.connect()
        try:
            if not self._sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                              postgresql_readonly=True)
            # SQLite (WAL): a read transaction keeps the snapshot of its first read.
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def verify(self, *, progress: Progress | None = None, registry: Any = None) -> VerifyResult:
        """Check the whole chain, the head and every checkpoint; stop at the first break.

        With ``registry`` (an AnchorRegistryContract) each checkpoint's root is also
        looked up on chain; without it only the SQL store is read.
        """
        self._ensure_tables()
        with self._snapshot() as conn:
            head = conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
            checkpoints = self._load_checkpoints(conn)
            if registry is not None:
                for cp in checkpoints.values():
                    cp.chain_problem = _chain_problem(registry, cp)
            scan = _Scan(expected=1, prev=ZERO_HASH)
            total = int(head.seq) if head is not None else 0
            if self._scan(conn, scan, checkpoints, head, stop_after=None, progress=progress,
                          total=total):
                self._check_end(scan, checkpoints, head)
        return VerifyResult(scan.problem is None, scan.checked, scan.broken_seq, scan.problem,
                            scan.checkpoints_checked)

    def _load_checkpoints(self, conn: Connection) -> dict[int, _CheckpointInfo]:
        rows = conn.execute(
            select(_CHECKPOINT.c.seq, _CHECKPOINT.c.head_hash, _CHECKPOINT.c.batch_id,
                   _BATCH.c.root, _BATCH.c.kind, _BATCH.c.status)
            .select_from(_CHECKPOINT.outerjoin(_BATCH, _BATCH.c.id == _CHECKPOINT.c.batch_id))
        ).all()
        return {int(r.seq): _CheckpointInfo(int(r.seq), r.head_hash, r.batch_id, r.root, r.kind,
                                            r.status) for r in rows}

    def _scan(self, conn: Connection, scan: _Scan, checkpoints: dict[int, _CheckpointInfo],
              head: Any, *, stop_after: int | None, progress: Progress | None,
              total: int) -> bool:
        """Check rows from ``scan.expected`` on; False (with the problem) at the first break."""
        head_seq = int(head.seq) if head is not None else None
        cols = [_LOG.c[f] for f in _FIELDS]
        # Read times as stored (text on SQLite) and parse here: a tampered value must be
        # reported as a broken row, not crash the reader.
        if self._sqlite:
            cols[1] = type_coerce(_LOG.c.at, String).label("at")
        else:  # the hashed form, made by the server (cheaper than datetimes in Python)
            cols[1] = func.to_char(func.timezone("UTC", _LOG.c.at),
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"').label("at")
        last = scan.expected - 1
        while True:
            query = select(*cols).where(_LOG.c.seq > last)
            if stop_after is not None:
                query = query.where(_LOG.c.seq <= stop_after)
            rows = conn.execute(query.order_by(_LOG.c.seq).limit(self.chunk_rows)).all()
            if not rows:
                return True
            for row in rows:
                if not self._check_row(scan, row, head_seq, checkpoints):
                    return False
            last = rows[-1][0]
            if progress is not None:
                progress(scan.checked, max(total, scan.checked))

    def _check_row(self, scan: _Scan, row: Any, head_seq: int | None,
                   checkpoints: dict[int, _CheckpointInfo]) -> bool:
        (seq, at, actor, actor_role, action, resource_kind, resource_id, purpose, client,
         prev_hash, stored_hash) = row
        expected = scan.expected
        if type(seq) is not int:
            return scan.fail(expected, f"row {expected} is missing; a row has a malformed seq "
                                       f"{seq!r}")
        if seq != expected:
            missing = str(expected) if seq == expected + 1 else f"{expected} to {seq - 1}"
            return scan.fail(seq, f"row {missing} is missing before row {seq} (deleted?)")
        if head_seq is not None and seq > head_seq:
            return scan.fail(seq, f"row {seq} lies beyond the head (seq {head_seq}): it was not "
                                  "appended through the log")
        at_text = _stored_time(at)
        if at_text is None:
            return scan.fail(seq, f"row {seq} has a malformed time {at!r}")
        if not (isinstance(prev_hash, str) and _HEX32.match(prev_hash)):
            return scan.fail(seq, f"row {seq} has a malformed prev_hash")
        try:
            computed = _hash_fields(seq, at_text, actor, actor_role, action, resource_kind,
                                    resource_id, purpose, client, prev_hash)
        except (TypeError, ValueError):  # a field of the wrong type, a lone surrogate
            computed = None
        if computed != stored_hash:
            return scan.fail(seq, f"row {seq} was changed: its fields no longer match its hash")
        if prev_hash != scan.prev:
            what = "the zero hash" if seq == 1 else f"the hash of row {seq - 1}"
            return scan.fail(seq, f"row {seq} does not chain to {what}: a row before it was "
                                  "rewritten and re-hashed, inserted or reordered")
        cp = checkpoints.get(seq)
        if cp is not None:
            problem = _checkpoint_problem(cp, stored_hash, scan.last_checkpoint)
            if problem is not None:
                return scan.fail(seq, problem)
            scan.checkpoints_checked += 1
            scan.last_checkpoint = seq
        scan.prev = stored_hash
        scan.expected = seq + 1
        scan.checked += 1
        return True

    @staticmethod
    def _check_end(scan: _Scan, checkpoints: dict[int, _CheckpointInfo], head: Any) -> bool:
        last = scan.expected - 1
        if head is None:
            return scan.fail(None, "the head row (access_log_head) is missing")
        head_seq, head_hash = int(head.seq), str(head.hash)
        if head_seq > last:
            missing = str(last + 1) if head_seq == last + 1 else f"{last + 1} to {head_seq}"
            return scan.fail(last + 1, f"row {missing} is missing at the end: the head records "
                                       f"{head_seq} rows (deleted?)")
        if head_hash != scan.prev:
            scan.checked -= 1  # the last row is the broken one
            return scan.fail(last, f"row {last}, the last row, does not match the head hash: it "
                                   "was rewritten")
        beyond = sorted(s for s in checkpoints if s > last)
        if beyond:
            return scan.fail(last + 1, f"a checkpoint was anchored at row {beyond[0]} but the log "
                                       f"ends at row {last}: rows were deleted")
        return True

    # -- checkpoints ---------------------------------------------------------------

    def checkpoint(self, anchoring: AnchoringAPI, member_org: str) -> Checkpoint:
        """Anchor the current head hash on chain (a one-leaf batch of kind access_log).

        The rows since the previous checkpoint are verified first: a broken chain is never
        anchored (AccessLogBroken). Checkpointing an unchanged head returns the last
        checkpoint. Safe to retry after a crash: the batch is keyed by the head hash.
        """
        self._ensure_tables()
        with self._snapshot() as conn:
            head = conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
            if head is None:
                raise AccessLogUnavailable("the access log's head row is missing",
                                           code="access_log_no_head")
            head_seq, head_hash = int(head.seq), str(head.hash)
            if head_seq == 0:
                raise InvalidInput("the access log is empty: nothing to checkpoint",
                                   code="access_log_empty")
            checkpoints = self._load_checkpoints(conn)
            before = [s for s in checkpoints if s <= head_seq]
            start = max(before) if before else 0
            if start == head_seq and checkpoints[start].head_hash == head_hash:
                return self._get_checkpoint(head_seq)
            # Verify from the last checkpoint (itself checked against its row) to the head.
            scan = _Scan(expected=max(start, 1), prev=ZERO_HASH)
            if start:
                prev_row = conn.execute(select(_LOG.c.prev_hash).where(_LOG.c.seq == start)).first()
                scan.prev = prev_row.prev_hash if prev_row is not None else ""
                scan.last_checkpoint = max((s for s in before if s < start), default=0)
            ok = self._scan(conn, scan, {s: checkpoints[s] for s in before}, head,
                            stop_after=head_seq, progress=None, total=head_seq)
            if ok:
                self._check_end(scan, {}, head)
            if scan.problem is not None:
                raise AccessLogBroken(f"not anchoring a broken access log: {scan.problem}",
                                      seq=scan.broken_seq)
        batch = anchoring.anchor(member_org, ANCHOR_KIND, [bytes.fromhex(head_hash[2:])],
                                 idempotency_key=f"access_log:{head_hash}")
        anchored_at = batch.block_time or datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_CHECKPOINT).values(seq=head_seq, head_hash=head_hash,
                                                        batch_id=batch.id, anchored_at=anchored_at))
        except IntegrityError:
            pass  # a concurrent checkpoint of the same head got there first
        return self._get_checkpoint(head_seq)

    def _get_checkpoint(self, seq: int) -> Checkpoint:
        found = [cp for cp in self.checkpoints() if cp.seq == seq]
        if not found:
            raise Conflict(f"no checkpoint at row {seq}", code="checkpoint_missing")
        return found[0]


def _stored_time(value: Any) -> str | None:
    """The hashed time form of a stored ``at`` (datetime from PostgreSQL, text from SQLite)."""
    if isinstance(value, str):
        if _SQLITE_TIME.match(value):  # as UTCDateTime writes it
            return f"{value[:10]}T{value[11:]}Z"
        if _HASHED_TIME.match(value):  # PostgreSQL's to_char above
            return value
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # SQLite keeps UTC naive (ledger.store.models.UTCDateTime)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _checkpoint_problem(cp: _CheckpointInfo, row_hash_: str, previous: int) -> str | None:
    since = f"after row {previous}" if previous else "from the start"
    if cp.head_hash != row_hash_:
        return (f"row {cp.seq} does not match the head hash anchored at this row (checkpoint "
                f"batch {cp.batch_id}): the log {since} up to row {cp.seq} was rewritten")
    if cp.root is None:
        return f"the checkpoint at row {cp.seq} refers to anchor batch {cp.batch_id}, which is gone"
    if cp.root != _head_leaf_root(cp.head_hash) or cp.kind != ANCHOR_KIND:
        return f"the checkpoint at row {cp.seq} does not match its anchor batch {cp.batch_id}"
    if cp.status != AnchorStatus.ANCHORED.value:
        return f"the checkpoint at row {cp.seq} was never anchored (batch {cp.batch_id} is {cp.status})"
    return cp.chain_problem


def _chain_problem(registry: Any, cp: _CheckpointInfo) -> str | None:
    if cp.root is None or not _HEX32.match(cp.root):
        return None  # reported from SQL already
    info = registry.root_info(cp.root)
    if info.count == 0:
        return f"the checkpoint at row {cp.seq}: its root {cp.root} is not anchored on chain"
    if info.count != 1 or info.kind is None or info.kind.name.lower() != ANCHOR_KIND:
        return f"the checkpoint at row {cp.seq}: its root is anchored on chain, but not as an access log head"
    return None

