"""Settings from environment variables, all prefixed EDULEDGER_.

Secrets have no working default: a keystore passphrase must be given explicitly
(EDULEDGER_KEYSTORE_PASSPHRASE or EDULEDGER_KEYSTORE_PASSPHRASE_FILE).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ledger.errors import ConfigError

PREFIX = "EDULEDGER_"


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(env("DATA_DIR", ".data") or ".data"))
    # Empty means: the embedded chain in data_dir/chain. Otherwise any JSON-RPC URL.
    rpc_url: str = field(default_factory=lambda: env("RPC_URL", "") or "")
    # Empty means: SQLite in data_dir/eduledger.sqlite3.
    database_url: str = field(default_factory=lambda: env("DATABASE_URL", "") or "")
    host: str = field(default_factory=lambda: env("HOST", "127.0.0.1") or "127.0.0.1")
    port: int = field(default_factory=lambda: int(env("PORT", "8000") or "8000"))
    consortium_file: str = field(default_factory=lambda: env("CONSORTIUM_FILE", "") or "")
    # The organisation this node belongs to: it anchors the node's access-log checkpoints.
    node_org: str = field(default_factory=lambda: env("NODE_ORG", "bureau") or "bureau")
    access_checkpoint_seconds: float = field(
        default_factory=lambda: float(env("ACCESS_CHECKPOINT_SECONDS", "300") or "300"))
    # Processes serving the port next to the node, each verifying credentials itself (api.workers).
    workers: int = field(default_factory=lambda: int(env("WORKERS", "") or max((os.cpu_count() or 1) - 1, 0)))
    # Processes that sign large rosters (empty: one per CPU); 0 or 1 signs in the serving process.
    signing_workers: int = field(
        default_factory=lambda: int(env("SIGNING_WORKERS", "") or os.cpu_count() or 1))

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def keystore_dir(self) -> Path:
        return self.data_dir / "keystore"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'eduledger.sqlite3').resolve()}"


def keystore_passphrase() -> str:
    """The passphrase that unlocks organisation keystores; never printed or logged."""
    direct = env("KEYSTORE_PASSPHRASE")
    if direct:
        return direct
    path = env("KEYSTORE_PASSPHRASE_FILE")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read keystore passphrase file {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"keystore passphrase file {path} is empty")
        return value
    raise ConfigError(
        "no keystore passphrase: set EDULEDGER_KEYSTORE_PASSPHRASE "
        "or EDULEDGER_KEYSTORE_PASSPHRASE_FILE"
    )
