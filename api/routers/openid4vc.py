"""Standard wallets: OpenID for Verifiable Credential Issuance 1.0 (ledger.credentials.oid4vci)
and OpenID for Verifiable Presentations 1.0 (ledger.credentials.oid4vp).

The protocols' endpoints answer in their own formats (``{"error", "error_description"}``)
and are described by their metadata, so they stay out of /openapi.json, as single sign-on's
do; the routes a member organisation calls (an offer, a presentation request and its
verdict) are in it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited, require_role
from api.deps import Services
from api.models import (
    AUTH_ERRORS,
    CHAIN_DOWN_AT_FIRST_USE,
    UNREADABLE_BODY,
    CredentialOfferView,
    NewPresentationRequest,
    PresentationRequestView,
    error_responses,
)
from ledger.consortium.models import ApiKey
from ledger.credentials.jose import SdJwtError, json_loads
from ledger.credentials.models import PresentationRequest
from ledger.credentials.oid4vci import OAuthError
from ledger.credentials.oid4vp import dcql_query, request_url
from ledger.credentials.types import CredentialType
from ledger.node import NodeServices
from wallet.qr import qr_png

protocol = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limited)])
router = APIRouter(prefix="/v1")

Issuer = Annotated[ApiKey, Depends(require_role("school", "partner"))]
Member = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau"))]
_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store"}
_PNG = {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}


def issuer_url(request: Request, services: NodeServices) -> str:
    """The credential issuer identifier: the node's public URL (as single sign-on names it)."""
    return services.node.settings.sso_issuer.rstrip("/") or str(request.base_url).rstrip("/")


def _oauth_error(exc: OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.code}"'
    return JSONResponse(exc.body(), status_code=exc.http_status, headers=headers)


# -- OpenID4VCI ---------------------------------------------------------------------------


@protocol.get("/.well-known/openid-credential-issuer")
def issuer_metadata(request: Request, services: Services) -> JSONResponse:
    return JSONResponse(services.oid4vci.metadata(issuer_url(request, services)))


@protocol.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata(request: Request, services: Services) -> JSONResponse:
    return JSONResponse(services.oid4vci.authorization_server_metadata(issuer_url(request, services)))


@protocol.post("/oid4vci/token")
async def token(request: Request, services: Services) -> JSONResponse:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        return _oauth_error(OAuthError(f"the token request must be {_FORM}"))
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        answer = await run_in_threadpool(services.oid4vci.token, form)
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(answer, headers=_NO_STORE)


@protocol.post("/oid4vci/nonce")
def nonce(services: Services) -> JSONResponse:
    return JSONResponse(services.oid4vci.nonce(), headers=_NO_STORE)


@protocol.post("/oid4vci/credential")
async def credential(request: Request, services: Services) -> JSONResponse:
    raw = await request.body()
    try:
        body: Any = json_loads(raw, "credential request")
    except SdJwtError:
        body = None
    try:
        answer = await run_in_threadpool(services.oid4vci.credential, issuer_url(request, services),
                                         request.headers.get("authorization"), body)
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(answer, headers=_NO_STORE)


# -- what the issuing school calls -----------------------------------------------------------

_OFFER_ERRORS = {
    **AUTH_ERRORS,
    403: "`role_not_allowed` (the bureau or an auditor: only the issuer offers its credentials)",
    404: "`credential_not_found` (also for another school's or partner's credential)",
    409: "`claim_already_redeemed` (the holder has the credential already)",
    **CHAIN_DOWN_AT_FIRST_USE,
}


@router.get("/credentials/{credential_id}/offer", response_model=CredentialOfferView,
            responses=error_responses(_OFFER_ERRORS))
def credential_offer(credential_id: str, request: Request, key: Issuer, services: Services) -> dict[str, Any]:
    """The credential as an OpenID4VCI credential offer, for a standard wallet: hand the
    holder the URL (or its QR code) instead of the claim code."""
    offer, url = services.oid4vci.offer(issuer_url(request, services), key.org_id, credential_id)
    return {"credential_id": credential_id, "credential_offer": offer, "offer_url": url,
            "qr_png_url": f"{str(request.base_url).rstrip('/')}/v1/credentials/{credential_id}/offer.png"}


