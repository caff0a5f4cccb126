"""GET /health and GET /v1/network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ledger.consortium.views import network_view

router = APIRouter()


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    node = request.app.state.node
    answer = {"status": "ok", "chain_id": node.client.chain_id, "head": node.client.block_number()}
    workers = getattr(request.app.state, "workers", None)
    if workers is not None:  # serve --workers N: how many of them accept connections
        answer["workers"] = {"configured": workers.count, "ready": workers.ready()}
    return answer


@router.get("/v1/network")
def network(request: Request) -> dict[str, Any]:
    return network_view(request.app.state.node)
