from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_account import Account
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routers import rpc
from ledger.chain import ChainClient, EmbeddedChain, RpcDispatcher, embedded_client
from ledger.store.db import make_engine, normalize_url
from tests.chain_env import ETHER, ChainEnv
from tests.servers import serve_app

pytest_plugins = ["tests.conftest_services"]

# anvil's first well-known development account (funded by anvil itself at start).
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

POSTGRES_ENV = "EDULEDGER_TEST_POSTGRES_URL"

CHAIN_BACKENDS = ["embedded-memory", "embedded-disk", "embedded-rpc", "anvil"]
# The same, as fixture params: the anvil one carries the `anvil` mark (-m "not anvil").
CHAIN_BACKEND_PARAMS = [pytest.param(kind, marks=pytest.mark.anvil) if kind == "anvil" else kind
                        for kind in CHAIN_BACKENDS]
FUNDER_BALANCE = 10**6 * ETHER


@pytest.fixture
def chain_env() -> Iterator[ChainEnv]:
    """A fresh in-memory embedded chain with one rich funder account."""
    funder = Account.create()
    chain = EmbeddedChain(None, alloc={funder.address: FUNDER_BALANCE})
    yield ChainEnv("embedded-memory", embedded_client(chain), funder)
    chain.close()


def rpc_only_app(chain: EmbeddedChain) -> FastAPI:
    app = FastAPI()
    app.state.services = SimpleNamespace(node=SimpleNamespace(dispatcher=RpcDispatcher(chain)))
    install_error_handlers(app)
    app.include_router(rpc.router)
    return app


@contextmanager
def open_chain(kind: str, directory: Path, request: pytest.FixtureRequest) -> Iterator[ChainEnv]:
    """A chain on backend `kind` with a new funder account holding FUNDER_BALANCE.

    embedded-memory/-disk: an embedded chain in this process (the disk one in `directory`);
    embedded-rpc: the same on disk, reached over HTTP through the node's /rpc router;
    anvil: the session's anvil node (its chain is shared, so the funder is new each time).
    """
    funder = Account.create()
    if kind == "anvil":
        client = ChainClient.from_url(request.getfixturevalue("anvil_url"))
        answer = client.w3.provider.make_request(
            "anvil_setBalance", [funder.address, hex(FUNDER_BALANCE)])  # type: ignore[arg-type]
        assert "error" not in answer, answer
        yield ChainEnv(kind, client, funder)
        return
    path = directory / "chain" if kind != "embedded-memory" else None
    chain = EmbeddedChain(path, alloc={funder.address: FUNDER_BALANCE})
    try:
        if kind == "embedded-rpc":
            with serve_app(rpc_only_app(chain)) as base:
                yield ChainEnv(kind, ChainClient.from_url(base + "/rpc"), funder)
        else:
            yield ChainEnv(kind, embedded_client(chain), funder)
    finally:
        chain.close()


@pytest.fixture(params=CHAIN_BACKEND_PARAMS)
def any_chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainEnv]:
    """A new chain (on anvil: a new funder) for one test, on every backend."""
    with open_chain(request.param, tmp_path, request) as env:
        yield env


@pytest.fixture(scope="module", params=CHAIN_BACKEND_PARAMS)
def module_chain(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainEnv]:
    """One chain per backend for a whole module, on every backend (as web3.py runs its
    module suite once per provider): for deployments that the module's tests share. Tests
    on it must not depend on each other's order: each uses its own accounts, contracts,
    members or roots."""
    with open_chain(request.param, tmp_path_factory.mktemp(request.param), request) as env:
        yield env


# --- SQL databases: every store test runs on SQLite and on a real PostgreSQL server ---


def postgres_server_url(request: pytest.FixtureRequest) -> str:
    """The test PostgreSQL server (the shared fixture fails loudly when there is none, unless
    EDULEDGER_SKIP_SERVICES=1 outside CI: then the test skips)."""
    return str(request.getfixturevalue("postgres_url"))


def fresh_postgres_database(server_url: str) -> Generator[str, None, None]:
    """A new empty database on the server for one test; dropped afterwards."""
    name = f"eduledger_test_{uuid.uuid4().hex[:16]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield normalize_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_postgres_database(postgres_server_url(request))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("postgres_db_url"))


# --- a node's secrets for tests: cheap scrypt, fresh caches ------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory for a test's node and wallets, with the keystore and wallet passphrases
    set and scrypt cheap (the real cost is for keys at rest, not for tests). A module that
    needs more (variables removed, other passphrases) defines its own `env`."""
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "test keystore passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    monkeypatch.setenv("EDULEDGER_WALLET_PASSPHRASE", "test wallet passphrase")
    monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", str(2**10))
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path
