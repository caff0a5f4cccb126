"""Holders and verifiers: redeem claim codes, share presentations, verify, resolve DIDs."""

from __future__ import annotations

import json
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
    CredentialFile,
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
from api.pages import error_page, share_page, verify_form_page
from api.report_pdf import report_pdf
from api.share_report import share_report
from api.verification import verify_item, verify_request
from ledger.anchoring.proof import AnchorProof
from ledger.credentials.anchorproof import envelope
from ledger.credentials.messages import message
from ledger.credentials.service import shown_verify_code
from ledger.errors import InvalidInput, LedgerError
from ledger.node import NodeServices
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
            openapi_extra={"parameters": [{
                "name": "format", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["json"]},
                "description": "json: the same as JSON, as with `Accept: application/json` (for a link)"}]},
            responses={200: {"description": "The verification page (text/html), or with `Accept: "
                                            "application/json` (and not text/html) or ?format=json the "
                                            "same as JSON",
                             "content": {"text/html": {"schema": {"type": "string"}}}},
                       **error_responses({**_SHARE_NOT_FOUND, **CHAIN_DOWN}, html=True)})
def view_share(share_id: str, request: Request, services: Services, client: ClientAddress) -> Response:
    return _share_answer(share_id, request, services, client)


def _share_answer(share_id: str, request: Request, services: NodeServices, client: str | None) -> Response:
    as_json = _wants_json(request) or request.query_params.get("format") == "json"
    try:
        body = _verified_share(services, share_id)
        services.record_access("public", "public", "view", "share", share_id, client=client)
    except LedgerError as exc:
        if as_json:
            raise
        return _error_page(exc)
    if as_json:
        return JSONResponse(body)
    return HTMLResponse(share_page(body, base=base_url(request)))


def _error_page(exc: LedgerError) -> HTMLResponse:
    en, zh = message(exc.code)
    return HTMLResponse(error_page(exc.code, zh, en), status_code=exc.http_status)


def _verified_share(services: NodeServices, share_id: str) -> dict[str, Any]:
    """The share's verification as the share page's JSON: the result, the issuer's names in
    both languages and the share (expiry, verification code)."""
    share, result = services.credentials.verify_share(share_id)
    name_zh, name_en = services.credentials.issuer_names(result)
    body = {**result.to_dict(), "valid": result.valid,
            "share": {"id": share.id, "expires_at": share.expires_at.isoformat(),
                      "withdrawn": share.withdrawn_at is not None,
                      "verify_code": shown_verify_code(share.verify_code) if share.verify_code else None}}
    if name_zh:
        body["issuer"] = {**body["issuer"], "name_zh": name_zh, "name_en": name_en or None}
    if {"share_withdrawn", "share_expired"} & set(result.failures):
        # The holder no longer shares this: show why, but none of their data (nor the code).
        body["claims"], body["disclosed"] = None, []
        body["share"]["verify_code"] = None
    return body


_LIVE_SHARE = {404: "`share_not_found`, `share_withdrawn`, `share_expired` (a share no longer "
                   "shared serves nothing of it)"}


@router.get("/s/{share_id}/qr.png", response_class=Response,
            responses={200: {"description": "The share page's URL as a QR code",
                             "content": {"image/png": {"schema": {"type": "string",
                                                                  "contentMediaType": "image/png"}}}},
                       **error_responses({**_LIVE_SHARE, **CHAIN_DOWN_AT_FIRST_USE})})
def share_qr_png(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.live_share(share_id)
    return Response(qr_png(f"{base_url(request)}/s/{share_id}"), media_type="image/png")


@router.get("/s/{share_id}/qr.svg", response_class=Response,
            responses={200: {"description": "The share page's URL as a QR code",
                             "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                       **error_responses({**_LIVE_SHARE, **CHAIN_DOWN_AT_FIRST_USE})})
def share_qr_svg(share_id: str, request: Request, services: Services) -> Response:
    services.credentials.live_share(share_id)
    return Response(qr_svg(f"{base_url(request)}/s/{share_id}"), media_type="image/svg+xml")


@router.get("/s/{share_id}/presentation.json", response_model=CredentialFile,
            responses=error_responses({**_LIVE_SHARE, **CHAIN_DOWN_AT_FIRST_USE}))
def share_presentation(share_id: str, services: Services, client: ClientAddress) -> dict[str, Any]:
    """What the holder shared (the claims they chose, signed by them) as a credential file,
    to check with `eduledger verify FILE --rpc URL` against any node, without this service."""
    share = services.credentials.live_share(share_id)
    services.record_access("public", "public", "view", "share", share_id, client=client)
    raw = json.loads(share.anchor_json)
    return envelope(share.presentation, AnchorProof.from_dict(raw) if raw else None)


@router.get("/s/{share_id}/report.pdf", response_class=Response,
            responses={200: {"description": "The verification as a printable A4 report, with the share "
                                            "page's QR code and verification code",
                             "content": {"application/pdf": {"schema": {
                                 "type": "string", "contentMediaType": "application/pdf"}}}},
                       **error_responses({**_LIVE_SHARE, **CHAIN_DOWN})})
async def share_report_pdf(share_id: str, request: Request, services: Services,
                           client: ClientAddress) -> Response:
    def build() -> bytes:
        services.credentials.live_share(share_id)
        body = _verified_share(services, share_id)
        services.record_access("public", "public", "view", "share", share_id, client=client)
        return report_pdf(share_report(body, base=base_url(request)))

    pdf = await run_in_threadpool(build)  # setting the font takes a fraction of a second
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="verification-{share_id}.pdf"'})


@router.get("/verify", response_model=ShareVerification,
            openapi_extra={"parameters": [{
                "name": "code", "in": "query", "required": False,
                "schema": {"type": "string", "maxLength": 40},
                "description": "a share's verification code, XXXX-XXXX-XXXX-XXXX (case, spaces and dashes "
                               "do not matter)"}]},
            responses={200: {"description": "Without a code, the form it is typed into (zh/en); with the "
                                            "code of a share, that share's verification, as GET /s/{id} "
                                            "answers it (the page, or JSON)",
                             "content": {"text/html": {"schema": {"type": "string"}}}},
                       **error_responses({
                           404: "`verify_code_not_found` (a page: the form again, saying so)",
                           422: "`bad_verify_code`: not a code's 16 characters (a page: the form again, "
                                "saying what a code looks like)",
                           **CHAIN_DOWN}, html=True)})
def verify_by_code(request: Request, services: Services, client: ClientAddress) -> Response:
    """Manual entry, instead of scanning: ?code= the share's verification code gives the
    share's verification, the very one its link gives."""
    code = request.query_params.get("code")
    if code is None:
        return HTMLResponse(verify_form_page())
    try:
        share = services.credentials.share_by_code(code)
    except LedgerError as exc:
        if _wants_json(request):
            raise
        return HTMLResponse(verify_form_page(code=code[:40], error_code=exc.code),
                            status_code=exc.http_status)
    return _share_answer(share.id, request, services, client)


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
