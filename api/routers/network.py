"""GET /health and GET /v1/network."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Services, Workers
from api.models import CHAIN_DOWN, Health, NetworkView, error_responses

router = APIRouter()


@router.get("/health", response_model=Health, response_model_exclude_unset=True,
            responses=error_responses(CHAIN_DOWN))
def health(services: Services, workers: Workers) -> dict[str, Any]:
    client = services.node.client
    answer: dict[str, Any] = {"status": "ok", "chain_id": client.chain_id, "head": client.block_number()}
    if workers is not None:  # serve --workers N: how many of them accept connections
        answer["workers"] = {"configured": workers.count, "ready": workers.ready()}
    return answer


@router.get("/v1/network", response_model=NetworkView, response_model_exclude_unset=True,
            responses=error_responses(CHAIN_DOWN))
def network(services: Services) -> dict[str, Any]:
    return services.network_view()
