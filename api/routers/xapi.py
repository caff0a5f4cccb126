"""The learning record store's xAPI 2.0 resources under /xapi/ (ledger.records).

They answer in the standard's formats (statements, StatementResults, the about object) and
are described by the standard, so they stay out of /openapi.json, as the OpenID Provider's
endpoints do. Every /xapi answer, errors and 413s included, carries
``X-Experience-API-Version`` and the CORS headers (``xapi_asgi``, called by the app before
the framework); a request without a 2.0.x version header is refused with 400.

Credentials are HTTP Basic, as LRS clients send them: the user name is the organisation id,
the password its API key (api-keys.json). Schools write; a school or partner reads what it
recorded; the bureau and the auditor read everything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from api.deps import Services
from ledger.consortium.apikeys import authenticate
from ledger.errors import NotFound, PermissionDenied
from ledger.records import LrsCaller, StatementQuery
from ledger.records.errors import (
    BadStatement,
    PreconditionFailed,
    TooManyStatements,
    XapiUnauthenticated,
    XapiVersionMissing,
)
from ledger.records.service import MAX_STATEMENTS, iso_time, now_ms
from ledger.records.validation import check_agent, parse_timestamp

VERSION = "2.0.0"
_VERSION_RE = re.compile(r"2\.0(?:\.\d+)?\Z")
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, PUT, POST, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Authorization, Content-Type, X-Experience-API-Version, If-Match, If-None-Match, Accept-Language",
    ),
    (
        b"access-control-expose-headers",
        b"X-Experience-API-Version, X-Experience-API-Consistent-Through, Last-Modified, ETag, Content-Type",
    ),
    (b"access-control-max-age", b"600"),
]
_QUERY_PARAMS = {
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "after",
    "through",
}
_SINGLE_PARAMS = {"statementId", "voidedStatementId", "format", "attachments"}


async def xapi_asgi(scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send] | None:
    """For a /xapi request: answer a CORS preflight at once (None), or wrap `send` so that
    every answer carries the version and CORS headers (and a 401 the Basic challenge)."""
    if scope["method"] == "OPTIONS":
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(b"x-experience-api-version", VERSION.encode()), *_CORS],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return None

    async def with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-experience-api-version"
            ]
            headers += [(b"x-experience-api-version", VERSION.encode()), *_CORS]
            if message["status"] == 401:
                headers.append((b"www-authenticate", b'Basic realm="xapi", charset="UTF-8"'))
            message = {**message, "headers": headers}
        await send(message)

    return receive, with_headers


def _version(request: Request) -> None:
    version = request.headers.get("x-experience-api-version")
    if version is None or not _VERSION_RE.match(version.strip()):
        raise XapiVersionMissing(
            "send X-Experience-API-Version: 2.0.0 (this LRS speaks xAPI 2.0.x)"
            if version is None
            else f"xAPI version {version!r} is not served here (2.0.x is)"
        )


def lrs_caller(request: Request, services: Services) -> LrsCaller:
    """The organisation behind HTTP Basic credentials (user: organisation id, password: its API key)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise XapiUnauthenticated("malformed Basic credentials", code="unauthenticated") from None
        if not sep:
            raise XapiUnauthenticated("malformed Basic credentials", code="unauthenticated")
    elif scheme.lower() == "bearer":
        user, password = "", value.strip()
    else:
        raise XapiUnauthenticated(
            "credentials are required: HTTP Basic, the organisation id and its API key",
            code="unauthenticated",
        )
    try:
        key = authenticate(services.node.engine, password)
    except PermissionDenied:
        raise XapiUnauthenticated("unknown or revoked credentials", code="bad_api_key") from None
    if user and not secrets.compare_digest(user, key.org_id):
        raise XapiUnauthenticated("the user name is not the organisation of this API key", code="bad_api_key")
    return LrsCaller(org=key.org_id, role=key.role)


Caller = Annotated[LrsCaller, Depends(lrs_caller)]
router = APIRouter(prefix="/xapi", include_in_schema=False, dependencies=[Depends(_version)])
public = APIRouter(prefix="/xapi", include_in_schema=False)


def _consistent(response: Response, last: str | None = None) -> None:
    # every statement committed is visible at once: consistent through now
    response.headers["X-Experience-API-Consistent-Through"] = iso_time(now_ms())
    if last is not None:
        response.headers["Last-Modified"] = last


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/mixed":
        raise BadStatement(
            "statements with attachment data (multipart/mixed) are not accepted yet; "
            "send attachments by fileUrl",
            code="attachments_unsupported",
        )
    if content_type not in ("application/json", ""):
        raise BadStatement("statements are sent as application/json", code="bad_statement")
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        raise BadStatement("the body is not JSON", code="bad_statement") from None


