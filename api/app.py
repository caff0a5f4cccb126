"""The FastAPI application: thin routers over ledger/."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routers import network, rpc
from ledger.node import Node


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title="eduledger", version="0.1.0")
    app.state.node = node
    install_error_handlers(app)
    app.include_router(network.router)
    if node.dispatcher is not None:
        app.include_router(rpc.router)
    return app
