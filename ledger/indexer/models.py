"""Tables of the chain-event indexer: the copy of every contract event, the cursors, and the
leaf-status projection.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.store.columns import ADDRESS, HEX32, BigIntId, UTCDateTime, lowercase, utcnow

__all__ = ["ChainEvent", "IndexerCursor", "LeafStatusRow"]


class ChainEvent(SQLModel, table=True):
    """One contract log, copied by the indexer; never duplicated (chain, tx, log index)."""

    __tablename__ = "chain_event"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        Index("ix_chain_event_contract_event", "contract", "event"),
        Index("ix_chain_event_block_number", "block_number"),
        lowercase("contract"),
        lowercase("tx_hash"),
        lowercase("block_hash"),
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
    __table_args__ = (lowercase("last_block_hash"),)

    name: str = Field(primary_key=True, max_length=64)
    chain_id: int = Field(sa_type=BigInteger)
    last_block: int = Field(sa_type=BigInteger)
    last_block_hash: str = Field(max_length=HEX32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LeafStatusRow(SQLModel, table=True):
    """The latest on-chain status of a leaf under a root: a projection of StatusChanged events."""

    __tablename__ = "leaf_status"
    __table_args__ = (lowercase("leaf"), lowercase("root"))

    leaf: str = Field(primary_key=True, max_length=HEX32)
    root: str = Field(primary_key=True, max_length=HEX32)
    status: int
    reason: int
    block_number: int = Field(sa_type=BigInteger)
    superseded_by: str | None = Field(default=None, max_length=HEX32)
