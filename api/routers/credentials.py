"""Issuing credentials and changing their status (schools, partners, the bureau)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import ClientAddress, Services
from api.models import (
    AUTH_ERRORS,
    CHAIN_DOWN,
    CHAIN_DOWN_AT_FIRST_USE,
    ISSUE_REQUEST,
    NUL_IN_TEXT,
    UNREADABLE_BODY,
    BatchView,
    Correction,
    CorrectionView,
    CredentialView,
    IssuedBatchView,
    StatusChange,
    error_responses,
)
from ledger.consortium.models import ApiKey
from ledger.credentials.roster import load_json, parse_one, parse_roster
from ledger.credentials.types import CredentialType
from ledger.errors import NotFound

router = APIRouter(prefix="/v1")

Issuer = Annotated[ApiKey, Depends(require_role("school", "partner"))]
StatusActor = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau"))]
Reader = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau", "auditor"))]



@router.post("/credentials", status_code=201, response_model=IssuedBatchView, openapi_extra=ISSUE_REQUEST,
             responses=error_responses({
                 **AUTH_ERRORS,
                 403: "`role_not_allowed` (the key's role, or the member's role on chain, may not "
                      "issue this type), `member_not_active`",
                 409: "`certificate_number_taken` (a number this issuer already used for a live "
                      "credential of the type; details.numbers), `batch_refused` (the batch of this "
                      "Idempotency-Key was refused by the contract)",
                 413: "`roster_too_large`: more than 10,000 credentials",
                 422: "`invalid_roster` (every problem in details.errors), `malformed_roster`, "
                      "`empty_roster`, `unknown_type`, `bad_idempotency_key`, `idempotency_key_reused` "
                      "(the key was used for a different roster)",
                 **CHAIN_DOWN}))
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
    # Up to 10,000 credentials: sent as they are, not validated again against the model.
    return JSONResponse(batch.to_dict(), status_code=201)


def _record_view(record: Any) -> dict[str, Any]:
    return {"credential_id": record.id, "type": record.type, "issuer_org": record.issuer_org,
            "batch_id": record.batch_id, "leaf": record.leaf_hash, "status": record.status,
            "status_reason": record.status_reason, "status_note": record.status_note,
            "status_changed_at": record.status_changed_at, "valid_from": record.valid_from,
            "valid_until": record.valid_until, "supersedes": record.supersedes,
            "superseded_by": record.superseded_by, "created_at": record.created_at}


@router.get("/credentials/{credential_id}", response_model=CredentialView, response_model_exclude_unset=True,
            responses=error_responses({
                **AUTH_ERRORS,
                404: "`credential_not_found` (also for another school's or partner's credential)",
                422: "`invalid_input`: purpose missing, or not 3 to 200 characters; " + NUL_IN_TEXT,
                **CHAIN_DOWN_AT_FIRST_USE}))
def get_credential(credential_id: str, key: Reader, services: Services, client: ClientAddress,
                   purpose: Annotated[str, Query(min_length=3, max_length=200)],
                   content: bool = False) -> dict[str, Any]:
    """A credential's record; with ?content=true also the SD-JWT with every claim and its
    anchor proof, so that the answer saved as a file is one `eduledger verify` checks.
    Personal data: the reader gives a purpose, and the read is written to the access log."""
    record = (services.credentials.issued_by(key.org_id, credential_id) if key.role in ("school", "partner")
              else services.credentials.get(credential_id))
    action = "audit_read" if key.role == "auditor" else "read"
    services.record_access(key.org_id, key.role, action, "credential", credential_id, purpose, client=client)
    view = _record_view(record)
    if content:
        anchor = services.credentials.anchor_for_leaf(bytes.fromhex(record.leaf_hash[2:]))
        view["sd_jwt"], view["anchor"] = record.sd_jwt, anchor.to_dict() if anchor else None
    return view


@router.post("/credentials/{credential_id}/status", response_model=CredentialView,
             response_model_exclude_unset=True,
             responses=error_responses({**UNREADABLE_BODY,
                 **AUTH_ERRORS,
                 403: "`role_not_allowed` (an auditor)",
                 404: "`credential_not_found` (also for another school's or partner's credential)",
                 409: "`not_anchored`, `contract_reverted` (the registry refuses the change, e.g. "
                      "reinstating a valid credential or changing a revoked one)",
                 422: "`invalid_input`",
                 **CHAIN_DOWN}))
def change_status(credential_id: str, change: StatusChange, key: StatusActor,
                  services: Services) -> dict[str, Any]:
    record = services.credentials.change_status(
        key.org_id, credential_id, change.action, reason=change.reason, note=change.note)
    return _record_view(record)


@router.post("/credentials/{credential_id}/correct", status_code=201, response_model=CorrectionView,
             response_model_exclude_unset=True,
             responses=error_responses({**UNREADABLE_BODY,
                 **AUTH_ERRORS,
                 403: "`role_not_allowed` (the bureau or an auditor)",
                 404: "`credential_not_found` (also for another school's or partner's credential)",
                 409: "`already_superseded` (corrected before), `not_anchored`, `contract_reverted`",
                 422: "`invalid_roster` (the row's problems in details.errors), `invalid_input`",
                 **CHAIN_DOWN}))
def correct(credential_id: str, correction: Correction, key: Issuer, services: Services) -> dict[str, Any]:
    old = services.credentials.issued_by(key.org_id, credential_id)
    row = parse_one(correction.credential, CredentialType(old.type))
    batch, old = services.credentials.correct(key.org_id, credential_id, row, reason=correction.reason,
                                              note=correction.note)
    return {"corrected": _record_view(old), **batch.to_dict()}


@router.get("/batches/{batch_id}", response_model=BatchView, response_model_exclude_unset=True,
            responses=error_responses({**AUTH_ERRORS, 404: "`batch_not_found` (also another member's)",
                                       422: NUL_IN_TEXT}))
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
