"""The embedded chain's on-disk key-value store.

py-evm writes trie nodes, headers and the canonical head into a key-value database.
Writes are buffered in memory and made durable together by `commit()`, which the
embedded node calls once per mined block: a kill -9 at any moment leaves either the
previous block or the new one, never half of one. SQLite (WAL, synchronous=FULL) gives
us that atomicity and fsync with nothing to install.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from eth.db.backends.base import BaseDB

from ledger.errors import StoreLocked
from ledger.fileio import private_directory, private_sqlite_file

_DELETED = object()


class SqliteKV(BaseDB):
    def __init__(self, directory: Path) -> None:
        private_directory(directory)
        # Only one process may own the store: py-evm keeps the head in memory too.
        self._lock_file = open(directory / "LOCK", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreLocked(
                f"the chain store {directory} is open in another process "
                "(stop it, or connect to its /rpc instead)"
            ) from None
        self._lock_file.truncate(0)
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        private_sqlite_file(directory / "chain.sqlite3")
        self._conn = sqlite3.connect(
            directory / "chain.sqlite3", isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
        )
        self._pending: dict[bytes, object] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self._pending.get(key)
        if value is _DELETED:
            raise KeyError(key)
        if value is not None:
            return value  # type: ignore[return-value]
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._pending[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def commit(self) -> None:
        """Make every buffered write durable in one transaction."""
        if not self._pending:
            return
        puts = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
        dels = [(k,) for k, v in self._pending.items() if v is _DELETED]
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
            cur.executemany("DELETE FROM kv WHERE k = ?", dels)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self._pending.clear()

    def close(self) -> None:
        self._pending.clear()
        self._conn.close()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()
