"""Tables of the learning record store: statements, the agents and activities they are
found by, and which anchor batch holds each statement's leaf.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from ledger.store.columns import HEX32, BigIntId, UTCDateTime, lowercase

__all__ = ["LearningRecord", "LearningRecordRef"]


class LearningRecord(SQLModel, table=True):
    """One stored statement, as the LRS returns it (``stored`` and ``authority`` set).

    ``seq`` orders statements by when they were stored (queries and the ``more`` cursor
    page by it). The leaf is ``keccak256(salt || canonical form)`` (ledger.records.hashing);
    ``batch_id`` is empty until the statement is taken into an anchor batch, which happens
    in the very transaction that accepts the batch.

    Sensitive categories (health, psychological development) keep the statement in
    ``sealed`` (AES-256-GCM under the learner's data key, ``statement_json`` empty) and
    ``learner_key`` names the key; erasing the key leaves the row unreadable and the leaf
    unlinkable.
    """

    __tablename__ = "learning_record"
    __table_args__ = (
        ForeignKeyConstraint(["batch_id"], ["anchor_batch.id"]),
        CheckConstraint("(statement_json IS NULL) <> (sealed IS NULL)", name="plain_or_sealed"),
        CheckConstraint("(batch_id IS NULL) = (position IS NULL)", name="position_with_batch"),
        Index("ix_learning_record_statement_id", "statement_id", unique=True),
        Index("ix_learning_record_recorder_seq", "recorder_org", "seq"),
        Index("ix_learning_record_verb", "verb_id", "seq"),
        Index("ix_learning_record_registration", "registration", "seq"),
        Index("ix_learning_record_target", "target_statement_id"),
        Index("ix_learning_record_stored", "stored"),
        # the statements still waiting for a batch, oldest first
        Index("ix_learning_record_unbatched", "batch_id", "seq"),
        lowercase("statement_id"),
        lowercase("leaf_hash"),
    )

    seq: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    statement_id: str = Field(max_length=36)
    recorder_org: str = Field(max_length=64)
    stored: datetime = Field(sa_type=UTCDateTime)
    verb_id: str = Field(max_length=2048)
    registration: str | None = Field(default=None, max_length=36)
    # a StatementRef object: the statement it targets (voiding, and the query rules of xAPI)
    target_statement_id: str | None = Field(default=None, max_length=36)
    is_voiding: bool = False
    voided_by: str | None = Field(default=None, max_length=36)
    category: str | None = Field(default=None, max_length=32)
    statement_json: str | None = Field(default=None, sa_type=Text)
    sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    learner_key: str | None = Field(default=None, max_length=64)
    salt: str = Field(max_length=HEX32)
    leaf_hash: str = Field(max_length=HEX32, unique=True)
    batch_id: str | None = Field(default=None, max_length=36)
    position: int | None = None


class LearningRecordRef(SQLModel, table=True):
    """An agent (by its IFI, ledger.records.hashing.agent_key) or activity (by its id) a
    statement is found by. ``narrow``: found by the plain filter (actor or object agent;
    object activity); the others only with related_agents / related_activities."""

    __tablename__ = "learning_record_ref"
    __table_args__ = (
        ForeignKeyConstraint(["seq"], ["learning_record.seq"], ondelete="CASCADE"),
        CheckConstraint("kind IN ('agent', 'activity')", name="kind"),
        Index("ix_learning_record_ref_value", "kind", "value", "seq"),
    )

    seq: int = Field(primary_key=True, sa_type=BigIntId)
    kind: str = Field(primary_key=True, max_length=8)
    value: str = Field(primary_key=True, max_length=2048)
    narrow: bool = Field(primary_key=True)
