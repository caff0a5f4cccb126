"""Holders and verifiers: redeem claim codes, share presentations, verify, resolve DIDs."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited
from api.deps import ClientAddress, Services
from api.limits import MAX_CREDENTIAL_CHARS
from api.pages import error_page, share_page
from api.verification import VerifyOne, verify_item, verify_request
from ledger.anchoring.proof import AnchorProof
from ledger.credentials.messages import message
from ledger.errors import InvalidInput, LedgerError
from wallet.qr import qr_png, qr_svg

router = APIRouter(dependencies=[Depends(rate_limited)])


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=64)
    holder_jwk: dict[str, Any]


@router.post("/v1/claims/redeem")
def redeem(body: Redeem, services: Services, client: ClientAddress) -> dict[str, Any]:
    result: dict[str, Any] = services.credentials.redeem(body.code, body.holder_jwk)
    services.record_access("holder", "holder", "redeem", "claim", result["credential_id"], client=client)
    return result


class NewShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presentation: str = Field(min_length=10, max_length=MAX_CREDENTIAL_CHARS)
    expires_in_days: int = Field(ge=1, le=180)
    anchor: dict[str, Any] | None = None


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("/v1/shares", status_code=201)
def create_share(body: NewShare, request: Request, services: Services) -> dict[str, Any]:
    anchor = AnchorProof.from_dict(body.anchor) if body.anchor is not None else None
    base = base_url(request)
    share, token = services.credentials.create_share(
        body.presentation, body.expires_in_days, audience=base, anchor=anchor)
    url = f"{base}/s/{share.id}"
    return {"share_id": share.id, "url": url, "qr_png_url": url + "/qr.png",
            "qr_svg_url": url + "/qr.svg",
            "expires_at": share.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "withdraw_token": token}


@router.delete("/v1/shares/{share_id}", status_code=204)
def withdraw_share(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.withdraw_share(
        share_id, request.headers.get("x-withdraw-token", ""))
    return Response(status_code=204)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get("/s/{share_id}", response_model=None)
def view_share(share_id: str, request: Request, services: Services, client: ClientAddress) -> Response:
    try:
        share, result = services.credentials.verify_share(share_id)
        services.record_access("public", "public", "view", "share", share_id, client=client)
    except LedgerError as exc:
        if _wants_json(request):
            raise
        en, zh = message(exc.code)
        return HTMLResponse(error_page(exc.code, zh, en), status_code=exc.http_status)
    body = {**result.to_dict(), "valid": result.valid,
            "share": {"id": share.id, "expires_at": share.expires_at.isoformat(),
                      "withdrawn": share.withdrawn_at is not None}}
    if {"share_withdrawn", "share_expired"} & set(result.failures):
        # The holder no longer shares this: show why, but none of their data.
        body["claims"], body["disclosed"] = None, []
    if _wants_json(request):
        return JSONResponse(body)
    return HTMLResponse(share_page(body))


@router.get("/s/{share_id}/qr.png")
def share_qr_png(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.get_share(share_id)
    return Response(qr_png(f"{base_url(request)}/s/{share_id}"), media_type="image/png")


@router.get("/s/{share_id}/qr.svg")
def share_qr_svg(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.get_share(share_id)
    return Response(qr_svg(f"{base_url(request)}/s/{share_id}"), media_type="image/svg+xml")


@router.post("/v1/verify")
async def verify(request: Request, services: Services) -> JSONResponse:
    """A credential or presentation: JSON {"credential": ...}, or the file itself as the body.

    Served by api.fastpath (same function, without the framework's per-request cost); this
    route documents it and serves apps built without the fast path."""
    body = await request.body()
    result = verify_request(services, body, request.headers.get("content-type", ""))
    # A plain JSONResponse: the result is JSON already, FastAPI's encoder would walk it again.
    return JSONResponse(result)


class VerifyBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credentials: list[str | dict[str, Any]] = Field(min_length=1, max_length=1000)


@router.post("/v1/verify/batch")
async def verify_batch(body: VerifyBatch, services: Services) -> JSONResponse:

    def run() -> list[dict[str, Any]]:
        out = []
        for raw in body.credentials:
            try:
                out.append(verify_item(services, VerifyOne(credential=raw)))
            except InvalidInput as exc:
                out.append({"valid": False, "failures": [exc.code], "error": exc.to_dict()})
        return out

    results = await run_in_threadpool(run)
    return JSONResponse({"count": len(results), "valid": sum(1 for r in results if r["valid"]),
                         "results": results})


@router.get("/v1/dids/{did}")
def resolve_did(did: str, services: Services) -> dict[str, Any]:
    return services.did_document(did)
