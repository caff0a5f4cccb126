from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
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


@pytest.fixture
def chain_env() -> Iterator[ChainEnv]:
    """A fresh in-memory embedded chain with one rich funder account."""
    funder = Account.create()
    chain = EmbeddedChain(None, alloc={funder.address: 10**6 * ETHER})
    yield ChainEnv("embedded-memory", embedded_client(chain), funder)
    chain.close()


def rpc_only_app(chain: EmbeddedChain) -> FastAPI:
    app = FastAPI()
    app.state.services = SimpleNamespace(node=SimpleNamespace(dispatcher=RpcDispatcher(chain)))
    install_error_handlers(app)
    app.include_router(rpc.router)
    return app


@pytest.fixture(params=CHAIN_BACKENDS)
def any_chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainEnv]:
    """The same chain tests against every backend."""
    kind = request.param
    if kind == "anvil":
        url = request.getfixturevalue("anvil_url")
        yield ChainEnv(kind, ChainClient.from_url(url), Account.from_key(ANVIL_DEV_KEY))
        return
    funder = Account.create()
    path = tmp_path / "chain" if kind != "embedded-memory" else None
    chain = EmbeddedChain(path, alloc={funder.address: 10**6 * ETHER})
    try:
        if kind == "embedded-rpc":
            with serve_app(rpc_only_app(chain)) as base:
                yield ChainEnv(kind, ChainClient.from_url(base + "/rpc"), funder)
        else:
            yield ChainEnv(kind, embedded_client(chain), funder)
    finally:
        chain.close()


# --- SQL databases: every store test runs on SQLite and on a real PostgreSQL server ---


def postgres_server_url(request: pytest.FixtureRequest) -> str:
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(
            f"{POSTGRES_ENV} is not set, so there is no PostgreSQL server to test against "
            "(scripts/test starts one and sets it)"
        )
    try:  # the shared fixture also checks that the server answers
        return str(request.getfixturevalue("postgres_url"))
    except pytest.FixtureLookupError:
        return os.environ[POSTGRES_ENV]


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
