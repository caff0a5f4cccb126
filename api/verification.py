"""POST /v1/verify once its body is read: shared by the route (api.routers.holders), the
node's fast path (api.fastpath) and the worker processes (api.workers)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from api.errors import validation_problems
from api.limits import MAX_CREDENTIAL_CHARS, MAX_VERIFY_BODY, too_large
from api.models import VerifyOne
from ledger.credentials.anchorproof import read_credential
from ledger.credentials.roster import load_json
from ledger.errors import InvalidInput
from ledger.node import NodeServices

__all__ = ["MAX_CREDENTIAL_CHARS", "MAX_VERIFY_BODY", "VerifyOne", "verify_item", "verify_request"]


def verify_item(services: NodeServices, item: VerifyOne) -> dict[str, Any]:
    sd_jwt, anchor = read_credential(item.credential)
    if item.at is not None and item.at.utcoffset() is None:
        raise InvalidInput("'at' needs a time zone, e.g. 2026-07-01T00:00:00Z", code="bad_time")
    result = services.credentials.verifier.verify(
        sd_jwt, anchor, require_holder_binding=item.require_holder_binding, aud=item.aud,
        nonce=item.nonce, now=item.at.timestamp() if item.at else None)
    return result.to_dict()


def verify_request(services: NodeServices, body: bytes, content_type: str) -> dict[str, Any]:
    """POST /v1/verify once its body is read; shared by the route and api.fastpath."""
    if len(body) > MAX_VERIFY_BODY:
        raise too_large(MAX_VERIFY_BODY)
    item: VerifyOne
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            doc = load_json(body)
        except InvalidInput:
            raise InvalidInput("the body is not valid JSON", code="malformed") from None
        try:
            item = (VerifyOne.model_validate(doc) if isinstance(doc, dict) and "credential" in doc
                    else VerifyOne(credential=doc if isinstance(doc, dict) else str(doc)))
        except ValidationError as exc:
            raise InvalidInput("the request is not valid", code="invalid_input",
                               problems=validation_problems(exc.errors())) from None
    else:
        item = VerifyOne(credential=body.decode("utf-8", errors="replace"))
    return verify_item(services, item)
