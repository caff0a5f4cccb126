"""Table models of the SQL store: the chain-event copy, indexer cursors, anchor batches.

Conventions: hashes and addresses are ``0x``-prefixed lowercase hex (CHECK constraints
keep them lowercase, so equal values always compare equal); times are timezone-aware
UTC datetimes (naive ones are refused); JSON columns hold text, written by the caller.
Any change here needs a new migration in migrations/versions (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = [
    "NAMING_CONVENTION",
    "AnchorBatch",
    "AnchorLeaf",
    "AnchorStatus",
    "ChainEvent",
    "IndexerCursor",
    "UTCDateTime",
    "utcnow",
]

# Deterministic constraint names: SQLite batch migrations can only drop named constraints.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION

HEX32 = 66  # "0x" + 64 hex digits
ADDRESS = 42  # "0x" + 40 hex digits
# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on PostgreSQL and SQLite alike.

    PostgreSQL stores timestamptz; SQLite has no time zones, so UTC is stored naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: give a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _lower(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} = lower({column})", name=f"{column}_lower")


class ChainEvent(SQLModel, table=True):
    """One contract log, copied by the indexer; never duplicated (chain, tx, log index)."""

    __tablename__ = "chain_event"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        Index("ix_chain_event_contract_event", "contract", "event"),
        Index("ix_chain_event_block_number", "block_number"),
        _lower("contract"),
        _lower("tx_hash"),
        _lower("block_hash"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    chain_id: int = Field(sa_type=BigInteger)
    contract: str = Field(max_length=ADDRESS)
    event: str = Field(max_length=64)
    block_number: int = Field(sa_type=BigInteger)
    block_hash: str = Field(max_length=HEX32)
    block_time: datetime = Field(sa_type=UTCDateTime)
    tx_hash: str = Field(max_length=HEX32)
    log_index: int
    args_json: str = Field(sa_type=Text)


class IndexerCursor(SQLModel, table=True):
    """How far an indexer got; the block hash lets it notice a reorganisation."""

    __tablename__ = "indexer_cursor"
    __table_args__ = (_lower("last_block_hash"),)

    name: str = Field(primary_key=True, max_length=64)
    chain_id: int = Field(sa_type=BigInteger)
    last_block: int = Field(sa_type=BigInteger)
    last_block_hash: str = Field(max_length=HEX32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


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
        _lower("root"),
        _lower("metadata_hash"),
        _lower("tx_hash"),
        _lower("contract_address"),
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
        _lower("leaf_hash"),
    )

    batch_id: str = Field(primary_key=True, max_length=36)
    position: int = Field(primary_key=True)
    leaf_hash: str = Field(max_length=HEX32)
    proof_json: str = Field(sa_type=Text)


class ApiKey(SQLModel, table=True):
    """An organisation's API key, kept only as a SHA-256 hash (the key is 256 random bits)."""

    __tablename__ = "api_key"
    __table_args__ = (Index("ix_api_key_org_id", "org_id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    org_id: str = Field(max_length=64)
    role: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    label: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CredentialRecord(SQLModel, table=True):
    """An issued credential: the full SD-JWT (all disclosures), its leaf and its status.

    The leaf is keccak256 of the canonical issuer-signed payload without `cnf`, so binding
    the credential to a holder key at redemption does not change what was anchored.
    """

    __tablename__ = "credential"
    __table_args__ = (
        ForeignKeyConstraint(["batch_id"], ["anchor_batch.id"]),
        Index("ix_credential_issuer_org", "issuer_org"),
        Index("ix_credential_batch_id", "batch_id"),
        Index("ix_credential_student_id", "issuer_org", "student_id"),
        _lower("leaf_hash"),
    )

    id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=32)
    issuer_org: str = Field(max_length=64)
    batch_id: str = Field(max_length=36)
    position: int
    leaf_hash: str = Field(max_length=HEX32, unique=True)
    student_id: str | None = Field(default=None, max_length=64)
    sd_jwt: str = Field(sa_type=Text)
    valid_from: datetime = Field(sa_type=UTCDateTime)
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="valid", max_length=16)
    status_reason: int | None = None
    status_note: str | None = Field(default=None, max_length=500)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    supersedes: str | None = Field(default=None, max_length=64)
    superseded_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClaimCode(SQLModel, table=True):
    """A one-time code a holder redeems for a credential; only its hash is kept."""

    __tablename__ = "claim_code"
    __table_args__ = (Index("ix_claim_code_credential_id", "credential_id"),)

    code_hash: str = Field(primary_key=True, max_length=64)
    credential_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    redeemed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    holder_jwk: str | None = Field(default=None, sa_type=Text)


class Share(SQLModel, table=True):
    """A presentation a holder shares by link and QR code, until it expires or is withdrawn."""

    __tablename__ = "share"

    id: str = Field(primary_key=True, max_length=32)
    presentation: str = Field(sa_type=Text)
    anchor_json: str = Field(sa_type=Text)
    # The key-binding audience the presentation was made for (this service's URL).
    audience: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdraw_token_hash: str = Field(max_length=64)


class LeafStatusRow(SQLModel, table=True):
    """The latest on-chain status of a leaf under a root: a projection of StatusChanged events."""

    __tablename__ = "leaf_status"
    __table_args__ = (_lower("leaf"), _lower("root"))

    leaf: str = Field(primary_key=True, max_length=HEX32)
    root: str = Field(primary_key=True, max_length=HEX32)
    status: int
    reason: int
    block_number: int = Field(sa_type=BigInteger)
    superseded_by: str | None = Field(default=None, max_length=HEX32)


# Tables owned by other capabilities live in their own modules; importing them here puts
# them in the one metadata that migrations compare against.
from ledger.store import models_access, models_audit  # noqa: E402, F401
