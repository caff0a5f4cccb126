"""Auditors and the bureau read the history of any record."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import WithJsonSchema
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import ClientAddress, Services
from api.models import (
    AUTH_ERRORS,
    CHAIN_DOWN,
    NUL_IN_TEXT,
    AuditRunReport,
    AuditRunView,
    History,
    error_responses,
)
from api.pages import audit_report_page
from ledger.audit.integrity import IntegrityAudit
from ledger.audit.models import AuditRun
from ledger.audit.report import to_csv
from ledger.consortium.models import ApiKey
from ledger.errors import InvalidInput, NotFound
from ledger.node import NodeServices

router = APIRouter(prefix="/v1/audit")
log = logging.getLogger("eduledger.audit")
Reader = Annotated[ApiKey, Depends(require_role("auditor", "bureau"))]


@router.get("/history/{record_id:path}", response_model=History, response_model_exclude_unset=True,
            responses=error_responses({
                **AUTH_ERRORS,
                403: "`role_not_allowed`: only auditors and the bureau",
                404: "`credential_not_found`, `member_not_found`, `not_found` (nothing on record for a hash)",
                422: "`bad_id`: not a credential id (urn:uuid:...), a 32-byte hash, an organisation id, a "
                     "member number or an account address; `invalid_input`; " + NUL_IN_TEXT,
                **CHAIN_DOWN}))
async def history(record_id: str, key: Reader, services: Services, client: ClientAddress,
                  check: Annotated[str | None, Query(description="`chain`: re-read each entry from the chain "
                                                                 "and mark it confirmed or missing")] = None,
                  purpose: Annotated[str | None, Query(description="why (access log); default: audit trail")]
                  = None) -> dict[str, Any]:
    """Every event that touched a credential, a leaf hash, a batch root or a member, oldest first."""
    def read() -> dict[str, Any]:
        return services.history().of(record_id, check_chain=check == "chain")

    result = await run_in_threadpool(read)
    services.record_access(key.org_id, key.role, "audit_read", "history", record_id[:200],
                           purpose or "audit trail", client=client)
    return result


Auditor = Annotated[ApiKey, Depends(require_role("auditor"))]


def _audit(services: NodeServices, key: ApiKey) -> IntegrityAudit:
    return services.integrity_audit(key.org_id if key.role == "auditor" else None)


def _run_view(run: AuditRun) -> dict[str, Any]:
    total = run.progress_total or 0
    return {"run_id": run.id, "status": run.status, "phase": run.phase,
            "progress": {"done": run.progress_done, "total": total,
                         "fraction": round(run.progress_done / total, 4) if total else 0.0},
            "finding_count": run.finding_count, "requested_by": run.requested_by,
            "created_at": run.created_at, "finished_at": run.finished_at,
            "report_hash": run.report_hash, "error": run.error}


@router.post("/runs", status_code=202, response_model=AuditRunView,
             responses=error_responses({**AUTH_ERRORS, 403: "`role_not_allowed`: only auditors",
                                        **CHAIN_DOWN}))
def start_run(key: Auditor, services: Services, client: ClientAddress) -> JSONResponse:
    """Start an integrity audit; it runs in the background (poll GET /v1/audit/runs/{id})."""
    audit = _audit(services, key)
    run_id = audit.start(key.org_id)
    services.record_access(key.org_id, key.role, "audit_read", "audit_run", run_id, "integrity audit",
                           client=client)
    threading.Thread(target=_run_quietly, args=(audit, run_id), daemon=True,
                     name=f"audit-{run_id[:8]}").start()
    # jsonable_encoder: its timestamps read ...+00:00, as they always have here (the model's
    # own serialisation would write ...Z).
    return JSONResponse(jsonable_encoder(_run_view(audit.get(run_id))), status_code=202)


def _run_quietly(audit: IntegrityAudit, run_id: str) -> None:
    try:
        audit.run(run_id)
    except Exception:  # noqa: BLE001 - the run records its error; it resumes at the next start
        log.exception("audit run %s failed", run_id)


_REPORT_MEDIA = {"text/csv": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}


@router.get("/runs/{run_id}", response_model=AuditRunView | AuditRunReport,
            responses={200: {"description": "The run's progress; once done, its report: JSON (with "
                                            "?format=json or none), CSV (?format=csv) or a page "
                                            "(?format=html)",
                             "content": _REPORT_MEDIA},
                       **error_responses({
                           **AUTH_ERRORS,
                           403: "`role_not_allowed`: only auditors and the bureau",
                           404: "`audit_run_not_found`, `report_not_ready` (a ?format= before the run "
                                "is done)",
                           422: "`bad_format`: format is json, csv or html; " + NUL_IN_TEXT})})
def run_status(run_id: str, key: Reader, services: Services,
               format: Annotated[str | None, Query(), WithJsonSchema({"enum": ["json", "csv", "html"]})]
               = None) -> Any:
    """Progress and, once done, the report: JSON (default), CSV or a readable HTML page."""
    audit = _audit(services, key)
    run = audit.get(run_id)
    view = _run_view(run)
    if run.status != "done":
        if format is not None:
            raise NotFound(f"audit run {run_id} has no report yet ({run.status})", code="report_not_ready")
        return JSONResponse(jsonable_encoder(view))
    report = audit.report(run_id)
    if format == "csv":
        return Response(to_csv(report.report), media_type="text/csv; charset=utf-8")
    if format == "html":
        return HTMLResponse(audit_report_page(report))
    if format not in (None, "json"):
        raise InvalidInput("format is json, csv or html", code="bad_format")
    return JSONResponse(jsonable_encoder({**view, "report": report.report,
                                          "signature": report.signature, "anchor": report.anchor}))
