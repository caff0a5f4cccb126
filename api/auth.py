"""API keys (Authorization: Bearer KEY) and per-client rate limits for public endpoints."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.http import HTTPBase

from api.deps import Services
from ledger.consortium.apikeys import authenticate
from ledger.consortium.models import ApiKey
from ledger.errors import ConfigError, LedgerError, PermissionDenied
from ledger.identity.holder_auth import SCHEME, HolderAccess
from ledger.settings import Settings


class Unauthenticated(PermissionDenied):
    code = "unauthenticated"
    http_status = 401


class RateLimited(LedgerError):
    code = "rate_limited"
    http_status = 429


# Only for the document (the routes' `security`): it never refuses a request itself
# (auto_error=False); `caller` reads the header and answers 401 with our error body.
_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                     description="An organisation's API key (.data/api-keys.json): "
                                 "`Authorization: Bearer <key>`")


def caller(request: Request, services: Services,
           _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("an API key is required: Authorization: Bearer <key>",
                              code="unauthenticated")
    try:
        return authenticate(services.node.engine, key.strip())
    except PermissionDenied:
        raise Unauthenticated("unknown or revoked API key", code="bad_api_key") from None


def require_role(*roles: str) -> Callable[[ApiKey], ApiKey]:
    def dependency(key: Annotated[ApiKey, Depends(caller)]) -> ApiKey:
        if key.role not in roles:
            raise PermissionDenied(f"a {key.role} may not do this (needs {' or '.join(roles)})",
                                   code="role_not_allowed")
        return key

    return dependency


# A card's holder authenticates with a proof signed by the card's key (ledger.identity.holder_auth).
# OpenAPI compares http schemes in lower case (openapi-core too): the header may say HolderProof.
_holder_scheme = HTTPBase(scheme=SCHEME.lower(), scheme_name="holderProof", auto_error=False,
                          description="A card's holder: `Authorization: HolderProof <jwt>`, a fresh "
                                      "JWS (typ holder-proof+jwt) by the card's current holder key over "
                                      "sub (card id), htm, htu (path), iat and jti, made by the wallet "
                                      "for each request")
HolderDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(_holder_scheme)]
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _holder_of(request: Request, services: Services, card_id: str) -> HolderAccess:
    scheme, _, proof = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != SCHEME.lower() or not proof.strip():
        raise Unauthenticated(f"the card's holder proves it: Authorization: {SCHEME} <proof made by the "
                              "wallet>", code="unauthenticated")
    card = services.identity.get(card_id)
    return services.holder_proofs.authenticate(card, proof.strip(), method=request.method,
                                               path=request.url.path)


def card_holder(request: Request, services: Services, card_id: str,
                _documented: HolderDoc = None) -> HolderAccess:
    """The holder of the path's card, by their holder proof (401 with the reason otherwise)."""
    return _holder_of(request, services, card_id)


def reader_or_holder(*roles: str) -> Callable[..., ApiKey | HolderAccess]:
    """An organisation's API key of one of `roles`, or the holder proof of the path's card."""
    def dependency(request: Request, services: Services, card_id: str, _bearer_doc: BearerDoc = None,
                   _holder_doc: HolderDoc = None) -> ApiKey | HolderAccess:
        if request.headers.get("authorization", "").partition(" ")[0].lower() == SCHEME.lower():
            return _holder_of(request, services, card_id)
        return require_role(*roles)(caller(request, services))

    return dependency


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


SHARED_SLOTS = 65536


class FixedWindowLimit:
    """At most `amount` hits per client in each window of `seconds` (aligned to the clock).

    O(1) per request: it is asked on every public request, so it must cost next to nothing.
    Counts live in a dict of the current window's clients, or, when several serving
    processes share the limit (api.workers), in a shared table of SHARED_SLOTS (window,
    count) slots indexed by a hash of the client: two clients that land on one slot share
    a count, which can only make the limit stricter for them."""

    def __init__(self, spec: str) -> None:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", spec)
        if match is None:
            raise ConfigError(f"a rate limit is 'N/second|minute|hour|day', not {spec!r}")
        self.amount, self.seconds = int(match[1]), _UNITS[match[2]]
        self._window = -1
        self._hits: dict[str, int] = {}
        self._lock: Any = threading.Lock()
        self._shared: Any = None

    def share(self, counts: Any, lock: Any) -> None:
        """Count in `counts` (a shared array of 2 * SHARED_SLOTS int64) under `lock`."""
        self._shared, self._lock = counts, lock

    def hit(self, client: str) -> bool:
        window = int(time.time()) // self.seconds
        if self._shared is not None:
            slot = 2 * (zlib.crc32(client.encode("utf-8", "replace")) % SHARED_SLOTS)
            with self._lock:
                if self._shared[slot] != window:
                    self._shared[slot], self._shared[slot + 1] = window, 0
                self._shared[slot + 1] += 1
                return bool(self._shared[slot + 1] <= self.amount)
        with self._lock:
            if window != self._window:
                self._window, self._hits = window, {}
            hits = self._hits.get(client, 0) + 1
            self._hits[client] = hits
        return hits <= self.amount


_public_limit: FixedWindowLimit | None = None
_public_limit_lock = threading.Lock()


def public_limit() -> FixedWindowLimit:
    """This process's limit of public requests per client (EDULEDGER_PUBLIC_RATE_LIMIT, read
    at the first request)."""
    global _public_limit
    with _public_limit_lock:
        if _public_limit is None:
            _public_limit = FixedWindowLimit(Settings().public_rate_limit)
        return _public_limit


def check_public_rate(client: str) -> None:
    """Public endpoints (verify, share pages, DID documents): a window per client address."""
    if not public_limit().hit(client):
        raise RateLimited("too many requests; try again in a minute", code="rate_limited")


def rate_limited(request: Request) -> None:
    check_public_rate(request.client.host if request.client else "unknown")
