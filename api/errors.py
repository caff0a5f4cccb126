"""Map the domain's errors (and malformed requests) to JSON with a machine code."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import LedgerError

log = logging.getLogger("eduledger.api")


def validation_problems(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's errors as {"field": "a.b.0", "problem": ...}, the shape of every 422."""
    return [{"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
            for err in errors]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(_: Request, exc: LedgerError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"code": "invalid_input", "message": "the request is not valid",
             "details": {"problems": validation_problems(exc.errors())}},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # A 405 carries the route's `Allow` header (RFC 9110): the methods it does accept.
        return JSONResponse({"code": code, "message": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse({"code": "invalid_input", "message": "the request is nested too deeply"},
                            status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(
            {"code": "internal_error", "message": "an unexpected error; it has been logged"},
            status_code=500,
        )
