"""Learning records' proofs and their verification (ledger.records; the LRS itself is /xapi)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited, require_role
from api.deps import ClientAddress, Services
from api.models import (
    AUTH_ERRORS,
    CHAIN_DOWN,
    NUL_IN_TEXT,
    RATE_LIMITED,
    UNREADABLE_BODY,
    RecordFile,
    RecordFileView,
    RecordVerification,
    error_responses,
)
from ledger.consortium.models import ApiKey
from ledger.records import LrsCaller

router = APIRouter(prefix="/v1/records")
public = APIRouter(prefix="/v1/records", dependencies=[Depends(rate_limited)])

Reader = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau", "auditor"))]


@router.get(
    "/{statement_id}/proof",
    response_model=RecordFileView,
    responses=error_responses(
        {
            **AUTH_ERRORS,
            400: "`bad_statement`: the id is not a UUID",
            422: "`invalid_input`: purpose missing, or not 3 to 200 characters; " + NUL_IN_TEXT,
            404: "`statement_not_found` (also another school's statement), `record_not_anchored` "
            "(stored, its batch not anchored yet)",
        }
    ),
)
def record_proof(
    statement_id: str,
    key: Reader,
    services: Services,
    client: ClientAddress,
    purpose: Annotated[str, Query(min_length=3, max_length=200)],
) -> dict[str, Any]:
    """The statement with its salt and inclusion proof: a file anyone can check against the
    chain (POST /v1/records/verify, `eduledger verify-record`). Personal data: the reader
    gives a purpose, and the read is written to the access log."""
    caller = LrsCaller(org=key.org_id, role=key.role)
    record = services.records.record_file(caller, statement_id)
    services.record_access(
        key.org_id,
        key.role,
        "audit_read" if key.role == "auditor" else "read",
        "learning_record",
        statement_id,
        purpose,
        client=client,
    )
    return record


@public.post(
    "/verify",
    response_model=RecordVerification,
    responses=error_responses(
        {
            **UNREADABLE_BODY,
            **RATE_LIMITED,
            **CHAIN_DOWN,
            422: "`invalid_input`, `malformed` (not a record file)",
        }
    ),
)
async def verify_record(record: RecordFile, services: Services) -> dict[str, Any]:
    """Who recorded the statement, when it was anchored, whether it was voided, and whether
    it still matches the chain (each check with its outcome)."""
    result: dict[str, Any] = await run_in_threadpool(services.records.verify, record.model_dump())
    return result
