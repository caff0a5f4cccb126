"""Auditors and the bureau read the history of any record."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from ledger.audit.history import History
from ledger.audit.integrity import IntegrityAudit
from ledger.audit.models import AuditRun
from ledger.audit.report import to_csv, to_html
from ledger.consortium.models import ApiKey
from ledger.errors import InvalidInput, NotFound
from ledger.store import session_scope

router = APIRouter(prefix="/v1/audit")
log = logging.getLogger("eduledger.audit")
Reader = Annotated[ApiKey, Depends(require_role("auditor", "bureau"))]


@router.get("/history/{record_id:path}")
async def history(record_id: str, request: Request, key: Reader, check: str | None = None,
                  purpose: str | None = None) -> JSONResponse:
    node = request.app.state.node

    def read() -> dict[str, Any]:
        node.indexer().run_once()  # the index is current before it is read
        deployment = node.deployment
        if deployment is None:
            raise NotFound("no network deployed here", code="no_network")
        return History(node.engine, node.client, deployment).of(record_id, check_chain=check == "chain")

    result = await run_in_threadpool(read)
    request.app.state.services.record_access(request, key.org_id, key.role, "audit_read", "history",
                                             record_id[:200], purpose or "audit trail")
    return JSONResponse(result)


Auditor = Annotated[ApiKey, Depends(require_role("auditor"))]


def audit_for(services: Any, auditor_org: str | None) -> IntegrityAudit:
    """An audit whose report is signed by `auditor_org` (unsigned when None)."""
    node = services.node
    _, registry = node.contracts()
    return IntegrityAudit(node.engine, node.client, registry,
                          auditor_keys=services.keys_for(auditor_org) if auditor_org else None,
                          anchoring=services.credentials.anchoring, deployment=node.deployment)


def resume_audit_runs(services: Any) -> int:
    """Finish audit runs interrupted by a restart (each resumes from its last chunk)."""
    with session_scope(services.node.engine) as session:
        runs = session.exec(select(AuditRun).where(
            AuditRun.status.in_(["pending", "running"]))).all()  # type: ignore[attr-defined]
    for run in runs:
        audit_for(services, run.requested_by).run(run.id)
    return len(runs)


def _audit(request: Request, key: ApiKey) -> IntegrityAudit:
    return audit_for(request.app.state.services, key.org_id if key.role == "auditor" else None)


def _run_view(run: Any) -> dict[str, Any]:
    total = run.progress_total or 0
    return {"run_id": run.id, "status": run.status, "phase": run.phase,
            "progress": {"done": run.progress_done, "total": total,
                         "fraction": round(run.progress_done / total, 4) if total else 0.0},
            "finding_count": run.finding_count, "requested_by": run.requested_by,
            "created_at": run.created_at, "finished_at": run.finished_at,
            "report_hash": run.report_hash, "error": run.error}


@router.post("/runs", status_code=202)
def start_run(request: Request, key: Auditor) -> JSONResponse:
    """Start an integrity audit; it runs in the background (poll GET /v1/audit/runs/{id})."""
    audit = _audit(request, key)
    run_id = audit.start(key.org_id)
    request.app.state.services.record_access(request, key.org_id, key.role, "audit_read",
                                             "audit_run", run_id, "integrity audit")
    threading.Thread(target=_run_quietly, args=(audit, run_id), daemon=True,
                     name=f"audit-{run_id[:8]}").start()
    return JSONResponse(jsonable_encoder(_run_view(audit.get(run_id))), status_code=202)


def _run_quietly(audit: Any, run_id: str) -> None:
    try:
        audit.run(run_id)
    except Exception:  # noqa: BLE001 - the run records its error; it resumes at the next start
        log.exception("audit run %s failed", run_id)


@router.get("/runs/{run_id}")
def run_status(run_id: str, request: Request, key: Reader, format: str | None = None) -> Any:
    """Progress and, once done, the report: JSON (default), CSV or a readable HTML page."""
    audit = _audit(request, key)
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
        return HTMLResponse(to_html(report.report, report_hash_hex=report.report_hash,
                                    signature_hex=report.signature, anchor=report.anchor))
    if format not in (None, "json"):
        raise InvalidInput("format is json, csv or html", code="bad_format")
    return JSONResponse(jsonable_encoder({**view, "report": report.report,
                                          "signature": report.signature, "anchor": report.anchor}))
