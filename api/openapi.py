"""The OpenAPI document (``/openapi.json``, ``/docs``): FastAPI's, from the routes and the
models of api.models, plus what the routes cannot say themselves.

Added here: the schemas that request bodies read by the routes themselves refer to (the
credential rows of POST /v1/credentials, the verify request), and a description of what the
whole service answers beyond each route (unknown paths, methods a path does not take, the
worker processes' limits). Removed: the 422 that FastAPI adds to every route with
parameters, in its own body schema, which is not what this service sends; the routes that
can answer 422 declare it with ours (api.models.InvalidInputBody), and a route whose only
parameters are path strings cannot.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api.limits import body_limit
from api.models import EXTRA_SCHEMAS

DESCRIPTION = """\
A permissioned education ledger: issue, hold, share and verify credentials anchored on chain.

Every error answer is a JSON object `{"code", "message", "details"?}` with a stable machine
`code` (each operation lists the statuses and codes it can give). Besides those:

* a path that names no route answers 404 `not_found`;
* a method a path does not take answers 405 `method_not_allowed` with an `Allow` header
  listing the methods it does take;
* an unexpected failure answers 500 `internal_error` (it is logged);
* served with `--workers N`, a request body over 64 MiB is refused by the worker with 413
  `too_large`, and a request the worker cannot pass to the node answers 502
  `node_unavailable`.

Authenticated operations take an organisation's API key (`Authorization: Bearer <key>`);
the public ones (verification, claim redemption, shares, DID documents) are limited per
client address (429 `rate_limited`).
"""


def install_openapi(app: FastAPI) -> None:
    """Serve the document described above as ``app.openapi()``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=DESCRIPTION,
                                   routes=app.routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            _, extra = models_json_schema([(model, "validation") for model in EXTRA_SCHEMAS],
                                          ref_template="#/components/schemas/{model}")
            for name, schema in extra.get("$defs", {}).items():
                schemas.setdefault(name, schema)
            for path, operations in document["paths"].items():
                for method, operation in operations.items():
                    if "requestBody" in operation:
                        _document_body_limit(operation, method.upper(), path)
                    answer = operation.get("responses", {}).get("422", {})
                    if "HTTPValidationError" in str(answer.get("content", {})):
                        del operation["responses"]["422"]
                    operation["responses"] = dict(sorted(operation["responses"].items()))
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_body_limit(operation: dict[str, Any], method: str, path: str) -> None:
    """Every body is held to its route's limit (api.limits) before the route reads it."""
    limit = body_limit(method, re.sub(r"\{[^}]+\}", "x", path))
    responses = operation.setdefault("responses", {})
    described = responses.get("413", {}).get("description", "")
    text = f"`too_large`: a body over {limit} bytes, refused before it is read"
    responses["413"] = {"description": f"{described}; {text}" if described
                        else f"Content Too Large — {text}",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    operation["requestBody"].setdefault("x-max-bytes", limit)
