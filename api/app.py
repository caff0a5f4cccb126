"""The FastAPI application: thin routers over the node's services (ledger.node)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.fastpath import FastVerifyAPI
from api.openapi import install_openapi
from api.routers import (
    audit,
    credentials,
    evaluation,
    exams,
    holders,
    identity,
    network,
    openid4vc,
    records,
    rpc,
    signatures,
    sso,
    wallet_app,
    xapi,
)
from ledger.chain.embedded import safe_recursion_limit
from ledger.node import Node, NodeDuties, NodeServices
from ledger.settings import Settings


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for every serving process: forwarded headers are believed only
    from the proxies the operator names (uvicorn would trust them from 127.0.0.1 by default,
    and any local client could then pick its address, and dodge the public rate limit)."""
    trusted = settings.trusted_proxies.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None,
            "server_header": False, "log_level": "warning"}


def create_app(node: Node, *, background: bool = True,
               status_generation: Synchronized[int] | None = None) -> FastVerifyAPI:
    """The app over an open node; `background` runs the node's duties (ledger.node.duties)
    while it serves; `status_generation` is shared with worker processes (see api.workers)."""
    services = NodeServices(node, status_generation=status_generation)
    duties = NodeDuties(services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            duties.start()
        try:
            yield
        finally:
            duties.stop()

    safe_recursion_limit()
    # No trailing-slash redirects: "/v1/credentials/" is a 404 with a machine code, not a
    # 307 to a URL that may not exist either.
    app = FastVerifyAPI(title="eduledger", version="0.1.0", lifespan=lifespan, redirect_slashes=False)
    app.state.services = services
    app.state.workers = None  # serve --workers N sets it (api.workers)
    install_error_handlers(app)
    app.include_router(network.router)
    app.include_router(credentials.router)
    app.include_router(holders.router)
    app.include_router(audit.router)
    app.include_router(identity.router)
    app.include_router(identity.public)
    app.include_router(signatures.router)
    app.include_router(signatures.public)
    app.include_router(sso.router)
    app.include_router(sso.public)
    app.include_router(sso.protocol)
    app.include_router(openid4vc.router)
    app.include_router(openid4vc.protocol)
    app.include_router(exams.router)
    app.include_router(evaluation.router)
    app.include_router(exams.pages)
    app.include_router(wallet_app.router)
    app.include_router(xapi.router)
    app.include_router(xapi.public)
    app.include_router(records.router)
    app.include_router(records.public)
    if node.dispatcher is not None:
        app.include_router(rpc.router)
    install_openapi(app)
    return app

