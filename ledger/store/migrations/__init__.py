"""Alembic migrations of the SQL store; run with ledger.store.db.migrate()."""
