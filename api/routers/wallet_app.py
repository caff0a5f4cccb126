"""The holder's wallet as a web app for phones: the page (GET /wallet), its script and style
files, the web app manifest and the service worker that keeps them for offline use.

Pages and files, not API operations: they stay out of /openapi.json, as the SSO protocol's
pages do. The wallet itself talks to the public API (claims/redeem, shares, identity
challenges) like any other client; its key never leaves the browser.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from api.auth import rate_limited
from api.pages import wallet_page
from ledger.errors import NotFound

router = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limited)])

SCOPE = "/wallet"
# The files of api/static/wallet/ the node serves, by name, with their media types; nothing
# else is read from that folder, so a request can never name another path.
FILES = {"app.js": "text/javascript", "sdjwt.js": "text/javascript", "store.js": "text/javascript",
         "wallet.css": "text/css", "icon-192.png": "image/png", "icon-512.png": "image/png"}
_TEXT = ("text/javascript", "text/css")
# What the service worker keeps: the page and everything it loads.
OFFLINE = [SCOPE, *(f"{SCOPE}/{name}" for name in FILES), f"{SCOPE}/manifest.webmanifest"]

_PAGE_POLICY = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' blob:; "
                "connect-src 'self'; manifest-src 'self'; worker-src 'self'; media-src 'self' blob:; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@cache
def _file(name: str) -> bytes:
    return resources.files("api").joinpath("static").joinpath("wallet").joinpath(name).read_bytes()


@lru_cache(maxsize=1)
def _version() -> str:
    """A hash of every file and the page's template: a change to any makes a new service
    worker, which replaces the kept copies."""
    digest = hashlib.sha256(_file("sw.js"))
    digest.update(resources.files("api").joinpath("templates").joinpath("wallet.html").read_bytes())
    for name in sorted(FILES):
        digest.update(name.encode() + b"\0" + _file(name))
    return digest.hexdigest()[:16]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(SCOPE)
def page(request: Request) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    return HTMLResponse(wallet_page(api_url=_base(request), script_nonce=nonce), headers={
        **_COMMON, "Content-Security-Policy": _PAGE_POLICY.format(nonce=nonce),
        # Revalidated every time it is online; the service worker keeps the copy for offline.
        "Cache-Control": "no-cache", "X-Frame-Options": "DENY", "Permissions-Policy": "camera=(self)"})


@router.get(f"{SCOPE}/manifest.webmanifest")
def manifest() -> Response:
    body: dict[str, Any] = {
        "name": "eduledger 我的钱包 · My wallet", "short_name": "我的钱包",
        "description": "领取、保存和出示学历凭证与教育身份卡。 Redeem, keep and show credentials and "
                       "education identity cards.",
        "lang": "zh-CN", "id": SCOPE, "start_url": SCOPE, "scope": SCOPE, "display": "standalone",
        "orientation": "portrait", "background_color": "#f5f7fa", "theme_color": "#1565c0",
        "icons": [{"src": f"{SCOPE}/icon-192.png", "sizes": "192x192", "type": "image/png"},
                  {"src": f"{SCOPE}/icon-512.png", "sizes": "512x512", "type": "image/png"},
                  {"src": f"{SCOPE}/icon-512.png", "sizes": "512x512", "type": "image/png",
                   "purpose": "maskable"}],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json",
                    headers={**_COMMON, "Cache-Control": "no-cache"})


@router.get(f"{SCOPE}/sw.js")
def service_worker() -> Response:
    script = (_file("sw.js").decode().replace("__VERSION__", _version())
              .replace("__FILES__", json.dumps(OFFLINE)))
    # The worker lives under /wallet/ but looks after the page at /wallet itself.
    return Response(script, media_type="text/javascript", headers={
        **_COMMON, "Cache-Control": "no-cache", "Service-Worker-Allowed": SCOPE})


@router.get(SCOPE + "/{name}")
def asset(name: str) -> Response:
    media = FILES.get(name)
    if media is None:
        raise NotFound("no such file of the wallet", code="not_found")
    return Response(_file(name), media_type=media + ("; charset=utf-8" if media in _TEXT else ""),
                    headers={**_COMMON, "Cache-Control": "no-cache"})
