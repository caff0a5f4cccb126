"""POST /v1/verify straight on ASGI, in the node and in its worker processes.

Verification is the public endpoint with by far the most traffic (every employer, every
QR scan). Through the framework's middleware, routing, dependency injection and response
classes a verification costs several times the checks themselves; the app answers that
one route with the very same function (`verify_request`), the same rate limit and the same
errors before the framework sees the request, and leaves every other request to it. The
node's worker processes (api.workers) answer it with the same function.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.auth import check_public_rate
from api.limits import MAX_VERIFY_BODY, body_limit, read_limited, replay
from api.routers.xapi import xapi_asgi
from api.verification import verify_request
from ledger.errors import LedgerError
from ledger.node import NodeServices

log = logging.getLogger("eduledger.api")


def verify_answer(services: NodeServices, content_type: str, body: bytes) -> tuple[int, bytes]:
    """HTTP status and JSON body for one POST /v1/verify (in this process or in a worker)."""
    status = 200
    try:
        answer: dict[str, Any] = verify_request(services, body, content_type)
    except LedgerError as exc:
        status, answer = exc.http_status, exc.to_dict()
    except RecursionError:  # as api.errors: deep input is the client's problem, not ours
        status, answer = 422, {"code": "invalid_input", "message": "the request is nested too deeply"}
    return status, json_bytes(answer)


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON, as starlette's JSONResponse renders it; orjson is several times
    faster on these answers, the standard encoder covers what orjson refuses (huge ints)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


CLIENT_HEADER = b"x-eduledger-client"
"""The original client's address, on requests a worker passes to the node (api.workers);
trusted only on the node's Unix socket."""


def trusted_client(scope: Scope) -> None:
    """On the node: a request from a worker (over the Unix socket) carries its client's
    address; from anywhere else the header is dropped, so nobody can claim another address."""
    headers = scope["headers"]
    server = scope.get("server")
    if server is not None and server[1] is None:  # a Unix socket: ours
        forwarded = next((v for k, v in headers if k == CLIENT_HEADER), None)
        if forwarded is not None:
            scope["client"] = (forwarded.decode("latin-1"), 0)
    elif any(k == CLIENT_HEADER for k, _ in headers):
        scope["headers"] = [(k, v) for k, v in headers if k != CLIENT_HEADER]


class FastVerifyAPI(FastAPI):
    """The FastAPI app, with POST /v1/verify answered before the framework's middleware
    stack, routing and dependency injection (the route itself stays, for the schema), and
    every request body held to its route's size limit (api.limits) before a route reads it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        trusted_client(scope)
        if scope["path"].startswith("/xapi/"):  # the standard's headers on every answer (CORS too)
            wrapped = await xapi_asgi(scope, receive, send)
            if wrapped is None:
                return
            receive, send = wrapped
        if scope["path"] == "/v1/verify" and scope["method"] == "POST":
            await serve_verify(lambda: self.state.services, scope, receive, send)
            return
        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                body = await read_limited(scope, receive, body_limit(scope["method"], scope["path"]))
            except LedgerError as exc:
                if exc.code != "disconnected":
                    await send_json(send, exc.http_status, json_bytes(exc.to_dict()))
                return
            receive = replay(body, receive)
        await super().__call__(scope, receive, send)


async def serve_verify(services: Callable[[], NodeServices], scope: Scope, receive: Receive,
                       send: Send) -> None:
    """POST /v1/verify on ASGI (in the node and in its workers)."""
    try:
        try:
            client = scope.get("client")
            check_public_rate(client[0] if client else "unknown")
            body = await read_limited(scope, receive, MAX_VERIFY_BODY)
        except LedgerError as exc:
            if exc.code != "disconnected":
                await send_json(send, exc.http_status, json_bytes(exc.to_dict()))
            return
        content_type = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
        await send_json(send, *verify_answer(services(), content_type, body))
    except Exception:  # as api.errors does for every other route: logged, never shown
        log.exception("unexpected error")
        await send_json(send, 500, b'{"code":"internal_error",'
                                   b'"message":"an unexpected error; it has been logged"}')


async def send_json(send: Send, status: int, data: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
