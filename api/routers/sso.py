"""Single sign-on with the education identity card: the OpenID Provider's endpoints, the
sign-in page, and the registration of relying parties (ledger.identity.sso).

The protocol's endpoints answer in OAuth's and OpenID Connect's own formats (errors as
``{"error", "error_description"}`` or a redirect to the client) and are described by the
discovery document, so they stay out of /openapi.json; the registration routes and the
status the sign-in page polls are in it.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited, require_role
from api.deps import Services
from api.models import (
    AUTH_ERRORS,
    IDENTITY_CHAIN_DOWN_AT_FIRST_USE,
    RATE_LIMITED,
    UNREADABLE_BODY,
    NewSsoClient,
    SignInStatus,
    SsoClientCreated,
    SsoClientList,
    SsoClientView,
    error_responses,
)
from api.pages import sso_error_page, sso_sign_in_page
from ledger.consortium.models import ApiKey
from ledger.errors import LedgerError
from ledger.identity.sso import Answer, HttpRequest, SignIn
from ledger.identity.sso.models import SsoClient
from ledger.identity.sso.service import SIGN_IN_SECONDS
from ledger.node import NodeServices

protocol = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limited)])
public = APIRouter(prefix="/v1/sso", dependencies=[Depends(rate_limited)])
router = APIRouter(prefix="/v1/sso")

Registrar = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau"))]
_ROLE = {403: "`role_not_allowed` (an auditor runs no platform)"}
_FORM = "application/x-www-form-urlencoded"


def _issuer(request: Request, services: NodeServices) -> str:
    return services.node.settings.sso_issuer.rstrip("/") or str(request.base_url).rstrip("/")


async def _http(request: Request, issuer: str) -> HttpRequest:
    form: list[tuple[str, str]] = []
    if request.method == "POST" and request.headers.get("content-type", "").split(";")[0].strip() == _FORM:
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    # The URL as the issuer names it (behind a proxy the socket's may be plain http).
    url = issuer + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HttpRequest(request.method, url, request.headers, list(request.query_params.multi_items()),
                       form)


def _send(answer: Answer) -> Response:
    headers = {k: v for k, v in answer.headers if k.lower() != "content-type"}
    if isinstance(answer.body, dict):
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)
    return Response(answer.body or None, status_code=answer.status, headers=headers)


def _page_headers(nonce: str) -> dict[str, str]:
    # Nothing from elsewhere, no framing (a sign-in page), the one inline script by nonce.
    return {"Content-Security-Policy": f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                                       f"script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; "
                                       "form-action 'none'; frame-ancestors 'none'",
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _page(request: Request, services: NodeServices, sign_in: SignIn) -> HTMLResponse:
    base = str(request.base_url).rstrip("/")
    nonce = secrets.token_urlsafe(16)
    org = services.deployment.member(sign_in.org_id)
    html = sso_sign_in_page(
        client_name=sign_in.client_name, org_name=str(org["name"]) if org else sign_in.org_id,
        claims=sign_in.claims, challenge_id=sign_in.challenge.id,
        challenge_url=f"{base}/v1/identity/challenges/{sign_in.challenge.id}", api_url=base,
        expires_at=sign_in.challenge.expires_at, status_url=f"/v1/sso/sign-ins/{sign_in.id}",
        continue_url=f"/sso/sign-ins/{sign_in.id}/continue", script_nonce=nonce)
    return HTMLResponse(html, headers=_page_headers(nonce))


def _error(exc: LedgerError) -> HTMLResponse:
    return HTMLResponse(sso_error_page(exc.code, exc.message if exc.code.startswith("invalid") else ""),
                        status_code=exc.http_status, headers={"Cache-Control": "no-store"})


def _cookie(sign_in_id: str) -> str:
    return f"eduledger_sso_{sign_in_id}"


# -- the protocol ---------------------------------------------------------------------------


@protocol.get("/.well-known/openid-configuration")
def discovery(request: Request, services: Services) -> JSONResponse:
    return JSONResponse(services.sso.metadata(_issuer(request, services)))


@protocol.get("/sso/jwks.json")
def jwks(services: Services) -> JSONResponse:
    return JSONResponse(services.sso.jwks(), headers={"Cache-Control": "public, max-age=3600"})


@protocol.api_route("/sso/authorize", methods=["GET", "POST"])
async def authorize(request: Request, services: Services) -> Response:
    """The authorization endpoint: the sign-in page (with the card's challenge), or an error
    sent back to the client, or (client or redirect URI unknown) an error page."""
    issuer = _issuer(request, services)
    http = await _http(request, issuer)
    try:
        result = await run_in_threadpool(services.sso.begin, issuer, http)
    except LedgerError as exc:
        return _error(exc)
    if isinstance(result, Answer):
        return _send(result)
    page = _page(request, services, result)
    assert result.browser_token is not None
    page.set_cookie(_cookie(result.id), result.browser_token, max_age=SIGN_IN_SECONDS + 60,
                    path=f"/sso/sign-ins/{result.id}", httponly=True, samesite="lax",
                    secure=request.url.scheme == "https")
    return page


@protocol.get("/sso/sign-ins/{sign_in_id}/continue")
def continue_sign_in(sign_in_id: str, request: Request, services: Services) -> Response:
    """Once the wallet answered: on to the client with the code (or the reason it failed);
    before, the page again."""
    try:
        result = services.sso.finish(_issuer(request, services), sign_in_id,
                                     request.cookies.get(_cookie(sign_in_id)))
    except LedgerError as exc:
        return _error(exc)
    if isinstance(result, SignIn):
        return _page(request, services, result)
    response = _send(result)
    response.delete_cookie(_cookie(sign_in_id), path=f"/sso/sign-ins/{sign_in_id}")
    return response


@protocol.post("/sso/token")
async def token(request: Request, services: Services) -> Response:
    issuer = _issuer(request, services)
    http = await _http(request, issuer)
    return _send(await run_in_threadpool(services.sso.token, issuer, http))


@protocol.api_route("/sso/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, services: Services) -> Response:
    issuer = _issuer(request, services)
    http = await _http(request, issuer)
    return _send(await run_in_threadpool(services.sso.userinfo, issuer, http))


# -- what the sign-in page polls ------------------------------------------------------------


@public.get("/sign-ins/{sign_in_id}", response_model=SignInStatus,
            responses=error_responses({**RATE_LIMITED, 404: "`sign_in_not_found`",
                                       **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def sign_in_status(sign_in_id: str, services: Services) -> dict[str, Any]:
    """Whether the holder's wallet has answered the sign-in's challenge (the page polls it)."""
    return services.sso.status(sign_in_id)


# -- relying parties -----------------------------------------------------------------------


def _client_view(row: SsoClient) -> dict[str, Any]:
    return {"client_id": row.client_id, "name": row.name, "org_id": row.org_id,
            "redirect_uris": json.loads(row.redirect_uris_json),
            "token_endpoint_auth_method": row.auth_method,
            "sector": row.sector, "created_at": row.created_at, "disabled": row.disabled_at is not None}


@router.post("/clients", status_code=201, response_model=SsoClientCreated,
             responses=error_responses({**UNREADABLE_BODY, **AUTH_ERRORS, **_ROLE,
                                        422: "`bad_redirect_uri` (not https, or http off the loopback, or "
                                             "with a fragment), `sector_required` (redirect URIs on several "
                                             "hosts), `bad_sector`, `bad_client_name`, `invalid_input`",
                                        **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def register_client(body: NewSsoClient, key: Registrar, services: Services) -> dict[str, Any]:
    """A platform that signs people in with their card (an OpenID Connect relying party);
    the secret is shown once."""
    row, secret = services.sso.register_client(key.org_id, body.name, body.redirect_uris, public=body.public,
                                               sector=body.sector, auth_method=body.auth_method)
    return {**_client_view(row), "client_secret": secret}


@router.get("/clients", response_model=SsoClientList,
            responses=error_responses({**AUTH_ERRORS, **_ROLE, **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def list_clients(key: Registrar, services: Services) -> dict[str, Any]:
    """The organisation's own relying parties."""
    return {"clients": [_client_view(c) for c in services.sso.clients_of(key.org_id)]}


@router.delete("/clients/{client_id}", response_model=SsoClientView,
               responses=error_responses({**AUTH_ERRORS, **_ROLE,
                                          404: "`client_not_found` (also another organisation's client)",
                                          **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def disable_client(client_id: str, key: Registrar, services: Services) -> dict[str, Any]:
    """No more sign-ins for the client, and its access tokens stop working at once."""
    return _client_view(services.sso.disable_client(key.org_id, client_id))
