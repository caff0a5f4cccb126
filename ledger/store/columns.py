"""Column types and conventions shared by every capability's tables.

Conventions: hashes and addresses are ``0x``-prefixed lowercase hex (CHECK constraints
keep them lowercase, so equal values always compare equal); times are timezone-aware
UTC datetimes (naive ones are refused); JSON columns hold text, written by the caller.
Each capability keeps its tables in its own ``models.py`` (``ledger/<capability>/models.py``);
``ledger.store.schema`` gathers them into the one metadata that migrations compare against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import SQLModel

__all__ = ["ADDRESS", "HEX32", "NAMING_CONVENTION", "BigIntId", "UTCDateTime", "lowercase", "utcnow"]

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
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


def lowercase(column: str) -> CheckConstraint:
    """A CHECK that `column` holds lowercase text (hex hashes and addresses)."""
    return CheckConstraint(f"{column} = lower({column})", name=f"{column}_lower")
