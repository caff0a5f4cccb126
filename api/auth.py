"""API keys (Authorization: Bearer KEY) and per-client rate limits for public endpoints."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from ledger.consortium.apikeys import authenticate
from ledger.errors import LedgerError, PermissionDenied
from ledger.settings import env
from ledger.store import ApiKey


class Unauthenticated(PermissionDenied):
    code = "unauthenticated"
    http_status = 401


class RateLimited(LedgerError):
    code = "rate_limited"
    http_status = 429


def caller(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("an API key is required: Authorization: Bearer <key>",
                              code="unauthenticated")
    try:
        return authenticate(request.app.state.node.engine, key.strip())
    except PermissionDenied:
        raise Unauthenticated("unknown or revoked API key", code="bad_api_key") from None


def require_role(*roles: str) -> Callable[[Request], ApiKey]:
    def dependency(request: Request) -> ApiKey:
        key = caller(request)
        if key.role not in roles:
            raise PermissionDenied(f"a {key.role} may not do this (needs {' or '.join(roles)})",
                                   code="role_not_allowed")
        return key

    return dependency


# A fixed window: O(1) per request (a moving window scans its stored hits on every request).
_limiter = FixedWindowRateLimiter(MemoryStorage())
PUBLIC_LIMIT = parse(env("PUBLIC_RATE_LIMIT", "600/minute") or "600/minute")


def check_public_rate(client: str) -> None:
    """Public endpoints (verify, share pages, DID documents): a window per client address."""
    if not _limiter.hit(PUBLIC_LIMIT, "public", client):
        raise RateLimited("too many requests; try again in a minute", code="rate_limited")


def rate_limited(request: Request) -> None:
    check_public_rate(request.client.host if request.client else "unknown")