def _refuse_unknown(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise BadStatement(f"unknown parameter {unknown[0]!r}", code="bad_parameter")


@router.put("/statements", status_code=204)
async def put_statement(request: Request, services: Services, caller: Caller) -> Response:
    _refuse_unknown(request, {"statementId"})
    statement_id = request.query_params.get("statementId")
    if not statement_id:
        raise BadStatement("PUT names the statement: ?statementId=<uuid>", code="bad_parameter")
    body = await _json_body(request)
    if request.headers.get("if-none-match", "").strip() == "*":
        try:
            await run_in_threadpool(services.records.get, caller, statement_id)
        except NotFound:  # not stored (or voided): the precondition holds
            pass
        else:
            raise PreconditionFailed("If-None-Match: * and the statement exists")
    await run_in_threadpool(services.records.store, caller, [body], statement_id=statement_id.lower())
    response = Response(status_code=204)
    _consistent(response)
    return response


@router.post("/statements")
async def post_statements(request: Request, services: Services, caller: Caller) -> Response:
    _refuse_unknown(request, set())
    body = await _json_body(request)
    statements = body if isinstance(body, list) else [body]
    if len(statements) > MAX_STATEMENTS:  # before anything else is read of them
        raise TooManyStatements(f"at most {MAX_STATEMENTS} statements per request")
    ids = await run_in_threadpool(services.records.store, caller, statements)
    response = JSONResponse(ids)
    _consistent(response)
    return response


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise BadStatement(f"{name} is true or false", code="bad_parameter")
    return value == "true"


def _query(request: Request) -> StatementQuery:
    params = request.query_params
    agent = None
    if "agent" in params:
        try:
            agent = json.loads(params["agent"])
        except ValueError:
            raise BadStatement("agent is an Agent or Group as JSON", code="bad_parameter") from None
        check_agent(agent, "agent")
    limit = params.get("limit", "0")
    if not limit.isdigit():
        raise BadStatement("limit is a non-negative integer", code="bad_parameter")
    numbers = {}
    for name in ("after", "through"):
        if name in params:
            if not params[name].isdigit():
                raise BadStatement(f"{name} is the cursor of a `more` link", code="bad_parameter")
            numbers[name] = int(params[name])
    return StatementQuery(
        agent=agent,
        verb=params.get("verb"),
        activity=params.get("activity"),
        registration=params.get("registration"),
        related_activities=_flag(request, "related_activities"),
        related_agents=_flag(request, "related_agents"),
        since=parse_timestamp(params["since"], "since") if "since" in params else None,
        until=parse_timestamp(params["until"], "until") if "until" in params else None,
        limit=int(limit),
        ascending=_flag(request, "ascending"),
        **numbers,
    )


def _multipart(statement_json: bytes) -> Response:
    boundary = secrets.token_hex(16)
    body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
        + statement_json
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Response(body, media_type=f'multipart/mixed; boundary="{boundary}"')


def _answer(value: Any, attachments: bool) -> Response:
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _multipart(data) if attachments else Response(data, media_type="application/json")


@router.get("/statements")
async def get_statements(request: Request, services: Services, caller: Caller) -> Response:
    params = request.query_params
    fmt = params.get("format", "exact")
    attachments = _flag(request, "attachments")
    language = request.headers.get("accept-language", "")
    records = services.records
    single = [name for name in ("statementId", "voidedStatementId") if name in params]
    if single:
        if len(single) > 1 or set(params) - _SINGLE_PARAMS:
            raise BadStatement(f"{single[0]} takes only format and attachments besides", code="bad_parameter")
        statement, stored = await run_in_threadpool(
            records.get, caller, params[single[0]], voided=single[0] == "voidedStatementId"
        )
        response = _answer(records.formatted(statement, fmt, language), attachments)
        _consistent(response, _http_date(stored))
        return response
    _refuse_unknown(request, _QUERY_PARAMS)
    query = _query(request)
    records.formatted({}, fmt)  # a bad format is refused before the query runs
    page = await run_in_threadpool(records.query, caller, query)
    result: dict[str, Any] = {"statements": [records.formatted(s, fmt, language) for s in page.statements]}
    if page.more is not None:
        more = {k: v for k, v in params.items() if k not in ("after", "through")}
        more |= {"after": str(page.more.after), "through": str(page.more.through)}
        result["more"] = "/xapi/statements?" + urlencode(more)
    response = _answer(result, attachments)
    _consistent(response, _http_date(page.last_stored) if page.last_stored else None)
    return response


@public.get("/about")
async def about() -> JSONResponse:
    return JSONResponse(
        {
            "version": [VERSION],
            "extensions": {
                "https://w3id.org/eduledger/xapi/anchoring": {
                    "kind": "learning record",
                    "proof": "/v1/records/{statement_id}/proof",
                    "verify": "/v1/records/verify",
                }
            },
        }
    )
