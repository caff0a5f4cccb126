"""Tables of the audit capability: the access log of personal data and integrity audit runs.

The access log (ledger/audit/accesslog.py):
``access_log`` is an append-only hash chain: row ``seq`` carries the hash of row ``seq - 1``
(``prev_hash``) and its own ``row_hash`` over all its other fields. ``access_log_head`` is
one row (id 1) with the last seq and hash: writers lock it to append, so two writers can
never both extend the same row (no fork), and verification can tell a truncated tail.
``access_log_checkpoint`` records each head hash anchored on chain.

Integrity audits (ledger/audit/integrity.py):
``audit_run`` is one audit: its state, its progress and where it got to (``phase`` and
``cursor``, committed together with the findings of each chunk, so that a run killed at
any point resumes where its last commit left it), the chain range it is pinned to, and at
the end the signed report and the anchor batch that holds the report's hash.

``audit_finding`` is one finding of a run. ``seq`` numbers the findings of a run in the
order the audit met them; (run_id, kind, item) is unique, so one item has at most one
finding of each kind (several reasons go into its details) and a repeated chunk can never
add a second copy.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from ledger.store.columns import ADDRESS, HEX32, UTCDateTime, lowercase, utcnow

__all__ = ["AccessLogCheckpointRow", "AccessLogHeadRow", "AccessLogRow", "AuditFinding", "AuditRun",
           "AuditRunStatus", "FindingKind"]

ACTOR_MAX = 64
ROLE_MAX = 16
ACTION_MAX = 16
RESOURCE_KIND_MAX = 32
RESOURCE_ID_MAX = 128
PURPOSE_MAX = 200
CLIENT_MAX = 128


class AccessLogRow(SQLModel, table=True):
    """One read of personal data: who, when, what, why; chained to the row before."""

    __tablename__ = "access_log"
    __table_args__ = (
        CheckConstraint("seq > 0", name="seq_positive"),
        Index("ix_access_log_resource", "resource_kind", "resource_id"),
        Index("ix_access_log_actor", "actor"),
        lowercase("prev_hash"),
        lowercase("row_hash"),
    )

    # Assigned by the writer holding the head lock (never by the database): 1, 2, 3, ...
    seq: int = Field(primary_key=True, sa_type=BigInteger,
                     sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=ACTOR_MAX)
    actor_role: str = Field(max_length=ROLE_MAX)
    action: str = Field(max_length=ACTION_MAX)
    resource_kind: str = Field(max_length=RESOURCE_KIND_MAX)
    resource_id: str = Field(max_length=RESOURCE_ID_MAX)
    purpose: str | None = Field(default=None, max_length=PURPOSE_MAX)
    client: str | None = Field(default=None, max_length=CLIENT_MAX)
    prev_hash: str = Field(max_length=HEX32)
    row_hash: str = Field(max_length=HEX32)


class AccessLogHeadRow(SQLModel, table=True):
    """The single head of the chain (id = 1): last seq and its row hash (0 and zeros when empty)."""

    __tablename__ = "access_log_head"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("seq >= 0", name="seq_non_negative"),
        lowercase("hash"),
    )

    id: int = Field(default=1, primary_key=True, sa_type=Integer,
                    sa_column_kwargs={"autoincrement": False})
    seq: int = Field(sa_type=BigInteger)
    hash: str = Field(max_length=HEX32)


class AccessLogCheckpointRow(SQLModel, table=True):
    """A head hash anchored on chain as a one-leaf batch of kind access_log."""

    __tablename__ = "access_log_checkpoint"
    __table_args__ = (
        ForeignKeyConstraint(["batch_id"], ["anchor_batch.id"]),
        CheckConstraint("seq > 0", name="seq_positive"),
        lowercase("head_hash"),
    )

    seq: int = Field(primary_key=True, sa_type=BigInteger,
                     sa_column_kwargs={"autoincrement": False})
    head_hash: str = Field(max_length=HEX32)
    batch_id: str = Field(max_length=36, unique=True)
    anchored_at: datetime = Field(sa_type=UTCDateTime)


class AuditRunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class FindingKind(StrEnum):
    OFFCHAIN_DATA_CHANGED = "offchain_data_changed"
    ITEM_MISSING = "item_missing"
    BATCH_NOT_ANCHORED = "batch_not_anchored"
    STATUS_DIFFERS = "status_differs"
    EVENT_MISSING_FROM_INDEX = "event_missing_from_index"
    # a sealed evaluation term record whose rows, document or signature no longer match its leaf
    EVALUATION_RECORD_CHANGED = "evaluation_record_changed"


def _in(column: str, values: type[StrEnum]) -> CheckConstraint:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class AuditRun(SQLModel, table=True):
    __tablename__ = "audit_run"
    __table_args__ = (
        _in("status", AuditRunStatus),
        CheckConstraint("progress_done >= 0 AND progress_total >= 0", name="progress_non_negative"),
        CheckConstraint("report_hash = lower(report_hash)", name="report_hash_lower"),
        Index("ix_audit_run_status", "status"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    status: str = Field(default=AuditRunStatus.PENDING.value, max_length=16)
    requested_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    progress_done: int = Field(default=0, sa_type=BigInteger)
    progress_total: int = Field(default=0, sa_type=BigInteger)
    # events -> batches -> report -> anchor -> done; `cursor` is the position inside the
    # phase (JSON), both committed with each chunk's findings.
    phase: str = Field(default="events", max_length=16)
    cursor: str | None = Field(default=None, sa_type=Text)
    finding_count: int = Field(default=0)
    # The chain range the run reads, fixed when it starts (reads are made at head_block).
    chain_id: int | None = Field(default=None, sa_type=BigInteger)
    registry_address: str | None = Field(default=None, max_length=ADDRESS)
    from_block: int | None = Field(default=None, sa_type=BigInteger)
    head_block: int | None = Field(default=None, sa_type=BigInteger)
    # How far the event index reached when the run started: later events are not missing.
    index_block: int | None = Field(default=None, sa_type=BigInteger)
    report_json: str | None = Field(default=None, sa_type=Text)
    report_hash: str | None = Field(default=None, max_length=HEX32)
    report_signature: str | None = Field(default=None, max_length=128)  # Ed25519, hex
    report_batch_id: str | None = Field(default=None, max_length=36)
    error: str | None = Field(default=None, sa_type=Text)


class AuditFinding(SQLModel, table=True):
    __tablename__ = "audit_finding"
    __table_args__ = (
        ForeignKeyConstraint(["run_id"], ["audit_run.id"], ondelete="CASCADE"),
        UniqueConstraint("run_id", "kind", "item"),
        _in("kind", FindingKind),
    )

    run_id: str = Field(primary_key=True, max_length=36)
    seq: int = Field(primary_key=True)
    kind: str = Field(max_length=32)
    item: str = Field(max_length=200)
    details_json: str = Field(sa_type=Text)
