"""Request bodies have a size limit per route, enforced before any route reads them.

A body announced larger than its route's limit (``Content-Length``) is refused at once
with 413, without reading it; one that turns out larger while it streams is refused as
soon as it passes the limit (the rest is never read). Within the limit, the body is read
here and handed to the route as it came. Every limit is in the OpenAPI description.
"""

from __future__ import annotations

import re

from starlette.types import Message, Receive, Scope

from ledger.errors import InvalidInput, TooLarge

__all__ = ["DEFAULT_LIMIT", "ROUTE_LIMITS", "body_limit", "read_limited", "replay"]

KIB, MIB = 1024, 1024 * 1024
MAX_CREDENTIAL_CHARS = 256 * KIB  # one credential or presentation, as text
MAX_VERIFY_BODY = MAX_CREDENTIAL_CHARS + 4 * KIB
MAX_ROSTER_BYTES = 20 * MIB
MAX_VERIFY_BATCH_BODY = 32 * MIB  # up to 1,000 credentials
MAX_RPC_BODY = 2 * MIB
MAX_CARD_ROSTER_BYTES = 256 * MIB  # up to 10,000 cards with their photos, as a ZIP
MAX_SIGNED_DOCUMENT = 20 * MIB  # a file to seal, sign or verify
MAX_DOCUMENT_BODY = 12 * MIB  # a document to a card's holder (8 MiB), as base64 in JSON
DEFAULT_LIMIT = 64 * KIB
MAX_STATEMENT_BODY = 1 * MIB  # one xAPI statement (or a record file)
MAX_STATEMENTS_BODY = 16 * MIB

# (method, path pattern, limit in bytes): the first that matches applies.
ROUTE_LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("POST", re.compile(r"/v1/credentials"), MAX_ROSTER_BYTES),
    ("POST", re.compile(r"/v1/credentials/[^/]+/correct"), 1 * MIB),
    ("POST", re.compile(r"/v1/verify"), MAX_VERIFY_BODY),
    ("POST", re.compile(r"/v1/verify/batch"), MAX_VERIFY_BATCH_BODY),
    ("POST", re.compile(r"/v1/shares"), MAX_CREDENTIAL_CHARS + 8 * KIB),
    ("POST", re.compile(r"/v1/claims/redeem"), 16 * KIB),
    ("POST", re.compile(r"/rpc"), MAX_RPC_BODY),
    ("POST", re.compile(r"/v1/identity/cards"), MAX_CARD_ROSTER_BYTES),
    ("POST", re.compile(r"/v1/identity/claims/redeem"), 16 * KIB),
    ("POST", re.compile(r"/v1/identity/cards/[^/]+/documents"), MAX_DOCUMENT_BODY),
    ("POST", re.compile(r"/v1/identity/verify"), MAX_CREDENTIAL_CHARS + 4 * MIB),
    ("POST", re.compile(r"/v1/signatures"), MAX_SIGNED_DOCUMENT),
    ("POST", re.compile(r"/v1/signatures/holder"), MAX_SIGNED_DOCUMENT),
    ("POST", re.compile(r"/v1/signatures/verify"), MAX_SIGNED_DOCUMENT + 128 * KIB),  # and its signature
    # a wallet's answer may carry the card's portrait file (at most 2 MiB, base64)
    ("POST", re.compile(r"/v1/identity/challenges/[^/]+/answer"), MAX_CREDENTIAL_CHARS + 4 * MIB),
    ("POST", re.compile(r"/v1/exams"), 1 * MIB),  # up to 2,000 candidates
    # a standard wallet's OpenID4VP answer: one presentation, form-encoded
    ("POST", re.compile(r"/oid4vp/responses/[^/]+"), 3 * MAX_CREDENTIAL_CHARS),
    # a factual record with up to ten evidence files, as base64 in JSON
    ("POST", re.compile(r"/v1/evaluation/terms/[^/]+/records"), 12 * MIB),
    ("POST", re.compile(r"/v1/evaluation/terms/[^/]+/scores"), 1 * MIB),  # up to 5,000 scores
    ("POST", re.compile(r"/xapi/statements"), MAX_STATEMENTS_BODY),  # up to 1,000 statements
    ("PUT", re.compile(r"/xapi/statements"), MAX_STATEMENT_BODY),
    ("POST", re.compile(r"/v1/records/verify"), MAX_STATEMENT_BODY),
)


def body_limit(method: str, path: str) -> int:
    for route_method, pattern, limit in ROUTE_LIMITS:
        if method == route_method and pattern.fullmatch(path):
            return limit
    return DEFAULT_LIMIT


def too_large(limit: int) -> TooLarge:
    shown = f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit // KIB} KiB"
    return TooLarge(f"the request body is larger than {shown}, this endpoint's limit",
                    limit_bytes=limit)


async def read_limited(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, or TooLarge (by Content-Length before reading, or once the bytes read
    pass `limit`); InvalidInput ``disconnected`` if the client goes away first."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            if not value.isdigit():
                raise InvalidInput("Content-Length is not a number", code="bad_content_length")
            if int(value) > limit:
                raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client went away", code="disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the route `body` (already read), then waits for the client's
    disconnect as the original would."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
