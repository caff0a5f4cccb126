"""Holders and verifiers: redeem claim codes, share presentations, verify, resolve DIDs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited
from api.errors import validation_problems
from api.pages import error_page, share_page
from api.services import Services
from ledger.credentials.anchorproof import AnchorRef, read_credential
from ledger.credentials.did import did_document_for
from ledger.credentials.messages import message
from ledger.credentials.roster import load_json
from ledger.errors import InvalidInput, LedgerError
from wallet.qr import qr_png, qr_svg

router = APIRouter(dependencies=[Depends(rate_limited)])

MAX_CREDENTIAL_CHARS = 256 * 1024


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=64)
    holder_jwk: dict[str, Any]


@router.post("/v1/claims/redeem")
def redeem(body: Redeem, request: Request) -> dict[str, Any]:
    services = request.app.state.services
    result: dict[str, Any] = services.credentials.redeem(body.code, body.holder_jwk)
    services.record_access(request, "holder", "holder", "redeem", "claim", result["credential_id"])
    return result


class NewShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presentation: str = Field(min_length=10, max_length=MAX_CREDENTIAL_CHARS)
    expires_in_days: int = Field(ge=1, le=180)
    anchor: dict[str, Any] | None = None


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("/v1/shares", status_code=201)
def create_share(body: NewShare, request: Request) -> dict[str, Any]:
    anchor = AnchorRef.from_dict(body.anchor) if body.anchor is not None else None
    base = base_url(request)
    share, token = request.app.state.services.credentials.create_share(
        body.presentation, body.expires_in_days, audience=base, anchor=anchor)
    url = f"{base}/s/{share.id}"
    return {"share_id": share.id, "url": url, "qr_png_url": url + "/qr.png",
            "qr_svg_url": url + "/qr.svg",
            "expires_at": share.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "withdraw_token": token}


@router.delete("/v1/shares/{share_id}", status_code=204)
def withdraw_share(share_id: str, request: Request) -> Response:
    request.app.state.services.credentials.withdraw_share(
        share_id, request.headers.get("x-withdraw-token", ""))
    return Response(status_code=204)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get("/s/{share_id}", response_model=None)
def view_share(share_id: str, request: Request) -> Response:
    services = request.app.state.services
    try:
        share, result = services.credentials.verify_share(share_id)
        services.record_access(request, "public", "public", "view", "share", share_id)
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
def share_qr_png(share_id: str, request: Request) -> Response:
    _exists(request, share_id)
    return Response(qr_png(f"{base_url(request)}/s/{share_id}"), media_type="image/png")


@router.get("/s/{share_id}/qr.svg")
def share_qr_svg(share_id: str, request: Request) -> Response:
    _exists(request, share_id)
    return Response(qr_svg(f"{base_url(request)}/s/{share_id}"), media_type="image/svg+xml")


def _exists(request: Request, share_id: str) -> None:
    request.app.state.services.credentials.get_share(share_id)


class VerifyOne(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credential: str | dict[str, Any]
    require_holder_binding: bool = False
    aud: str | None = Field(default=None, max_length=300)
    nonce: str | None = Field(default=None, max_length=300)
    # Verify as of this time (e.g. "was it valid on the hiring date?"); default: now.
    at: datetime | None = None


MAX_VERIFY_BODY = MAX_CREDENTIAL_CHARS + 4096


def _verify(services: Services, item: VerifyOne) -> dict[str, Any]:
    sd_jwt, anchor = read_credential(item.credential)
    if item.at is not None and item.at.utcoffset() is None:
        raise InvalidInput("'at' needs a time zone, e.g. 2026-07-01T00:00:00Z", code="bad_time")
    result = services.credentials.verifier.verify(
        sd_jwt, anchor, require_holder_binding=item.require_holder_binding, aud=item.aud,
        nonce=item.nonce, now=item.at.timestamp() if item.at else None)
    return result.to_dict()


def verify_request(services: Services, body: bytes, content_type: str) -> dict[str, Any]:
    """POST /v1/verify once its body is read; shared by the route and api.fastpath."""
    if len(body) > MAX_VERIFY_BODY:
        raise InvalidInput("the credential is too large", code="too_large")
    item: VerifyOne
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            doc = load_json(body)
        except InvalidInput:
            raise InvalidInput("the body is not valid JSON", code="malformed") from None
        try:
            item = (VerifyOne.model_validate(doc) if isinstance(doc, dict) and "credential" in doc
                    else VerifyOne(credential=doc if isinstance(doc, dict) else str(doc)))
        except ValidationError as exc:
            raise InvalidInput("the request is not valid", code="invalid_input",
                               problems=validation_problems(exc.errors())) from None
    else:
        item = VerifyOne(credential=body.decode("utf-8", errors="replace"))
    return _verify(services, item)


@router.post("/v1/verify")
async def verify(request: Request) -> JSONResponse:
    """A credential or presentation: JSON {"credential": ...}, or the file itself as the body.

    Served by api.fastpath (same function, without the framework's per-request cost); this
    route documents it and serves apps built without the fast path."""
    body = await request.body()
    result = verify_request(request.app.state.services, body, request.headers.get("content-type", ""))
    # A plain JSONResponse: the result is JSON already, FastAPI's encoder would walk it again.
    return JSONResponse(result)


class VerifyBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credentials: list[str | dict[str, Any]] = Field(min_length=1, max_length=1000)


@router.post("/v1/verify/batch")
async def verify_batch(body: VerifyBatch, request: Request) -> JSONResponse:
    services = request.app.state.services

    def run() -> list[dict[str, Any]]:
        out = []
        for raw in body.credentials:
            try:
                out.append(_verify(services, VerifyOne(credential=raw)))
            except InvalidInput as exc:
                out.append({"valid": False, "failures": [exc.code], "error": exc.to_dict()})
        return out

    results = await run_in_threadpool(run)
    return JSONResponse({"count": len(results), "valid": sum(1 for r in results if r["valid"]),
                         "results": results})


@router.get("/v1/dids/{did}")
def resolve_did(did: str, request: Request) -> dict[str, Any]:
    return did_document_for(request.app.state.node, did)
