"""Issuing credentials and changing their status (schools, partners, the bureau)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import ClientAddress, Services
from ledger.consortium.models import ApiKey
from ledger.credentials.roster import load_json, parse_one, parse_roster
from ledger.credentials.types import CredentialType
from ledger.errors import NotFound

router = APIRouter(prefix="/v1")

Issuer = Annotated[ApiKey, Depends(require_role("school", "partner"))]
StatusActor = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau"))]
Reader = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau", "auditor"))]



@router.post("/credentials", status_code=201)
async def issue(request: Request, key: Issuer, services: Services) -> JSONResponse:
    """One credential ({"type", "credential"}), a roster ({"type", "credentials": [...]}),
    or a roster file (text/csv or application/json body with ?type=)."""
    body = await request.body()  # within MAX_ROSTER_BYTES (api.limits)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query_type = request.query_params.get("type")

    def validate() -> tuple[CredentialType, list[Any]]:
        if content_type == "text/csv":
            ctype = CredentialType.parse(query_type)
            return ctype, parse_roster(body, fmt="csv", ctype=ctype)
        doc = load_json(body)
        if isinstance(doc, dict) and "credential" in doc:
            ctype = CredentialType.parse(doc.get("type", query_type))
            return ctype, [parse_one(doc["credential"], ctype)]
        ctype = CredentialType.parse(doc.get("type", query_type) if isinstance(doc, dict) else query_type)
        return ctype, parse_roster(body, fmt="json", ctype=ctype)

    # Parsing 10,000 rows and signing them is CPU work: keep it off the event loop.
    ctype, rows = await run_in_threadpool(validate)
    batch = await run_in_threadpool(services.credentials.issue, key.org_id, ctype, rows,
                                    idempotency_key=request.headers.get("idempotency-key"))
    return JSONResponse(batch.to_dict(), status_code=201)


def _record_view(record: Any) -> dict[str, Any]:
    return {"credential_id": record.id, "type": record.type, "issuer_org": record.issuer_org,
            "batch_id": record.batch_id, "leaf": record.leaf_hash, "status": record.status,
            "status_reason": record.status_reason, "status_note": record.status_note,
            "status_changed_at": record.status_changed_at, "valid_from": record.valid_from,
            "valid_until": record.valid_until, "supersedes": record.supersedes,
            "superseded_by": record.superseded_by, "created_at": record.created_at}


@router.get("/credentials/{credential_id}")
def get_credential(credential_id: str, key: Reader, services: Services, client: ClientAddress,
                   purpose: Annotated[str, Query(min_length=3, max_length=200)],
                   content: bool = False) -> dict[str, Any]:
    """A credential's record; with ?content=true also the SD-JWT with every claim. Personal
    data: the reader gives a purpose, and the read is written to the access log."""
    record = (services.credentials.issued_by(key.org_id, credential_id) if key.role in ("school", "partner")
              else services.credentials.get(credential_id))
    action = "audit_read" if key.role == "auditor" else "read"
    services.record_access(key.org_id, key.role, action, "credential", credential_id, purpose, client=client)
    view = _record_view(record)
    if content:
        view["sd_jwt"] = record.sd_jwt
    return view


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["revoke", "suspend", "reinstate"]
    reason: int = Field(default=0, ge=0, le=65535)
    note: str | None = Field(default=None, max_length=500)


@router.post("/credentials/{credential_id}/status")
def change_status(credential_id: str, change: StatusChange, key: StatusActor,
                  services: Services) -> dict[str, Any]:
    record = services.credentials.change_status(
        key.org_id, credential_id, change.action, reason=change.reason, note=change.note)
    return _record_view(record)


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credential: dict[str, Any]
    reason: int = Field(default=0, ge=0, le=65535)
    note: str | None = Field(default=None, max_length=500)


@router.post("/credentials/{credential_id}/correct", status_code=201)
def correct(credential_id: str, correction: Correction, key: Issuer, services: Services) -> dict[str, Any]:
    old = services.credentials.issued_by(key.org_id, credential_id)
    row = parse_one(correction.credential, CredentialType(old.type))
    batch, old = services.credentials.correct(key.org_id, credential_id, row, reason=correction.reason,
                                              note=correction.note)
    return {"corrected": _record_view(old), **batch.to_dict()}


@router.get("/batches/{batch_id}")
def batch_status(batch_id: str, key: Reader, services: Services) -> dict[str, Any]:
    try:
        batch = services.anchoring.get(batch_id)
    except NotFound:
        batch = None
    if batch is None or (key.role in ("school", "partner") and batch.member_org != key.org_id):
        raise NotFound(f"no batch {batch_id}", code="batch_not_found")
    done = batch.status == "anchored"
    return {"batch_id": batch.id, "status": batch.status, "count": batch.leaf_count,
            "progress": 1.0 if done else 0.5, "root": batch.root, "tx_hash": batch.tx_hash,
            "block_number": batch.block_number, "block_time": batch.block_time}
