"""Tables of the consortium: organisations' API keys.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ledger.store.columns import BigIntId, UTCDateTime, utcnow

__all__ = ["ApiKey"]


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
