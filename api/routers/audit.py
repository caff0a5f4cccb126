"""Auditors and the bureau read the history of any record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from ledger.audit.history import History
from ledger.errors import NotFound
from ledger.store import ApiKey

router = APIRouter(prefix="/v1/audit")
Reader = Annotated[ApiKey, Depends(require_role("auditor", "bureau"))]


@router.get("/history/{record_id:path}")
async def history(record_id: str, request: Request, key: Reader, check: str | None = None,
                  purpose: str | None = None) -> JSONResponse:
    node = request.app.state.node

    def read() -> dict[str, Any]:
        node.indexer().run_once()  # the index is current before it is read
        deployment = node.deployment
        if deployment is None:
            raise NotFound("no network deployed here", code="no_network")
        return History(node.engine, node.client, deployment).of(record_id, check_chain=check == "chain")

    result = await run_in_threadpool(read)
    request.app.state.services.record_access(request, key.org_id, key.role, "audit_read", "history",
                                             record_id[:200], purpose or "audit trail")
    return JSONResponse(result)
