"""Typed dependencies of the routers: the node's services, the caller, the client address.

The app keeps one ``NodeServices`` (``create_app``); this module is the only place that
reads it off the application, so a router declares what it needs and never reaches into
``request.app.state``.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from ledger.node import NodeServices

__all__ = ["ClientAddress", "Services", "Workers", "client_address", "get_services", "serving_workers"]


def get_services(request: Request) -> NodeServices:
    services: NodeServices = request.app.state.services
    return services


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


class WorkerPool(Protocol):
    """The worker processes serving next to the node (api.workers.WorkerProcesses)."""

    count: int

    def ready(self) -> int: ...


def serving_workers(request: Request) -> WorkerPool | None:
    """The workers of ``serve --workers N``; None when the node serves alone."""
    workers: WorkerPool | None = request.app.state.workers
    return workers


Services = Annotated[NodeServices, Depends(get_services)]
ClientAddress = Annotated[str | None, Depends(client_address)]
Workers = Annotated[WorkerPool | None, Depends(serving_workers)]
