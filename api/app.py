"""The FastAPI application: thin routers over ledger/."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.fastpath import FastVerifyAPI
from api.routers import audit, credentials, holders, network, rpc
from api.routers.audit import resume_audit_runs
from api.services import Services
from ledger.audit.accesslog import AccessLog
from ledger.chain.embedded import safe_recursion_limit
from ledger.consortium.network import signer_loader
from ledger.node import Node

log = logging.getLogger("eduledger.api")


def create_app(node: Node, *, background: bool = True, status_generation: Any = None) -> FastVerifyAPI:
    """The app over an open node; `background` runs the indexer and finishes accepted work;
    `status_generation` is shared with worker processes (see api.workers)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = None
        if background and node.deployment is not None:
            worker = threading.Thread(target=_background, args=(node, app.state.services, stop), daemon=True,
                                      name="eduledger-background")
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=10)

    safe_recursion_limit()
    # No trailing-slash redirects: "/v1/credentials/" is a 404 with a machine code, not a
    # 307 to a URL that may not exist either.
    app = FastVerifyAPI(title="eduledger", version="0.1.0", lifespan=lifespan, redirect_slashes=False)
    app.state.node = node
    app.state.services = Services(node, status_generation=status_generation)
    install_error_handlers(app)
    app.include_router(network.router)
    app.include_router(credentials.router)
    app.include_router(holders.router)
    app.include_router(audit.router)
    if node.dispatcher is not None:
        app.include_router(rpc.router)
    return app


def _background(node: Node, services: Services, stop: threading.Event) -> None:
    """Finish batches accepted before a restart, keep the event index current, and anchor
    the access log's head now and then so that rewriting the log is evident on chain."""
    anchoring = node.anchoring(signer_loader(node.settings))
    try:
        resumed = anchoring.resume()
        if resumed:
            log.warning("resumed %d accepted anchor batches", len(resumed))
    except Exception:  # noqa: BLE001 - retried at the next start; the API keeps serving
        log.exception("resuming accepted anchor batches failed")
    try:
        finished = services.credentials.finish_corrections()  # after their batches are anchored
        if finished:
            log.warning("finished %d interrupted corrections", finished)
    except Exception:  # noqa: BLE001 - retried at the next start
        log.exception("finishing interrupted corrections failed")
    try:
        if resume_audit_runs(services):
            log.warning("resumed interrupted audit runs")
    except Exception:  # noqa: BLE001 - retried at the next start
        log.exception("resuming audit runs failed")
    indexer, access = node.indexer(), AccessLog(node.engine)
    next_checkpoint = time.monotonic() + node.settings.access_checkpoint_seconds
    while not stop.is_set():
        try:
            indexer.run_once()
            services.credentials.follow_chain_statuses()
            if time.monotonic() >= next_checkpoint:
                next_checkpoint = time.monotonic() + node.settings.access_checkpoint_seconds
                if access.head()[0] > 0:
                    access.checkpoint(anchoring, node.settings.node_org)
        except Exception:  # noqa: BLE001 - keep serving; the next pass retries
            log.exception("background pass failed")
        stop.wait(1.0)
