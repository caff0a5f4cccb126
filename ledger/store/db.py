"""Engines, sessions and migrations for the SQL store (SQLite or PostgreSQL).

SQLite connections get WAL (readers never block the writer), synchronous=FULL (a commit
survives power loss), foreign keys on (off by default in SQLite) and a busy timeout.
SQLAlchemy, not the sqlite3 module, emits BEGIN, so that SELECTs, DDL and SAVEPOINTs
really run inside the transaction (the driver's legacy mode leaves them outside it);
that also makes each migration atomic on SQLite.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from ledger.errors import ConfigError, InvalidInput

__all__ = [
    "MIGRATIONS_DIR",
    "SQLITE_BUSY_TIMEOUT_MS",
    "alembic_config",
    "current_revision",
    "head_revision",
    "make_engine",
    "migrate",
    "migration_connection",
    "normalize_url",
    "session_scope",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works; it only has to be the same in every process migrating one database.
_PG_MIGRATION_LOCK = 0x6564756C  # "edul"
# Alembic's `op` and `context` are process-global proxies: one migration at a time here.
_MIGRATE_THREAD_LOCK = threading.RLock()


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``postgresql://`` / ``postgres://`` get the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # ArgumentError and friends: report without the URL (password)
        raise ConfigError(f"invalid database URL: {type(exc).__name__}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed


def make_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, echo=echo, **kwargs)
    else:
        kwargs.setdefault("pool_pre_ping", True)  # survive server restarts and idle timeouts
        engine = create_engine(parsed, echo=echo, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def _refuse_nul(_conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any,
                _executemany: bool) -> None:
    """PostgreSQL can neither store nor compare text holding a NUL character; SQLite can.
    Such text (an id in a URL, a field of a request) is refused on both alike, as bad input,
    before the statement runs, instead of failing on one backend only."""
    if _holds_nul(parameters):
        raise InvalidInput("text with a NUL character (U+0000) cannot be stored or looked up",
                           code="nul_in_text")


def _holds_nul(parameters: Any) -> bool:
    """Whether a string among the DBAPI parameters (one row: a dict or a tuple; or a list of
    rows, for executemany) holds NUL. Each string is searched in place (no joined copy: a
    roster's rows hold 10,000 SD-JWTs), by map in C rather than a Python loop."""
    rows = parameters if isinstance(parameters, list) else [parameters]
    strings = [v for row in rows
               for v in (row.values() if isinstance(row, dict)
                         else row if isinstance(row, list | tuple) else (row,))
               if type(v) is str]
    return any(map(operator.contains, strings, itertools.repeat("\x00")))


def _sqlite_engine(url: URL, *, echo: bool, **kwargs: Any) -> Engine:
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # The store is used from worker threads (FastAPI); connections are not shared
    # concurrently, the pool hands each to one thread at a time.
    connect_args.setdefault("check_same_thread", False)
    memory = url.database in (None, "", ":memory:")
    if memory:
        # One shared connection, or every checkout would see a new empty database.
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, echo=echo, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see module docstring
        cursor = dbapi_conn.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout) instead of
        # failing when a read transaction later tries to write; used for migrations and
        # session_scope(write=True).
        mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else ""
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    Objects stay readable after the block (expire_on_commit=False), detached.
    ``write``: the block reads, then writes what it read. On SQLite it then takes the write
    lock at BEGIN (waiting up to the busy timeout): a transaction that has read cannot take
    it later once another connection has committed, and fails at once with "database is
    locked" (a background indexer commits often). No effect on PostgreSQL.
    """
    session = Session(engine.execution_options(sqlite_immediate=True) if write else engine,
                      expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- migrations -----------------------------------------------------------------------


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini), for ``alembic.command`` calls.

    Example, to write the next migration after changing models.py::

        command.revision(alembic_config(url), message="add x", autogenerate=True)
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        # ConfigParser interpolation would eat a % in a password
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def migrate(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest); a no-op when there.

    Safe to call from several threads or processes at once: they serialise (see
    ``migration_connection``) and the later ones find nothing to do.
    """
    owned = not isinstance(engine_or_url, Engine)
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        with migration_connection(engine) as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if owned:
            engine.dispose()


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that migrations can run in, exclusively.

    Concurrent migrators wait for each other: a lock in this process (Alembic's ``op``
    and ``context`` are process-global), then a PostgreSQL advisory lock or SQLite's
    write lock (BEGIN IMMEDIATE). On SQLite, foreign keys are off while migrating and
    checked before commit: batch migrations recreate tables (copy, drop, rename), and
    dropping a referenced table with foreign keys on would fail or cascade.
    """
    sqlite = engine.dialect.name == "sqlite"
    with _MIGRATE_THREAD_LOCK, engine.connect() as conn:
        fk_before = 0
        if sqlite:
            # PRAGMA foreign_keys is ignored inside a transaction: set it before BEGIN.
            fk_before = int(_sqlite_pragma(conn, "foreign_keys") or 0)
            _sqlite_pragma(conn, "foreign_keys=OFF")
            conn.execution_options(sqlite_immediate=True)
        try:
            with conn.begin():
                if not sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise ConfigError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                try:
                    _sqlite_pragma(conn, f"foreign_keys={fk_before:d}")
                except Exception:
                    conn.invalidate()  # never pool a connection with its pragma changed
                    raise


def _sqlite_pragma(conn: Connection, pragma: str) -> Any:
    """Run a PRAGMA on the raw connection (no BEGIN); the first value it returns."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
        row = cursor.fetchone()
        return row[0] if row else None
    finally:
        cursor.close()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
