from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_account import Account
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routers import rpc
from ledger.chain import ChainClient, EmbeddedChain, RpcDispatcher, embedded_client
from tests.chain_env import ETHER, ChainEnv
from tests.servers import serve_app

pytest_plugins = ["tests.conftest_services"]

# anvil's first well-known development account (funded by anvil itself at start).
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

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
    app.state.node = SimpleNamespace(dispatcher=RpcDispatcher(chain))
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
