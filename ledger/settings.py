"""Every setting, read from the environment in this one module (variables prefixed EDULEDGER_).

Two settings objects, both pydantic-settings classes: ``Settings`` for a node (its data
directory, chain, database, serving and keys) and ``WalletSettings`` for a holder's wallet.
Nothing else in the project reads the environment; each variable is listed in the README.

Secrets have no working default: the keystore passphrase must be given explicitly
(EDULEDGER_KEYSTORE_PASSPHRASE or EDULEDGER_KEYSTORE_PASSPHRASE_FILE), and is never
printed, logged or shown in ``repr``. A value that does not parse is a ``ConfigError``
naming the variable, on one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import ConfigError

PREFIX = "EDULEDGER_"
# eth_account's default scrypt cost for v3 keystores (n=2**18, r=8, p=1: ~256 MiB, ~1 s).
DEFAULT_KEYSTORE_SCRYPT_N = 2**18
DEFAULT_WALLET_SCRYPT_N = 2**15
SQLITE_FILE = "eduledger.sqlite3"  # the default store, in the data directory


def _cores_beyond_the_first() -> int:
    return max((os.cpu_count() or 1) - 1, 0)


def _cores() -> int:
    return os.cpu_count() or 1


def _default_cache_dir() -> Path:
    # XDG's variable, not ours: where the user keeps caches.
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eduledger" / "contracts"


class _EnvSettings(BaseSettings):
    """Settings from EDULEDGER_* variables; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{PREFIX}{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}"
                for err in exc.errors())
            raise ConfigError(f"invalid setting: {problems}") from None

    def with_changes(self, **changes: Any) -> Self:
        """A copy with some settings changed (validated like the environment's)."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**current, **{k: v for k, v in changes.items() if v is not None}})


def _secret_from(direct: SecretStr | None, file: Path | None, what: str, variable: str) -> str | None:
    """A secret given directly, or the first line of a file; None if neither is set."""
    if direct is not None and direct.get_secret_value():
        return direct.get_secret_value()
    if file is None:
        return None
    try:
        value = file.expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read the {what} file {file} ({variable}_FILE): {reason}",
                          code="no_passphrase") from None
    if not value:
        raise ConfigError(f"the {what} file {file} ({variable}_FILE) is empty", code="no_passphrase")
    return value


class Settings(_EnvSettings):
    """A node's settings."""

    data_dir: Path = Path(".data")
    # Empty: the embedded chain in data_dir/chain. Otherwise any JSON-RPC URL.
    rpc_url: str = ""
    # Empty: SQLite in data_dir/eduledger.sqlite3.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # The consortium definition `serve` initialises an empty data directory with (default: the demo).
    consortium_file: str = ""
    # The organisation this node belongs to: it anchors the node's access-log checkpoints.
    node_org: str = "bureau"
    access_checkpoint_seconds: float = Field(default=300.0, gt=0)
    # Learning records (xAPI statements) are anchored in batches: every this many seconds
    # or this many statements, whichever comes first.
    records_batch_seconds: float = Field(default=5.0, gt=0)
    records_batch_size: int = Field(default=1000, ge=1, le=10_000)
    # The homePage of the `authority` the LRS sets on statements (empty: the node's URL
    # as the request names it would vary, so a fixed default).
    records_authority_home: str = "https://eduledger.example/v1/network"
    # Processes serving the port next to the node, each verifying credentials itself (api.workers).
    workers: int = Field(default_factory=_cores_beyond_the_first, ge=0)
    # Processes that sign large rosters; 0 or 1 signs in the serving process.
    signing_workers: int = Field(default_factory=_cores, ge=0)
    # Public endpoints (verify, share pages, DID documents): requests per client address.
    public_rate_limit: str = "600/minute"
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or networks, "*" for any); empty: none, the client is the connection's peer.
    trusted_proxies: str = ""
    # The OpenID Provider's issuer URL (single sign-on with the card), e.g.
    # https://id.edu.example.cn; empty: the URL each request came to (for development).
    sso_issuer: str = ""
    keystore_passphrase: SecretStr | None = None
    keystore_passphrase_file: Path | None = None
    # The cost of new keystores; lowering it is for tests only.
    keystore_scrypt_n: int = Field(default=DEFAULT_KEYSTORE_SCRYPT_N, ge=2)
    # On an external node: a funded key that pays the organisations' first gas (never logged).
    funder_key: SecretStr | None = None
    # The AnchorRegistry that `eduledger verify` trusts when no --registry is given.
    registry: str = ""
    contract_cache_dir: Path = Field(default_factory=_default_cache_dir)

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def keystore_dir(self) -> Path:
        return self.data_dir / "keystore"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / SQLITE_FILE).resolve()}"

    def keystore_secret(self) -> str:
        """The passphrase that unlocks organisation keystores; never printed or logged."""
        value = _secret_from(self.keystore_passphrase, self.keystore_passphrase_file,
                             "keystore passphrase", f"{PREFIX}KEYSTORE_PASSPHRASE")
        if value is None:
            raise ConfigError("no keystore passphrase: set EDULEDGER_KEYSTORE_PASSPHRASE "
                              "or EDULEDGER_KEYSTORE_PASSPHRASE_FILE", code="no_passphrase")
        return value


class WalletSettings(_EnvSettings):
    """A holder's wallet settings (``eduledger wallet ...``)."""

    wallet_dir: Path = Path("~/.eduledger/wallet")
    wallet_passphrase: SecretStr | None = None
    wallet_passphrase_file: Path | None = None
    # The cost of a new wallet's key encryption; lowering it is for tests only.
    wallet_scrypt_n: int = Field(default=DEFAULT_WALLET_SCRYPT_N, ge=2)
    # The eduledger API the wallet talks to when no --api is given.
    api_url: str = ""


class ClientSettings(_EnvSettings):
    """An organisation's client of a node's API (``eduledger identity ...``): its URL and the
    organisation's API key (EDULEDGER_API_KEY: never a command-line argument, which other
    users of the machine could read)."""

    api_url: str = ""
    api_key: SecretStr | None = None


def keystore_passphrase() -> str:
    """The keystore passphrase from the environment (see ``Settings.keystore_secret``)."""
    return Settings().keystore_secret()
