"""Electronic signatures and seals: an organisation seals a file, a card holder's wallet
gets a signing certificate and has its signatures timestamped, anyone verifies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import rate_limited, require_role
from api.deps import Services
from api.limits import MAX_SIGNED_DOCUMENT
from api.models import (
    AUTH_ERRORS,
    CHAIN_DOWN,
    RATE_LIMITED,
    UNREADABLE_BODY,
    HolderCertificate,
    HolderCertificateRequest,
    HolderDetachedRecord,
    HolderRecorded,
    Sealed,
    SignatureVerification,
    error_responses,
)
from ledger.consortium.models import ApiKey
from ledger.errors import InvalidInput, TooLarge

router = APIRouter(prefix="/v1/signatures")
public = APIRouter(prefix="/v1/signatures", dependencies=[Depends(rate_limited)])

Sealer = Annotated[ApiKey, Depends(require_role("school", "bureau", "partner"))]
_ANY_FILE = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
PDF_ERRORS = "`not_a_pdf`, `malformed_pdf` (a PDF that cannot be read), `encrypted_pdf`, `empty_document`"


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


@router.post(
    "",
    response_model=Sealed,
    status_code=201,
    response_model_exclude_unset=True,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": _ANY_FILE,
            "description": "the file to seal, as it is (a PDF gets an embedded signature with a "
            "visible seal; any other file a detached signature)",
        }
    },
    responses=error_responses(
        {
            **AUTH_ERRORS,
            403: "`role_not_allowed` (an auditor's key, or a member whose role on chain does not seal), "
            "`member_not_active`",
            422: f"{PDF_ERRORS}, `bad_format` (not pdf, jws or sm2), `bad_name`, `invalid_input`",
            **CHAIN_DOWN,
        }
    ),
)
async def seal(
    request: Request,
    key: Sealer,
    services: Services,
    format: Annotated[
        Literal["pdf", "jws", "sm2"] | None,
        Query(description="pdf (default for a PDF), jws (default otherwise) or sm2 (SM2 over SM3)"),
    ] = None,
    name: Annotated[str | None, Query(max_length=200, description="the file's name")] = None,
) -> dict[str, Any]:
    """The organisation seals the file (电子签章) with its key and timestamps the seal on chain."""
    document = await request.body()  # within the limit of api.limits
    media = _content_type(request) or None

    def run() -> dict[str, Any]:
        return services.signatures.seal(
            key.org_id, document, fmt=format, name=name, media_type=media
        ).to_dict()

    return await run_in_threadpool(run)


@public.post(
    "/certificates",
    response_model=HolderCertificate,
    responses=error_responses(
        {
            **UNREADABLE_BODY,
            **RATE_LIMITED,
            403: "`holder_key_mismatch` (the key is not the card's key on chain)",
            404: "`card_not_found` (no such card at this node: ask the card's school's node)",
            409: "`card_not_active` (suspended, revoked, ended or outside its validity)",
            422: "`bad_proof`, `malformed` (not an Ed25519 JWK), `invalid_input`",
            **CHAIN_DOWN,
        }
    ),
)
def holder_certificate(body: HolderCertificateRequest, services: Services) -> dict[str, Any]:
    """A short certificate from the card's school for the holder's wallet key, so that the
    wallet embeds a standard signature in a PDF (subject: the opaque card id, never a name)."""
    return services.signatures.holder_certificate(body.card_id, body.holder_jwk, body.key_salt, body.proof)


@public.post(
    "/holder",
    response_model=HolderRecorded,
    response_model_exclude_unset=True,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a PDF the wallet signed (application/pdf), or a detached signature",
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/HolderDetachedRecord"}},
            },
        }
    },
    responses=error_responses(
        {
            **RATE_LIMITED,
            403: "`holder_key_mismatch` (signed with a key that is not the card's key on chain)",
            404: "`card_not_found` (the card is not kept by this node)",
            422: f"{PDF_ERRORS}, `no_holder_signature`, `signature_invalid`, `malformed_signature`, "
            "`not_a_holder_signature`, `bad_format` (neither application/pdf nor application/json), "
            "`invalid_input`",
            **CHAIN_DOWN,
        }
    ),
)
async def record_holder(request: Request, services: Services) -> dict[str, Any]:
    """Timestamp a card holder's signatures (made in the wallet: the key never leaves it). The
    answer is each signature's verdict: a card suspended or revoked is anchored all the same,
    and its signatures do not verify."""
    body = await request.body()
    kind = _content_type(request)
    if kind == "application/pdf":

        def run() -> list[dict[str, Any]]:
            return services.signatures.record(document=body)
    elif kind == "application/json":
        try:
            detached = HolderDetachedRecord.model_validate_json(body)
        except ValidationError:
            raise InvalidInput(
                'send {"signature": "<the detached signature>"}', code="invalid_input"
            ) from None

        def run() -> list[dict[str, Any]]:
            return services.signatures.record(signature=detached.signature)
    else:
        raise InvalidInput(
            "send the signed PDF as application/pdf, or a detached signature as application/json",
            code="bad_format",
        )
    return {"recorded": await run_in_threadpool(run)}


@public.post(
    "/verify",
    response_model=SignatureVerification,
    response_model_exclude_unset=True,
    responses=error_responses(
        {
            **RATE_LIMITED,
            413: f"`too_large`: a document over {MAX_SIGNED_DOCUMENT} bytes",
            422: f"{PDF_ERRORS}, `signature_missing` (a file that is not a PDF, without its detached "
            "signature), `malformed_signature`, `invalid_input` (no document part)",
            **CHAIN_DOWN,
        }
    ),
)
async def verify(
    services: Services,
    document: Annotated[UploadFile, File(description="the signed file")],
    signature: Annotated[
        str | None,
        Form(max_length=64 * 1024, description="its detached signature (a file that is not a PDF)"),
    ] = None,
) -> dict[str, Any]:
    """Who signed the file, in which role, for which school, when (the anchor's block and its
    time in Beijing), whether the signer was valid then, and what became of them since."""
    data = await document.read(MAX_SIGNED_DOCUMENT + 1)
    if len(data) > MAX_SIGNED_DOCUMENT:
        raise TooLarge(
            f"the document is larger than {MAX_SIGNED_DOCUMENT} bytes", limit_bytes=MAX_SIGNED_DOCUMENT
        )

    def run() -> dict[str, Any]:
        return services.signatures.verify(data, signature)

    return await run_in_threadpool(run)