@router.get("/credentials/{credential_id}/offer.png", response_class=Response,
            responses={200: {"content": _PNG, "description": "a QR code of the offer URL"},
                       **error_responses(_OFFER_ERRORS)})
def credential_offer_qr(credential_id: str, request: Request, key: Issuer, services: Services) -> Response:
    _, url = services.oid4vci.offer(issuer_url(request, services), key.org_id, credential_id)
    return Response(qr_png(url), media_type="image/png", headers=_NO_STORE)


# -- OpenID4VP ----------------------------------------------------------------------------


@protocol.post("/oid4vp/responses/{request_id}")
async def presentation_response(request_id: str, request: Request, services: Services) -> JSONResponse:
    """The response endpoint of ``response_mode=direct_post``: the wallet's vp_token."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        return _oauth_error(OAuthError(f"the response must be {_FORM}"))
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        answer = await run_in_threadpool(services.oid4vp.respond, request_id, form)
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(answer, headers=_NO_STORE)


def _base(request: Request, services: NodeServices) -> str:
    return issuer_url(request, services)


def _request_view(row: PresentationRequest, base: str) -> dict[str, Any]:
    paths = json.loads(row.claims_json)
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    state = ("answered" if row.answered_at is not None
             else "expired" if expires <= datetime.now(UTC) else "waiting")
    return {"request_id": row.id, "state": state, "credential_type": row.credential_type,
            "claims": [".".join(map(str, p)) for p in paths], "client_id": row.client_id, "nonce": row.nonce,
            "dcql_query": dcql_query(CredentialType(row.credential_type), paths),
            "request_url": request_url(row, base),
            "qr_png_url": f"{base}/v1/presentation-requests/{row.id}/qr.png",
            "created_at": row.created_at, "expires_at": row.expires_at, "answered_at": row.answered_at,
            "last_error": row.error if row.answered_at is None else None,
            "verdict": json.loads(row.result_json) if row.result_json else None}


_REQUEST_ROLE = {403: "`role_not_allowed` (an auditor asks for no credentials)"}
_REQUEST_NOT_FOUND = {404: "`presentation_request_not_found` (also another organisation's)",
                      **CHAIN_DOWN_AT_FIRST_USE}


@router.post("/presentation-requests", status_code=201, response_model=PresentationRequestView,
             responses=error_responses({**UNREADABLE_BODY, **AUTH_ERRORS, **_REQUEST_ROLE,
                                        422: "`bad_claim` (not a dotted claim path), `invalid_input`",
                                        **CHAIN_DOWN_AT_FIRST_USE}))
def create_presentation_request(body: NewPresentationRequest, request: Request, key: Member,
                                services: Services) -> dict[str, Any]:
    """Ask a holder's standard wallet for a credential (OpenID4VP 1.0): show the holder the
    request URL or its QR code, then read the verdict here."""
    base = _base(request, services)
    row = services.oid4vp.create(key.org_id, base, body.credential_type.value, body.claims, body.expires_in)
    return _request_view(row, base)


@router.get("/presentation-requests/{request_id}", response_model=PresentationRequestView,
            responses=error_responses({**AUTH_ERRORS, **_REQUEST_ROLE, **_REQUEST_NOT_FOUND}))
def presentation_request(request_id: str, request: Request, key: Member,
                         services: Services) -> dict[str, Any]:
    """The request's state and, once the wallet answered, the verdict: every check of the
    credential (anchor, membership, status, key binding to this request's nonce and client
    id) and whether it is the type and claims asked for."""
    return _request_view(services.oid4vp.get(key.org_id, request_id), _base(request, services))


@router.get("/presentation-requests/{request_id}/qr.png", response_class=Response,
            responses={200: {"content": _PNG, "description": "a QR code of the request URL"},
                       **error_responses({**AUTH_ERRORS, **_REQUEST_ROLE, **_REQUEST_NOT_FOUND})})
def presentation_request_qr(request_id: str, request: Request, key: Member, services: Services) -> Response:
    row = services.oid4vp.get(key.org_id, request_id)
    return Response(qr_png(request_url(row, _base(request, services))), media_type="image/png",
                    headers=_NO_STORE)
