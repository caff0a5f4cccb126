"""The SQL store: engines, sessions and migrations over SQLite (default) or PostgreSQL.

Tables live with their capability (``ledger/<capability>/models.py``, column types in
``ledger.store.columns``); ``ledger.store.schema`` gathers them for migrations. Typical use::

    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    with session_scope(engine) as session:
        session.add(ChainEvent(...))
"""

from ledger.store.db import make_engine, migrate, session_scope

__all__ = ["make_engine", "migrate", "session_scope"]
