"""Holders and verifiers: redeem claim codes, share presentations, verify, resolve DIDs."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited
from api.deps import ClientAddress, Services
from api.models import (
    CHAIN_DOWN,
    CHAIN_DOWN_AT_FIRST_USE,
    RATE_LIMITED,
    UNREADABLE_BODY,
    VERIFY_REQUEST,
    DidDocument,
    NewShare,
    Redeem,
    Redeemed,
    ShareCreated,
    ShareVerification,
    Verification,
    VerifyBatch,
    VerifyBatchResult,
    VerifyOne,
    error_responses,
)
from api.pages import error_page, share_page
from api.verification import verify_item, verify_request
from ledger.anchoring.proof import AnchorProof
from ledger.credentials.messages import message
from ledger.errors import InvalidInput, LedgerError
from wallet.qr import qr_png, qr_svg

# Public: no key, a rate limit per client address.
router = APIRouter(dependencies=[Depends(rate_limited)], responses=error_responses(RATE_LIMITED))
_SHARE_NOT_FOUND = {404: "`share_not_found`"}


@router.post("/v1/claims/redeem", response_model=Redeemed, response_model_exclude_unset=True,
             responses=error_responses({**UNREADABLE_BODY,
                 404: "`claim_not_found`", 409: "`claim_already_redeemed`",
                 422: "`invalid_input`, `malformed` (holder_jwk is not an Ed25519 public JWK)",
                 **CHAIN_DOWN_AT_FIRST_USE}))
def redeem(body: Redeem, services: Services, client: ClientAddress) -> dict[str, Any]:
    result: dict[str, Any] = services.credentials.redeem(body.code, body.holder_jwk)
    services.record_access("holder", "holder", "redeem", "claim", result["credential_id"], client=client)
    return result


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("/v1/shares", status_code=201, response_model=ShareCreated, response_model_exclude_unset=True,
             responses=error_responses({**UNREADABLE_BODY,
                 422: "`invalid_input`, `holder_binding_missing`, `malformed`, or the code of the check "
                      "the presentation fails (`signature_invalid`, `claim_tampered`, `issuer_unknown`, ...)",
                 **CHAIN_DOWN}))
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


@router.delete("/v1/shares/{share_id}", status_code=204,
               openapi_extra={"parameters": [{
                   "name": "X-Withdraw-Token", "in": "header", "required": True, "schema": {"type": "string"},
                   "description": "the withdraw_token POST /v1/shares answered"}]},
               responses=error_responses({403: "`bad_withdraw_token`", **_SHARE_NOT_FOUND,
                                          **CHAIN_DOWN_AT_FIRST_USE}))
def withdraw_share(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.withdraw_share(
        share_id, request.headers.get("x-withdraw-token", ""))
    return Response(status_code=204)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get("/s/{share_id}", response_model=ShareVerification,
            responses={200: {"description": "The verification page (text/html), or with `Accept: "
                                            "application/json` (and not text/html) the same as JSON",
                             "content": {"text/html": {"schema": {"type": "string"}}}},
                       **error_responses({**_SHARE_NOT_FOUND, **CHAIN_DOWN}, html=True)})
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


@router.get("/s/{share_id}/qr.png", response_class=Response,
            responses={200: {"description": "The share page's URL as a QR code",
                             "content": {"image/png": {"schema": {"type": "string",
                                                                  "contentMediaType": "image/png"}}}},
                       **error_responses({**_SHARE_NOT_FOUND, **CHAIN_DOWN_AT_FIRST_USE})})
def share_qr_png(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.get_share(share_id)
    return Response(qr_png(f"{base_url(request)}/s/{share_id}"), media_type="image/png")


@router.get("/s/{share_id}/qr.svg", response_class=Response,
            responses={200: {"description": "The share page's URL as a QR code",
                             "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                       **error_responses({**_SHARE_NOT_FOUND, **CHAIN_DOWN_AT_FIRST_USE})})
def share_qr_svg(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.get_share(share_id)
    return Response(qr_svg(f"{base_url(request)}/s/{share_id}"), media_type="image/svg+xml")


@router.post("/v1/verify", response_model=Verification, openapi_extra=VERIFY_REQUEST,
             responses=error_responses({
                 422: "`malformed` (not JSON, or not a credential), `invalid_input` (details.problems), "
                      "`bad_time`",
                 **CHAIN_DOWN}))
async def verify(request: Request, services: Services) -> JSONResponse:
    """A credential or presentation: JSON {"credential": ...}, or the file itself as the body.

    Served by api.fastpath (same function, without the framework's per-request cost); this
    route documents it and serves apps built without the fast path."""
    body = await request.body()
    result = verify_request(services, body, request.headers.get("content-type", ""))
    # A plain JSONResponse: the result is JSON already, FastAPI's encoder would walk it again.
    return JSONResponse(result)


@router.post("/v1/verify/batch", response_model=VerifyBatchResult,
             responses=error_responses({**UNREADABLE_BODY,
                                        422: "`invalid_input` (details.problems): 1 to 1,000 credentials",
                                        **CHAIN_DOWN}))
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
    # A plain JSONResponse, as for one: up to 1,000 results, not validated again.
    return JSONResponse({"count": len(results), "valid": sum(1 for r in results if r["valid"]),
                         "results": results})


@router.get("/v1/dids/{did}", response_model=DidDocument, response_model_exclude_unset=True,
            responses=error_responses({404: "`did_not_found`", 422: "`bad_did`", **CHAIN_DOWN}))
def resolve_did(did: str, services: Services) -> dict[str, Any]:
    return services.did_document(did)
