"""Tables of anchoring: batches of leaves under one Merkle root, and each leaf's proof.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKeyConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.store.columns import ADDRESS, HEX32, UTCDateTime, lowercase, utcnow

__all__ = ["AnchorBatch", "AnchorLeaf", "AnchorStatus"]


class AnchorStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    ANCHORED = "anchored"
    FAILED = "failed"


_STATUSES = ", ".join(f"'{s.value}'" for s in AnchorStatus)




class AnchorBatch(SQLModel, table=True):
    """A batch of leaves under one Merkle root, and where and when it was anchored."""

    __tablename__ = "anchor_batch"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        # a submitted or anchored batch always knows its transaction
        CheckConstraint(
            "status NOT IN ('submitted', 'anchored') OR tx_hash IS NOT NULL",
            name="tx_hash_when_submitted",
        ),
        CheckConstraint(
            "status <> 'anchored' OR (block_number IS NOT NULL AND chain_id IS NOT NULL"
            " AND contract_address IS NOT NULL)",
            name="block_when_anchored",
        ),
        CheckConstraint("leaf_count > 0", name="leaf_count_positive"),
        lowercase("root"),
        lowercase("metadata_hash"),
        lowercase("tx_hash"),
        lowercase("contract_address"),
        Index("ix_anchor_batch_member_org", "member_org"),
        Index("ix_anchor_batch_status", "status"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    kind: str = Field(max_length=32)
    status: str = Field(default=AnchorStatus.PENDING.value, max_length=16)
    root: str = Field(max_length=HEX32, unique=True)
    leaf_count: int
    metadata_hash: str | None = Field(default=None, max_length=HEX32)
    member_org: str = Field(max_length=64)
    # lets a client retry a request without creating a second batch
    idempotency_key: str | None = Field(default=None, max_length=128, unique=True)
    # SHA-256 of what the request with that key asked for: the same key with another request
    # is refused (IETF Idempotency-Key), not answered with this batch
    request_hash: str | None = Field(default=None, max_length=64)
    tx_hash: str | None = Field(default=None, max_length=HEX32)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    block_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    chain_id: int | None = Field(default=None, sa_type=BigInteger)
    contract_address: str | None = Field(default=None, max_length=ADDRESS)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)


class AnchorLeaf(SQLModel, table=True):
    """A leaf of a batch with its Merkle proof (JSON list of hex siblings, leaf upwards)."""

    __tablename__ = "anchor_leaf"
    __table_args__ = (
        ForeignKeyConstraint(["batch_id"], ["anchor_batch.id"], ondelete="CASCADE"),
        # one leaf, one status on chain: a leaf belongs to a single batch
        UniqueConstraint("leaf_hash"),
        CheckConstraint("position >= 0", name="position_non_negative"),
        lowercase("leaf_hash"),
    )

    batch_id: str = Field(primary_key=True, max_length=36)
    position: int = Field(primary_key=True)
    leaf_hash: str = Field(max_length=HEX32)
    proof_json: str = Field(sa_type=Text)
