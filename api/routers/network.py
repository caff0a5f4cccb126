"""GET /health and GET /v1/network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ledger.consortium.views import network_view

router = APIRouter()


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    node = request.app.state.node
    return {"status": "ok", "chain_id": node.client.chain_id, "head": node.client.block_number()}


@router.get("/v1/network")
def network(request: Request) -> dict[str, Any]:
    return network_view(request.app.state.node)
