"""Tables of the access log (ledger/audit/accesslog.py).

``access_log`` is an append-only hash chain: row ``seq`` carries the hash of row ``seq - 1``
(``prev_hash``) and its own ``row_hash`` over all its other fields. ``access_log_head`` is
one row (id 1) with the last seq and hash: writers lock it to append, so two writers can
never both extend the same row (no fork), and verification can tell a truncated tail.
``access_log_checkpoint`` records each head hash anchored on chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKeyConstraint, Index, Integer
from sqlmodel import Field, SQLModel

from ledger.store.models import HEX32, UTCDateTime, _lower, utcnow

__all__ = ["AccessLogCheckpointRow", "AccessLogHeadRow", "AccessLogRow"]

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
        _lower("prev_hash"),
        _lower("row_hash"),
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
        _lower("hash"),
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
        _lower("head_hash"),
    )

    seq: int = Field(primary_key=True, sa_type=BigInteger,
                     sa_column_kwargs={"autoincrement": False})
    head_hash: str = Field(max_length=HEX32)
    batch_id: str = Field(max_length=36, unique=True)
    anchored_at: datetime = Field(sa_type=UTCDateTime)
