"""The SQL store: SQLModel tables over SQLite (default) or PostgreSQL, Alembic migrations.

Typical use::

    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    with session_scope(engine) as session:
        session.add(ChainEvent(...))
"""

from ledger.store.db import make_engine, migrate, session_scope
from ledger.store.models import (
    AnchorBatch,
    AnchorLeaf,
    AnchorStatus,
    ApiKey,
    ChainEvent,
    ClaimCode,
    CredentialRecord,
    IndexerCursor,
    LeafStatusRow,
    Share,
    utcnow,
)

__all__ = [
    "AnchorBatch",
    "ApiKey",
    "AnchorLeaf",
    "AnchorStatus",
    "ChainEvent",
    "ClaimCode",
    "CredentialRecord",
    "IndexerCursor",
    "LeafStatusRow",
    "Share",
    "make_engine",
    "migrate",
    "session_scope",
    "utcnow",
]
