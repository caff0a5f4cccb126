"""Request and response models of the HTTP API: what ``/openapi.json`` describes.

Every route declares the model of its answer here (``response_model=``), and the error
statuses it can give (``error_responses``), so that the document describes every answer.
Response models list every field the service sends and forbid others, so the document is
exact (``additionalProperties: false``) and a field added to an answer without its model
fails the tests (tests/test_openapi.py) instead of going undocumented. Objects that are
free-form by nature (a credential's claims, an event's arguments, a check's details) are
``dict[str, Any]``.

Timestamps are RFC 3339 date-times in UTC (``2026-07-01T08:00:00Z``); the share page's
``share.expires_at`` is the one written ``+00:00``, as the domain core formats it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from api.limits import (
    MAX_CREDENTIAL_CHARS,
    MAX_DOCUMENT_BODY,
    MAX_ROSTER_BYTES,
    MAX_RPC_BODY,
    MAX_VERIFY_BODY,
)
from ledger.anchoring.models import AnchorStatus
from ledger.audit.models import AuditRunStatus, FindingKind
from ledger.credentials.anchorproof import MAX_FILE_BYTES
from ledger.credentials.service import MAX_IDEMPOTENCY_KEY_CHARS
from ledger.credentials.types import CredentialType
from ledger.evaluation.types import Domain as EvaluationDomain
from ledger.evaluation.types import FrameworkBody as EvaluationFrameworkBody
from ledger.evaluation.types import SchoolLayerBody

# -- limits of request bodies (api.limits enforces them before a route reads a body; the
# document states them) ---------------------------------------------------------------

MAX_ROSTER_ROWS = 10_000
"""POST /v1/credentials: credentials in one roster (ledger.credentials.roster.parse_roster)."""
MAX_VERIFY_BATCH = 1000
"""POST /v1/verify/batch: credentials in one request."""


# -- shared types ---------------------------------------------------------------------

Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$",
                             description="a 32-byte hash, 0x and 64 hex digits")]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="an account or contract address")]
DateTime = datetime
"""A timestamp the service holds as a datetime (UTC): sent as RFC 3339, ``...Z``."""
TimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""A timestamp the domain core formats itself (RFC 3339, UTC)."""
FreeObject = dict[str, Any]
CredentialId = Annotated[str, Field(description="urn:uuid:...")]


class Answer(BaseModel):
    """A response body: the fields the service sends, and no others."""

    model_config = ConfigDict(extra="forbid")


class Body(BaseModel):
    """A request body: unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")


# -- errors -----------------------------------------------------------------------------


class ErrorBody(Answer):
    """Every error answer (ledger.errors.LedgerError.to_dict): a stable machine ``code``, a
    human ``message`` and, for some codes, ``details``."""

    code: str = Field(description="machine code, e.g. credential_not_found")
    message: str
    details: FreeObject | SkipJsonSchema[None] = Field(default=None,
                                                       description="present for some codes only")


class FieldProblem(Answer):
    field: str = Field(description="where, as dotted path: body.credentials.0, query.purpose")
    problem: str


class RowProblem(Answer):
    row: int = Field(description="roster row (JSON: 1-based position; CSV: line); 0 = the roster as a whole")
    field: str
    problem: str


class InvalidInputDetails(BaseModel):
    """``problems`` for a request that does not match its schema; ``errors`` and
    ``error_count`` for a roster; other codes may carry other fields."""

    model_config = ConfigDict(extra="allow")

    problems: list[FieldProblem] | SkipJsonSchema[None] = None
    errors: list[RowProblem] | SkipJsonSchema[None] = Field(default=None, description="at most 100 listed")
    error_count: int | SkipJsonSchema[None] = None


class InvalidInputBody(Answer):
    """A 422: the request (or a roster in it) is not valid. Not FastAPI's default 422 body:
    the same error body as every other error, with the problems in ``details``."""

    code: str = Field(description="invalid_input for a request that does not match its schema; "
                                  "otherwise the route's own code (invalid_roster, malformed, bad_did, ...)")
    message: str
    details: InvalidInputDetails | SkipJsonSchema[None] = None


_STATUS_TEXT = {
    400: "Unreadable body", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found", 409: "Conflict",
    413: "Request too large", 422: "Invalid request", 429: "Too many requests",
    503: "Chain unavailable",
}
AUTH_ERRORS = {401: "`unauthenticated` (no `Authorization: Bearer <key>`), `bad_api_key` (unknown or "
                    "revoked key)"}
RATE_LIMITED = {429: "`rate_limited`: more public requests from this client address than "
                     "EDULEDGER_PUBLIC_RATE_LIMIT (default 600 a minute)"}
UNREADABLE_BODY = {400: "`http_error`: a JSON body whose text is not UTF-8 (the framework cannot parse it)"}
NUL_IN_TEXT = "`nul_in_text` (an id or text holding U+0000, which no database can look up)"
CHAIN_DOWN = {503: "`chain_unavailable`: the chain node does not answer"}
CHAIN_DOWN_AT_FIRST_USE = {503: "`chain_unavailable`: only on the node's first credential request while "
                                "the chain node does not answer (the credential service reads the "
                                "registry once, when it is first used)"}
IDENTITY_CHAIN_DOWN_AT_FIRST_USE = {503: "`chain_unavailable`: only on the node's first identity-card "
                                         "request while the chain node does not answer (the identity "
                                         "service checks presentations with the credential verifier, "
                                         "which reads the registry once, when it is first made)"}


def error_responses(codes: dict[int, str], *, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each error status it can give, with the codes it carries
    (in the description) and its body (``ErrorBody``, or ``InvalidInputBody`` for 422).
    ``html``: a browser may get the error as a page instead (the share page)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, described in sorted(codes.items()):
        entry: dict[str, Any] = {"model": InvalidInputBody if status == 422 else ErrorBody,
                                 "description": f"{_STATUS_TEXT.get(status, 'Error')} — {described}"}
        if html:
            entry["content"] = {"text/html": {"schema": {"type": "string"}}}
        out[status] = entry
    return out


# -- network ----------------------------------------------------------------------------


class WorkersView(Answer):
    configured: int
    ready: int = Field(description="how many accept connections now")


class Health(Answer):
    status: Literal["ok"]
    chain_id: int
    head: int = Field(description="the chain's latest block number")
    workers: WorkersView | SkipJsonSchema[None] = Field(
        default=None, description="only when served with --workers N")


class NetworkContracts(Answer):
    consortium: Address
    anchor_registry: Address
    identity_registry: Address | None = Field(description="none on a network set up before identity cards")
    deployed_block: int


class NetworkMember(Answer):
    member_id: int
    org_id: str | None = Field(description="null for a member this node's deployment does not name")
    name: str
    role: Literal["bureau", "school", "partner", "auditor"]
    status: Literal["active", "suspended", "removed"]
    accounts: list[Address]


class NetworkView(Answer):
    """The consortium as the chain has it (ledger.consortium.views.network_view)."""

    chain_id: int
    head: int
    embedded: bool = Field(description="the node runs the embedded chain (its /rpc serves it)")
    contracts: NetworkContracts | None = Field(description="null when no network is deployed")
    members: list[NetworkMember]
    governors: list[Address] | SkipJsonSchema[None] = Field(default=None, description="when deployed")
    threshold: int | SkipJsonSchema[None] = Field(default=None, description="when deployed")


# -- credentials --------------------------------------------------------------------------


class AnchorProofView(Answer):
    """The proof tying a credential's leaf to the chain (ledger.anchoring.proof.AnchorProof)."""

    leaf: Hex32
    proof: list[Hex32] = Field(max_length=64, description="Merkle siblings, leaf upwards")
    root: Hex32
    chain_id: int
    contract: Address = Field(description="the AnchorRegistry")
    tx_hash: Hex32 | None = Field(description="null until the batch is anchored")
    block_number: int | None = Field(description="null until the batch is anchored")


class IssuedCredentialView(Answer):
    credential_id: CredentialId
    claim_code: str = Field(description="one-time code the holder redeems (POST /v1/claims/redeem)")
    student_id: str | None
    leaf: Hex32
    anchor: AnchorProofView


class IssuedBatchView(Answer):
    """A batch of issued credentials (ledger.credentials.service.IssuedBatch)."""

    batch_id: str
    status: AnchorStatus = Field(
        description="anchored, unless an idempotent repeat finds its batch unfinished")
    count: int
    credentials: list[IssuedCredentialView] = Field(description="in roster order")


ROW_MODELS = {ctype: ctype.row_model for ctype in CredentialType}
"""The row of each credential type (ledger.credentials.types): described in the document's
components, for the request body of POST /v1/credentials."""
_ROW = {"anyOf": [{"$ref": f"#/components/schemas/{model.__name__}"} for model in ROW_MODELS.values()],
        "description": "a row of the credential type named by `type` (its fields: "
                       + "; ".join(f"{ctype.value}: {model.__name__}" for ctype, model in ROW_MODELS.items())
                       + ")"}
_TYPE_REF = {"$ref": "#/components/schemas/CredentialType"}
ISSUE_REQUEST: dict[str, Any] = {
    "parameters": [
        {"name": "type", "in": "query", "required": False, "schema": _TYPE_REF,
         "description": "the credential type of a CSV roster or a JSON list (a JSON object's own "
                        "`type` is used first); an unknown one is 422 `unknown_type`"},
        {"name": "Idempotency-Key", "in": "header", "required": False,
         "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS,
                    "pattern": "^[\\x20-\\x7e]+$"},
         "description": "a retry with the same key (from the same organisation) answers the batch "
                        "issued the first time instead of issuing again; 422 `bad_idempotency_key` "
                        f"unless 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters"},
    ],
    "requestBody": {
        "required": True,
        "description": f"One credential, or a roster of 1 to {MAX_ROSTER_ROWS:,} (more: 413), as JSON or "
                       "CSV; "
                       f"the body is at most {MAX_ROSTER_BYTES} bytes (20 MiB; more: 413 "
                       "`roster_too_large`). Every row is validated before anything is signed.",
        "x-max-bytes": MAX_ROSTER_BYTES,
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"title": "One credential", "type": "object", "required": ["credential"],
                 "properties": {"type": _TYPE_REF, "credential": _ROW}},
                {"title": "Roster", "type": "object", "required": ["credentials"],
                 "properties": {"type": _TYPE_REF,
                                "credentials": {"type": "array", "items": _ROW, "minItems": 1,
                                                "maxItems": MAX_ROSTER_ROWS}}},
                {"title": "Roster list (with ?type=)", "type": "array", "items": _ROW, "minItems": 1,
                 "maxItems": MAX_ROSTER_ROWS},
            ]}},
            "text/csv": {"schema": {
                "type": "string", "description": "UTF-8 CSV with a header row (the row fields' names, or "
                "Chinese headers such as 姓名, 学号, 专业); a transcript is one line per course; ?type= "
                "names the credential type"}},
        },
    },
}


class CredentialView(Answer):
    """A credential's record and status (no personal data but with ?content=true)."""

    credential_id: CredentialId
    type: CredentialType
    issuer_org: str
    batch_id: str
    leaf: Hex32
    status: Literal["valid", "revoked", "suspended", "superseded"]
    status_reason: int | None
    status_note: str | None
    status_changed_at: DateTime | None
    valid_from: DateTime
    valid_until: DateTime | None
    supersedes: str | None = Field(description="the credential this one corrects")
    superseded_by: str | None = Field(description="the credential that corrects this one")
    created_at: DateTime
    sd_jwt: str | SkipJsonSchema[None] = Field(
        default=None, description="with ?content=true only: the SD-JWT with every disclosure")
    anchor: AnchorProofView | None = Field(
        default=None, description="with ?content=true only: its anchor proof (null while its batch is "
                                  "not anchored); the answer saved as a file is a credential file")


class CorrectionView(Answer):
    """The old credential, now superseded, and the batch of its correction."""

    corrected: CredentialView
    batch_id: str
    status: AnchorStatus
    count: int
    credentials: list[IssuedCredentialView]


class BatchView(Answer):
    batch_id: str
    status: AnchorStatus
    count: int
    progress: float = Field(ge=0, le=1)
    root: Hex32
    tx_hash: Hex32 | None
    block_number: int | None
    block_time: DateTime | None


class StatusChange(Body):
    action: Literal["revoke", "suspend", "reinstate"]
    reason: int = Field(default=0, ge=0, le=65535,
                        description="reason code, kept on chain; the share page says it in words: 0 none "
                                    "given, 1 information corrected, 2 under review, 3 issued in error, "
                                    "4 obtained by improper means, 5 academic misconduct, 6 enrolment or "
                                    "degree rescinded, 7 at the holder's request")
    note: str | None = Field(default=None, max_length=500)


class Correction(Body):
    credential: FreeObject = Field(description="the corrected credential's row, of the old one's type "
                                               "(the fields of a roster row)")
    reason: int = Field(default=0, ge=0, le=65535)
    note: str | None = Field(default=None, max_length=500)


# -- holders ------------------------------------------------------------------------------


_JWK_SCHEMA = {"type": "object", "description": "the holder's Ed25519 public key as a JWK",
               "properties": {"kty": {"const": "OKP"}, "crv": {"const": "Ed25519"},
                              "x": {"type": "string"}},
               "required": ["kty", "crv", "x"]}


class Redeem(Body):
    code: str = Field(min_length=4, max_length=64, description="the claim code, e.g. ABCD-EFGH-IJKL-MNOP")
    holder_jwk: Annotated[FreeObject, WithJsonSchema(_JWK_SCHEMA)]


class IssuerRef(Answer):
    org_id: str
    name: str


class Redeemed(Answer):
    credential_id: CredentialId
    type: CredentialType
    sd_jwt: str = Field(description="the credential, now bound to the holder's key (cnf)")
    anchor: AnchorProofView | None = Field(description="null while its batch is not anchored")
    issuer: IssuerRef


_ANCHOR_PROOF_SCHEMA: dict[str, Any] = {
    **{k: v for k, v in AnchorProofView.model_json_schema(mode="validation").items() if k != "title"},
    "description": "the credential's anchor proof, as the credential file holds it (refused as "
                   "`malformed` when a field is missing, unknown or mistyped); default: the node's own",
}
for _name in ("tx_hash", "block_number"):  # optional in a file
    _ANCHOR_PROOF_SCHEMA["required"] = [r for r in _ANCHOR_PROOF_SCHEMA["required"] if r != _name]


class NewShare(Body):
    presentation: str = Field(min_length=10, max_length=MAX_CREDENTIAL_CHARS,
                              description="an SD-JWT presentation with the holder's key binding")
    expires_in_days: int = Field(ge=1, le=180)
    anchor: Annotated[FreeObject | None,
                      WithJsonSchema({"anyOf": [_ANCHOR_PROOF_SCHEMA, {"type": "null"}]})] = None


class ShareCreated(Answer):
    share_id: str
    url: str = Field(description="the share page (and the QR code's text)")
    qr_png_url: str
    qr_svg_url: str
    expires_at: TimeText
    withdraw_token: str = Field(description="send as X-Withdraw-Token to DELETE /v1/shares/{share_id}")


CheckName = Literal["format", "issuer", "signature", "disclosures", "anchor", "membership",
                    "signing_key", "status", "validity", "holder_binding", "share"]


class CheckView(Answer):
    check: CheckName
    outcome: Literal["passed", "failed", "skipped"]
    code: str = Field(
        description="ok, or why it failed or was skipped (revoked, claim_tampered, not_checked, ...)")
    message: str
    message_zh: str
    details: FreeObject | SkipJsonSchema[None] = None


class VerifiedIssuer(Answer):
    """Empty when the credential names no issuer this service can read."""

    id: str | SkipJsonSchema[None] = Field(default=None, description="the issuer's DID")
    member_id: int | SkipJsonSchema[None] = None
    name: str | None = Field(default=None, description="the member's name on chain")
    name_zh: str | SkipJsonSchema[None] = Field(default=None, description="share page: the Chinese name")
    name_en: str | None | SkipJsonSchema[None] = Field(
        default=None,
        description="share page: the English name (on chain, or from the consortium definition)")


class DisclosedClaim(Answer):
    path: str = Field(description="dotted path, e.g. credentialSubject.courses.3")
    value: Any


class Verification(Answer):
    """Every check with its outcome and reason (ledger.credentials.verify.Verification)."""

    valid: bool
    failures: list[str] = Field(description="the codes of the failed checks")
    credential_type: CredentialType | None
    issuer: VerifiedIssuer
    issued_at: TimeText | None
    anchored_at: TimeText | None
    claims: FreeObject | None = Field(description="the disclosed credential (null when the signature fails)")
    disclosed: list[DisclosedClaim]
    leaf: Hex32 | None
    anchor: AnchorProofView | None
    checks: list[CheckView]


class ShareState(Answer):
    id: str
    expires_at: TimeText
    withdrawn: bool
    verify_code: str | None = Field(description="XXXX-XXXX-XXXX-XXXX, to type at GET /verify (null once "
                                                 "the share is withdrawn or expired)")


class CredentialFile(Answer):
    """A credential file (``eduledger-credential/1``) as `eduledger verify` and POST /v1/verify read it."""

    format: Literal["eduledger-credential/1"]
    sd_jwt: str = Field(description="the SD-JWT (for a share: the holder's presentation, key-bound)")
    anchor: AnchorProofView | None


class ShareVerification(Verification):
    """The share page as JSON: the verification of the shared presentation, with the
    share's own check; once withdrawn or expired, ``claims`` is null and ``disclosed`` empty."""

    share: ShareState


class VerifyOne(Body):
    credential: str | FreeObject = Field(
        description="an SD-JWT (or presentation), or a credential file "
                    '{"format": "eduledger-credential/1", "sd_jwt": ..., "anchor": {...}}')
    require_holder_binding: bool = False
    aud: str | None = Field(default=None, max_length=300, description="the key binding's expected audience")
    nonce: str | None = Field(default=None, max_length=300)
    at: datetime | None = Field(default=None,
                                description="verify as of this time (with a time zone); default now")


_CREDENTIAL_FILE = {
    "type": "object", "title": "Credential file", "required": ["sd_jwt"],
    "properties": {"format": {"const": "eduledger-credential/1"}, "sd_jwt": {"type": "string"},
                   "anchor": _ANCHOR_PROOF_SCHEMA},
}
VERIFY_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"At most {MAX_VERIFY_BODY} bytes (more: 413 `too_large`). As JSON: a verify "
                       "request, or the credential file itself; with any other content type the body is "
                       "the credential itself (an SD-JWT, or a credential file's JSON).",
        "x-max-bytes": MAX_VERIFY_BODY,
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/VerifyOne"}, _CREDENTIAL_FILE,
                {"type": "string", "title": "SD-JWT", "maxLength": MAX_CREDENTIAL_CHARS}]}},
            "text/plain": {"schema": {"type": "string", "title": "SD-JWT or credential file",
                                      "maxLength": MAX_CREDENTIAL_CHARS}},
        },
    },
}


EXTRA_SCHEMAS: list[type[BaseModel]] = [VerifyOne, *ROW_MODELS.values()]
"""Schemas the request bodies that routes read themselves refer to (#/components/schemas/...):
api.openapi adds them to the document's components."""


class VerifyBatch(Body):
    credentials: list[str | FreeObject] = Field(
        min_length=1, max_length=MAX_VERIFY_BATCH,
        description="SD-JWTs or credential files; one that cannot be read at all (not a credential "
                    f"file, or over {MAX_FILE_BYTES} characters) gets a result with its error "
                    "(`malformed`, `too_large`) instead of its checks")


class VerifyItemError(Answer):
    """An item that could not be read at all."""

    valid: Literal[False]
    failures: list[str] = Field(min_length=1, max_length=1)
    error: ErrorBody


class VerifyBatchResult(Answer):
    count: int
    valid: int = Field(description="how many are valid")
    results: list[Verification | VerifyItemError] = Field(description="in request order")


class PublicJwk(Answer):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str


class VerificationMethod(Answer):
    id: str
    type: Literal["JsonWebKey"]
    controller: str
    publicKeyJwk: PublicJwk  # noqa: N815 - the DID document's field
    validFromBlock: int  # noqa: N815
    validUntilBlock: int | None  # noqa: N815


class DidDocument(Answer):
    """A member's DID document, derived from the chain (ledger.credentials.did)."""

    context: list[str] = Field(alias="@context")
    id: str
    name: str
    verificationMethod: list[VerificationMethod]  # noqa: N815
    assertionMethod: list[str] = Field(description="the keys valid now")  # noqa: N815
    role: Literal["bureau", "school", "partner", "auditor"]
    status: Literal["active", "suspended", "removed"]


# -- audit --------------------------------------------------------------------------------


class CredentialSubject(Answer):
    kind: Literal["credential"]
    id: CredentialId
    leaf: Hex32
    root: Hex32
    issuer: str
    status: str


class BatchSubject(Answer):
    kind: Literal["batch"]
    root: Hex32
    batch_id: str | None
    count: int | None


class LeafSubject(Answer):
    kind: Literal["leaf"]
    leaf: Hex32
    root: Hex32 | None


class MemberSubject(Answer):
    kind: Literal["member"]
    member_id: int
    org_id: str


class HistoryEntry(Answer):
    action: str = Field(description="issue, anchor, revoke, suspend, reinstate, supersede, admit, ...")
    actor: str | None = Field(description="the acting organisation")
    reason: int | None
    tx_hash: Hex32 | None
    block_number: int | None
    block_time: TimeText | None
    details: FreeObject = Field(description="the event and its arguments")
    chain: Literal["confirmed", "missing"] | SkipJsonSchema[None] = Field(
        default=None, description="with ?check=chain, for entries with a transaction")


class History(Answer):
    subject: Annotated[CredentialSubject | BatchSubject | LeafSubject | MemberSubject,
                       Field(discriminator="kind")]
    history: list[HistoryEntry] = Field(description="oldest first")


class RunProgress(Answer):
    done: int
    total: int
    fraction: float = Field(ge=0, le=1)


class AuditRunView(Answer):
    run_id: str
    status: AuditRunStatus
    phase: str
    progress: RunProgress
    finding_count: int
    requested_by: str
    created_at: DateTime
    finished_at: DateTime | None
    report_hash: Hex32 | None
    error: str | None


class ReportAuditor(Answer):
    org_id: str
    member_id: int | None
    public_key: str


class ReportChain(Answer):
    chain_id: int
    anchor_registry: Address
    from_block: int
    head_block: int
    indexed_to_block: int


class ReportScope(Answer):
    batches: int
    anchored_leaves: int
    credentials: int
    chain_events: int
    events_not_yet_indexed: int
    status_reads: int


class ReportSummary(Answer):
    findings: int
    by_kind: dict[FindingKind, int]


class ReportFinding(Answer):
    seq: int
    kind: FindingKind
    item: str
    details: FreeObject


class ReportChecks(Answer):
    deep: bool


class AuditReportBody(Answer):
    """The signed report (ledger.audit.integrity.IntegrityAudit.build_report)."""

    type: Literal["eduledger-integrity-audit-report"]
    version: int
    run_id: str
    requested_by: str
    auditor: ReportAuditor | None
    started_at: TimeText | None
    finished_at: TimeText | None
    checks: ReportChecks
    chain: ReportChain
    scope: ReportScope
    summary: ReportSummary
    findings: list[ReportFinding]


class ReportAnchor(Answer):
    batch_id: str
    root: Hex32
    tx_hash: Hex32 | None
    block_number: int | None
    status: AnchorStatus


class AuditRunReport(AuditRunView):
    """A finished run with its report, the auditor's signature over the report's canonical
    JSON and the batch that anchors its hash."""

    report: AuditReportBody
    signature: str | None
    anchor: ReportAnchor | None


# -- JSON-RPC -----------------------------------------------------------------------------


class RpcError(Answer):
    code: int
    message: str
    data: Any | SkipJsonSchema[None] = None


class RpcReply(Answer):
    """One JSON-RPC 2.0 response. ``result`` is the method's own answer (any JSON value, as
    the Ethereum JSON-RPC specification defines it per method): not described here."""

    jsonrpc: Literal["2.0"]
    id: Any = Field(description="the request's id")
    result: Any | SkipJsonSchema[None] = Field(default=None, description="on success: any JSON value")
    error: RpcError | SkipJsonSchema[None] = None


RpcAnswer = RpcReply | list[RpcReply]
_RPC_CALL = {"type": "object", "title": "JSON-RPC request", "required": ["method"],
             "properties": {"jsonrpc": {"const": "2.0"}, "id": {"type": ["string", "integer", "null"]},
                            "method": {"type": "string", "description": "an Ethereum JSON-RPC method "
                                       "(eth_blockNumber, eth_call, eth_sendRawTransaction, eth_getLogs, "
                                       "...)"},
                            "params": {"type": "array"}}}
RPC_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"A JSON-RPC 2.0 request or a batch of them, at most {MAX_RPC_BODY} bytes (more: 413)",
        "x-max-bytes": MAX_RPC_BODY,
        "content": {"application/json": {"schema": {"oneOf": [
            _RPC_CALL, {"type": "array", "items": _RPC_CALL, "minItems": 1}]}}},
    },
}


# -- identity cards ---------------------------------------------------------------------

CardKindName = Literal["student", "teacher", "graduate"]
CardStatusName = Literal["active", "suspended", "revoked", "ended"]


class IssuedCardView(Answer):
    card_id: Hex32 = Field(description="the card's opaque id on chain")
    kind: CardKindName
    claim_code: str = Field(description="one-time code the holder redeems with their key")
    position: int = Field(description="the card's place in the roster, from 0")


class IssuedCardsView(Answer):
    roster_id: str
    status: Literal["issued"]
    count: int
    cards: list[IssuedCardView]


class CardView(Answer):
    card_id: Hex32
    kind: CardKindName
    issuer_org: str
    status: CardStatusName
    status_reason: int
    chain_state: Literal["pending", "issued"]
    predecessor: Hex32 | None = Field(description="the card this one continues (graduation, a move)")
    claimed: bool
    valid_from: DateTime
    valid_until: DateTime | None
    created_at: DateTime
    encryption_jwk: dict[str, str] | None = Field(
        description="the holder's X25519 public key documents are encrypted to (none until a wallet "
                    "sends one with its claim); its thumbprint is in the card as encryptionKeyThumbprint")
    encryption_kid: str | None = Field(description="RFC 7638 thumbprint of encryption_jwk: the JWEs' kid")
    fields: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="the card's personal fields (name, numbers, grade...), decrypted")


class CardStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["suspend", "reinstate", "revoke", "end"]
    reason: int = Field(default=0, ge=0, le=65535)


class Graduation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graduation_date: date
    valid_until: date | None = None


class NewClaimCode(Answer):
    card_id: Hex32
    claim_code: str = Field(description="redeeming it with a new key rotates the card's key on chain")


class CardRedeem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=64)
    holder_jwk: dict[str, Any]
    encryption_jwk: dict[str, Any] | None = Field(
        default=None, description="the wallet's X25519 public JWK (OKP, no private part) that "
                                  "documents to the holder are encrypted to; a claim without one "
                                  "(a key rotation included) leaves the card without")


class ClaimedCardView(Answer):
    format: Literal["eduledger-identity-card/1"]
    card_id: Hex32
    kind: CardKindName
    sd_jwt: str = Field(description="the card: an SD-JWT VC (dc+sd-jwt) bound to the holder's key")
    photo_base64: str = Field(description="the portrait file, for the wallet to keep")
    photo_type: str
    issuer: dict[str, str]


class NewChallenge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: str = Field(min_length=1, max_length=300, description="the relying party, e.g. its URL")
    claims: list[str] = Field(default_factory=list, max_length=20,
                              description="claims the answer must disclose")
    expires_in_seconds: int = Field(default=300, ge=30, le=600)
    photo: bool = Field(default=False, description="ask the wallet to send the card's portrait file too")


class ChallengeView(Answer):
    challenge_id: str
    nonce: str
    audience: str
    claims: list[str]
    photo: bool = Field(description="the relying party asks the wallet to send the card's portrait file")
    expires_at: DateTime
    answered: bool


class ChallengeAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presentation: str = Field(min_length=10, max_length=MAX_CREDENTIAL_CHARS,
                              description="the card, key-bound to the challenge's audience and nonce")
    photo_base64: str | None = Field(default=None, max_length=3 * 1024 * 1024,
                                     description="the card's portrait file, when the challenge asks for it "
                                                 "(checked against the portrait committed on chain when "
                                                 "the relying party asks for the verdict)")


class Recognise(BaseModel):
    model_config = ConfigDict(extra="forbid")
    challenge_id: str = Field(min_length=1, max_length=64)
    presentation: str | None = Field(default=None, min_length=10, max_length=MAX_CREDENTIAL_CHARS,
                                     description="the holder's answer; none: the one the holder's wallet "
                                                 "submitted to the challenge")
    photo_base64: str | None = Field(default=None, max_length=3 * 1024 * 1024,
                                     description="the photo taken or shown at the check, to compare with "
                                                 "the portrait committed on chain")


class RecognitionCheck(Answer):
    check: str
    outcome: Literal["passed", "failed"]
    code: str
    details: dict[str, Any] | SkipJsonSchema[None] = None


class RecognitionView(Answer):
    valid: bool
    failures: list[str]
    card: dict[str, Any] | None = Field(description="the card as the chain holds it")
    claims: dict[str, Any] = Field(description="the disclosed claims the challenge asked for")
    photo_matches: bool | None
    checks: list[RecognitionCheck]


class CardHistoryEntry(Answer):
    action: str
    event: str
    actor: str | None
    status: CardStatusName | None
    reason: int | None
    block_number: int
    block_time: DateTime
    tx_hash: Hex32
    chain: Literal["confirmed", "missing"] | SkipJsonSchema[None] = None


class CardHistory(Answer):
    card_id: Hex32
    kind: CardKindName
    issuer_org: str
    status: CardStatusName
    predecessor: Hex32 | None
    successor: Hex32 | None
    history: list[CardHistoryEntry]


CARD_ROSTER_REQUEST: dict[str, Any] = {
    "parameters": [
        {"name": "Idempotency-Key", "in": "header", "required": False,
         "schema": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": "^[\\x20-\\x7e]+$"},
         "description": "a retry with the same key answers the cards issued the first time; the same key "
                        "with another roster is 422 `idempotency_key_reused`"},
    ],
    "requestBody": {
        "required": True,
        "description": ("1 to 10,000 cards, every one with its portrait photo (JPEG, PNG or WebP, "
                        "at most 2 MiB): a JSON list, or {\"cards\": [...]}, each card carrying its "
                        "photo as `photo_base64`; or a ZIP (application/zip or "
                        "application/x-zip-compressed) of one roster.csv or roster.json and the "
                        "photos it names (`photo`/照片: a path inside the ZIP). A CSV (Chinese "
                        "headers accepted: 姓名, 学籍号, 年级, 班级, 入学日期, 照片, 身份证号, "
                        "教职工号, 任教学科) carries no photos: sent alone, its rows are checked "
                        "and refused for want of them (422); send it inside a ZIP. Every row is "
                        "checked before anything is issued."),
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"title": "Roster list", "type": "array", "minItems": 1, "maxItems": 10_000,
                 "items": {"type": "object"}},
                {"title": "Roster", "type": "object", "required": ["cards"],
                 "properties": {"cards": {"type": "array", "minItems": 1, "maxItems": 10_000,
                                          "items": {"type": "object"}}}},
            ]}},
            "text/csv": {"schema": {"type": "string"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/x-zip-compressed": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


# -- signatures and seals -------------------------------------------------------------------


class SignatureTimestamp(Answer):
    """The signature's time evidence: its leaf anchored alone (a batch of one, kind signature)."""

    status: Literal["anchored", "pending", "absent"] = Field(
        description="anchored on chain; pending: recorded, waiting for the chain; absent: never recorded")
    leaf: Hex32 | SkipJsonSchema[None] = Field(default=None, description="absent when the signature was "
                                                                        "not checked this far")
    root: Hex32 | SkipJsonSchema[None] = Field(
        default=None, description="keccak256(0x00 || leaf): a verifier finds it on chain from the signature")
    block_number: int | SkipJsonSchema[None] = None
    block_time: TimeText | SkipJsonSchema[None] = None
    block_time_beijing: str | SkipJsonSchema[None] = Field(default=None, description="RFC 3339, +08:00")
    anchored_by: str | SkipJsonSchema[None] = Field(default=None, description="the anchoring member's DID")
    anchored_by_org: str | None | SkipJsonSchema[None] = None
    chain_id: int | SkipJsonSchema[None] = None
    registry: Address | SkipJsonSchema[None] = None


class Sealed(Answer):
    format: Literal["pdf", "jws", "sm2"]
    signer: FreeObject = Field(description="the sealing organisation: did, org_id, name, role")
    document_sha256: str = Field(description="of the signed PDF, or of the file a detached signature names")
    timestamp: SignatureTimestamp
    signature: str | None = Field(description="the detached signature (a compact JWS), for jws and sm2")
    signed_pdf_base64: str | None = Field(description="the signed PDF, for pdf")


class HolderCertificateRequest(Body):
    card_id: Hex32
    holder_jwk: dict[str, Any] = Field(description="the wallet's Ed25519 public key, as bound to the card")
    key_salt: Hex32 = Field(description="the card's keySalt (it opens the key commitment on chain)")
    proof: str = Field(min_length=10, max_length=4096,
                       description='a JWS by the holder key of {"card_id", "aud": '
                                   '"eduledger:signing-certificate", "iat"} from the last 5 minutes')


class HolderCertificate(Answer):
    card_id: Hex32
    certificate_pem: str = Field(description="issued by the card's school to the holder's key")
    chain_pem: list[str] = Field(description="the school's certificate (self-issued by its on-chain key)")
    not_after: DateTime


class SignatureCheck(Answer):
    check: str
    outcome: Literal["passed", "failed"]
    code: str
    details: dict[str, Any] | SkipJsonSchema[None] = None


class SignatureVerdictView(Answer):
    valid: bool
    failures: list[str] = Field(description="named reasons: document_altered, signature_invalid, "
                                            "signer_unknown, not_anchored, anchor_pending, "
                                            "card_not_active_at_signing, "
                                            "holder_key_not_current, key_not_valid_at_signing, "
                                            "member_not_active_at_signing, malformed_signature")
    format: Literal["pdf", "jws", "sm2"]
    field: str | None = Field(description="the PDF signature field")
    signer: FreeObject | None = Field(description="who signed: an organisation (did, name, name_zh, name_en, "
                                                  "role) or a card (card_id, role, school)")
    document: FreeObject
    timestamp: SignatureTimestamp
    at_signing: FreeObject | None = Field(description="the signer as the chain held it at the anchor's block "
                                                      "(or now, without one)")
    now: FreeObject | None = Field(description="the signer today: a card revoked later, a key retired")
    checks: list[SignatureCheck]


class SignatureVerification(Answer):
    valid: bool
    document_sha256: str
    count: int
    failures: list[str] = Field(
        description="every signature's reasons together; not_signed for a PDF without one")
    signatures: list[SignatureVerdictView]


class HolderRecorded(Answer):
    recorded: list[SignatureVerdictView] = Field(description="each recorded signature with its verdict")


class HolderDetachedRecord(Body):
    signature: str = Field(min_length=10, max_length=64 * 1024, description="the wallet's detached signature")


EXTRA_SCHEMAS.append(HolderDetachedRecord)  # POST /v1/signatures/holder reads it itself


# -- single sign-on (OpenID Connect) ----------------------------------------------------------
# The protocol's own endpoints (/sso/authorize, /sso/token, /sso/userinfo, /sso/jwks.json,
# /.well-known/openid-configuration) answer in OAuth's formats and are described by the
# discovery document, not here; these are the registration of relying parties and the
# status the sign-in page polls.


class NewSsoClient(Body):
    name: str = Field(min_length=1, max_length=120,
                      description="the platform's name, shown on the sign-in page")
    redirect_uris: list[str] = Field(min_length=1, max_length=10,
                                     description="exact https URLs (http on the loopback) the codes go to")
    public: bool = Field(default=False, description="a native or browser app without a secret (PKCE alone)")
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    sector: str | None = Field(default=None, max_length=255,
                               description="pairwise subjects' sector (OpenID Connect Core 8.1): your "
                                           "clients of one sector see one `sub` per person; default: the "
                                           "redirect URIs' host")


class SsoClientView(Answer):
    client_id: str
    name: str
    org_id: str
    redirect_uris: list[str]
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"]
    sector: str
    created_at: DateTime
    disabled: bool


class SsoClientCreated(SsoClientView):
    client_secret: str | None = Field(description="shown once; none for a public client")


class SsoClientList(Answer):
    clients: list[SsoClientView]


class SignInStatus(Answer):
    sign_in_id: str
    status: Literal["waiting", "answered", "expired", "finished"]
    expires_at: DateTime


# -- documents encrypted to a card's holder ------------------------------------------------

class DocumentView(Answer):
    document_id: str
    card_id: Hex32
    sender_org: str
    media_type: str
    size: int = Field(description="bytes of the document before encryption")
    kid: str = Field(description="RFC 7638 thumbprint of the holder's encryption key it is encrypted to")
    alg: Literal["ECDH-ES+A256KW"]
    enc: Literal["A256GCM"]
    name_jwe: str = Field(description="the file name, a compact JWE to the same key")
    created_at: DateTime
    jwe: str | SkipJsonSchema[None] = Field(
        default=None, description="the document: a compact JWE only the holder's wallet opens")


class DocumentList(Answer):
    card_id: Hex32
    documents: list[DocumentView] = Field(description="oldest first, without their JWEs")


_BINARY = {"schema": {"type": "string", "format": "binary"}}
DOCUMENT_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The document, at most 8 MiB (413 `document_too_large`): the raw file, its "
                       "Content-Type its media type; or JSON with the file as base64. The body is at "
                       f"most {MAX_DOCUMENT_BODY} bytes (413 `too_large`).",
        "x-max-bytes": MAX_DOCUMENT_BODY,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["content_base64"], "additionalProperties": False,
                "properties": {"content_base64": {"type": "string", "contentEncoding": "base64"},
                               "filename": {"type": "string", "minLength": 1, "maxLength": 255},
                               "media_type": {"type": "string", "maxLength": 127}}}},
            "application/octet-stream": _BINARY,
            "application/pdf": _BINARY,
            "*/*": _BINARY,
        },
    },
}


# -- exam sessions (ledger.identity.exams) ----------------------------------------------

CardId = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="an identity card's id")]
Verdict = Literal["checked_in", "already_checked_in", "not_a_candidate", "card_suspended", "photo_mismatch",
                  "photo_missing", "card_not_valid", "answer_invalid"]
PROCTOR_TOKEN_ERRORS = {401: "`proctor_token_required` (no X-Proctor-Token), `bad_proctor_token` (not a "
                             "link of this session)",
                        403: "`proctor_link_expired` (the session is over)"}


class ExamCandidateIn(Body):
    card_id: CardId
    candidate_number: str = Field(min_length=1, max_length=32, description="准考证号, unique in the session")
    seat: str | None = Field(default=None, min_length=1, max_length=16, description="座位号, unique if given")


class NewExam(Body):
    name: str = Field(min_length=1, max_length=200)
    room: str = Field(min_length=1, max_length=100)
    starts_at: datetime = Field(description="RFC 3339 with its zone (+08:00 for Beijing time)")
    ends_at: datetime = Field(description="after starts_at, in the future, at most 24 hours later")
    candidates: list[ExamCandidateIn] = Field(min_length=1, max_length=2000)


class ExamWarning(Answer):
    card_id: Hex32
    candidate_number: str
    code: Literal["card_suspended"]
    message: str


class ProctorLinkView(Answer):
    link_id: str
    exam_id: str
    token: str = Field(description="shown only now: the node keeps only its SHA-256")
    url: str = Field(description="the proctor's page, the token in its fragment (never sent to a server)")
    expires_at: DateTime = Field(description="when the session ends")


class ExamCandidateView(Answer):
    candidate_number: str
    seat: str | None
    card_id: Hex32
    checked_in: bool
    checked_in_at: DateTime | None


class ExamCheckInRecord(Answer):
    check_in_id: str
    challenge_id: str
    proctor_link_id: str
    state: Literal["waiting", "checking", "decided"]
    card_id: Hex32 | None
    candidate_number: str | None
    verdict: Verdict | None
    failures: list[str]
    created_at: DateTime
    decided_at: DateTime | None


class ExamView(Answer):
    exam_id: str
    organiser_org: str
    name: str
    room: str
    starts_at: DateTime
    ends_at: DateTime
    created_at: DateTime
    candidate_count: int
    checked_in_count: int
    candidates: list[ExamCandidateView]
    check_ins: list[ExamCheckInRecord] = Field(description="every check-in attempt: who, when, which "
                                                           "challenge, the verdict")


class NewExamView(ExamView):
    warnings: list[ExamWarning] = Field(description="cards accepted that cannot check in as they stand")
    proctor_link: ProctorLinkView


class ProctorCandidate(Answer):
    candidate_number: str
    seat: str | None
    checked_in: bool
    checked_in_at: DateTime | None


class ProctorExamView(Answer):
    exam_id: str
    name: str
    room: str
    organiser: dict[str, str]
    starts_at: DateTime
    ends_at: DateTime
    link_expires_at: DateTime
    candidate_count: int
    checked_in_count: int
    candidates: list[ProctorCandidate]


class CheckInChallengeView(Answer):
    check_in_id: str
    challenge_id: str
    challenge_url: str = Field(description="what the QR code holds: the challenge, for the wallet")
    qr_png_base64: str
    command: str = Field(description="the wallet command that answers it")
    expires_at: DateTime


class VerdictView(Answer):
    code: Verdict
    message_zh: str
    message: str


class CheckInPerson(Answer):
    name: str | None
    school: str | None
    photo_base64: str | None = Field(description="the portrait file the candidate's wallet sent")
    photo_type: str | None


class CheckInCandidate(Answer):
    candidate_number: str
    seat: str | None
    checked_in_at: DateTime | None = Field(description="when the candidate checked in (the first time)")


class CheckInView(Answer):
    check_in_id: str
    challenge_id: str
    state: Literal["waiting", "expired", "decided"]
    state_zh: str
    state_en: str
    expires_at: DateTime
    verdict: VerdictView | None
    failures: list[str]
    card_id: Hex32 | None
    candidate: CheckInCandidate | None
    person: CheckInPerson | None = Field(description="shown only for a card on the roster (the read is "
                                                     "logged with the purpose 'exam check-in')")
    decided_at: DateTime | None


# -- standard wallets (OpenID4VCI, OpenID4VP) ---------------------------------------------
# The protocols' own endpoints (/.well-known/openid-credential-issuer, /oid4vci/*, /oid4vp/*)
# answer in OAuth's formats and stay out of this document; these are the routes a member calls.


class CredentialOfferView(Answer):
    credential_id: str
    credential_offer: dict[str, Any] = Field(description="the OpenID4VCI 1.0 credential offer (its "
                                                         "pre-authorized_code is the claim code)")
    offer_url: str = Field(description="openid-credential-offer://?credential_offer=... for a wallet")
    qr_png_url: str = Field(description="a QR code of offer_url (PNG, the same key)")


class NewPresentationRequest(Body):
    credential_type: CredentialType
    claims: list[str] = Field(default_factory=list, max_length=50,
                              description="dotted claim paths the holder is asked to disclose, e.g. "
                                          "credentialSubject.holderName (the DCQL query's claims)")
    expires_in: int = Field(default=600, ge=60, le=3600, description="seconds the wallet has to answer")


class PresentationVerdict(Answer):
    valid: bool = Field(description="the credential verifies and is what was asked for")
    request_failures: list[str] = Field(description="`credential_type_mismatch`, `claims_missing`")
    missing_claims: list[str]
    verification: Verification


class PresentationRequestView(Answer):
    request_id: str
    state: Literal["waiting", "answered", "expired"]
    credential_type: CredentialType
    claims: list[str]
    client_id: str = Field(description="redirect_uri:<response_uri> (OpenID4VP 1.0 section 5.9.3)")
    nonce: str
    dcql_query: FreeObject
    request_url: str = Field(description="openid4vp://?... (the request by value), for the wallet")
    qr_png_url: str = Field(description="a QR code of request_url (PNG, the same key)")
    created_at: DateTime
    expires_at: DateTime
    answered_at: DateTime | None
    last_error: str | None = Field(description="why the wallet's last answer was refused (`nonce_mismatch`, "
                                               "`audience_mismatch`, `holder_binding_missing`, "
                                               "`invalid_request`), while the request waits")
    verdict: PresentationVerdict | None


# -- comprehensive quality evaluation (ledger.evaluation) --------------------------------

TermName = Annotated[str, Field(pattern=r"^20[0-9]{2}-20[0-9]{2}-[12]$", description="2025-2026-1: the "
                                                                                      "year's first term")]
RecordStatusName = Literal["draft", "selected", "not_selected", "in_notice", "objected", "locked"]


class NewFramework(EvaluationFrameworkBody):
    """The bureau's framework for a school year: the five domains, their indicators (weights
    per domain summing to 100), scales and evidence types."""


class NewSchoolVersion(SchoolLayerBody):
    title: str = Field(min_length=1, max_length=200)


class FrameworkView(Answer):
    framework_id: str
    owner_org: str
    kind: Literal["bureau", "school"]
    school_year: str
    version: int
    base_framework_id: str | None
    content: dict[str, Any] = Field(description="the effective framework (a school's: merged with its base)")
    layer: dict[str, Any] | None = Field(description="what a school's version adds")
    content_sha256: str
    published_at: DateTime


class FrameworkList(Answer):
    frameworks: list[FrameworkView]


class NewTerm(Body):
    term: TermName
    framework_id: str = Field(min_length=1, max_length=36)


class ClassView(Answer):
    class_name: str
    stage: Literal["recording", "notice", "locked"]
    notice_from: date | None = Field(description="the Beijing date the notice was published")
    notice_until: date | None = Field(description="the notice's last working day (Beijing date)")
    locked_at: DateTime | None


class TermView(Answer):
    term: str
    school_org: str
    framework_id: str
    status: Literal["open", "sealing", "sealed"]
    batch_id: str | None
    sealed_at: DateTime | None
    classes: list[ClassView]


class TeacherClasses(Body):
    teacher_card: CardId
    classes: list[str] = Field(min_length=1, max_length=50)


class TeacherClassesView(Answer):
    teacher_card: str
    classes: list[str]


class EvidenceIn(Body):
    evidence_type: str = Field(min_length=1, max_length=200)
    filename: str = Field(min_length=1, max_length=255)
    media_type: str = Field(min_length=1, max_length=127)
    content_base64: str = Field(min_length=1)


class NewRecordBody(Body):
    student_card: CardId
    indicator_code: str = Field(min_length=1, max_length=40)
    author_role: Literal["teacher", "student"]
    teacher_card: CardId | None = Field(default=None,
                                        description="the teacher entering it (author_role teacher)")
    occurred_on: date
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=5000)
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=10)


class EvidenceView(Answer):
    evidence_type: str
    media_type: str
    sha256: str
    size: int


class RecordView(Answer):
    record_id: str
    student_card: str
    class_name: str
    domain: EvaluationDomain
    indicator_code: str
    author_role: Literal["teacher", "student"]
    teacher_card: str | None
    occurred_on: date
    status: RecordStatusName
    evidence: list[EvidenceView]
    title: str | None = None
    text: str | None = None


class ScoreIn(Body):
    student_card: CardId
    indicator_code: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=8,
                       description="a level of the scale (A) or whole points (87)")


class ScoresBody(Body):
    teacher_card: CardId
    scores: list[ScoreIn] = Field(min_length=1, max_length=5000)


class Count(Answer):
    count: int


class SelectionBody(Body):
    selected: list[str] = Field(default_factory=list, max_length=10000)
    not_selected: list[str] = Field(default_factory=list, max_length=10000)


class NoticeBody(Body):
    days: int = Field(default=5, ge=1, le=60, description="working days (China working days, Beijing dates)")


class ObjectionBody(Body):
    raised_by: Literal["student", "parent"]
    reason: str = Field(min_length=1, max_length=2000)


class ResolutionBody(Body):
    outcome: Literal["kept", "amended", "withdrawn"]
    note: str = Field(min_length=1, max_length=2000)


class ObjectionView(Answer):
    objection_id: str
    record_id: str
    raised_by: Literal["student", "parent"]
    raised_at: DateTime
    outcome: Literal["kept", "amended", "withdrawn"] | None
    resolved_at: DateTime | None


class SealView(Answer):
    term: str
    status: Literal["sealing", "sealed"] = Field(
        description="sealing: accepted, anchored when the chain answers")
    batch_id: str
    root: Hex32
    count: int = Field(description="students' term records sealed")


class ProfileIndicator(Answer):
    code: str
    name: str
    weight: int
    value: str | None


class ProfileDomain(Answer):
    label_zh: str
    level: Literal["A", "B", "C", "D"] | None = Field(description="from the weighted scores; no rank, ever")
    scored: int
    records: int
    indicators: list[ProfileIndicator]


class ProfileView(Answer):
    term: str
    student_card: str
    class_name: str
    status: Literal["open", "sealing", "sealed"]
    domains: dict[EvaluationDomain, ProfileDomain]


class SealedRecordView(Answer):
    term: str
    student_card: str
    status: Literal["open", "sealing", "sealed"]
    document: dict[str, Any] = Field(description="the sealed term record")
    document_canonical: str = Field(description="its canonical JSON (RFC 8785): what is signed and hashed")
    signature: str = Field(description="the school's JWS over it, payload detached (RFC 7515 appendix F)")
    salt: Hex32
    leaf: Hex32 = Field(description="keccak256(salt || canonical document), anchored (kind evaluation_data)")
    anchor: dict[str, Any] | None = Field(
        description="the leaf's Merkle proof and anchor; null until anchored")


# -- learning records (ledger.records; the xAPI resources answer in the standard's formats) ---


class RecordFile(Body):
    """A stored xAPI statement with its salt and inclusion proof (GET /v1/records/{id}/proof)."""

    format: Literal["eduledger-record/1"]
    statement: FreeObject = Field(description="the statement exactly as the LRS stores it (stored, "
                                              "authority and version set)")
    salt: Hex32 = Field(description="the statement's salt: leaf = keccak256(salt || "
                                    "JCS({format, statement}))")
    anchor: Annotated[FreeObject, WithJsonSchema(_ANCHOR_PROOF_SCHEMA)]


class RecordFileView(Answer):
    format: Literal["eduledger-record/1"]
    statement: FreeObject
    salt: Hex32
    anchor: AnchorProofView


class RecordCheck(Answer):
    check: Literal["leaf", "inclusion", "anchored", "recorder"]
    ok: bool
    detail: str


class RecordVerification(Answer):
    statement_id: str
    valid: bool = Field(description="every check passed")
    recorded_by: str | None = Field(description="the member that anchored the statement "
                                                "(null if not anchored)")
    stored: TimeText | None = Field(description="when the LRS stored the statement")
    anchored_at: TimeText | None = Field(description="the time of the block that anchored it")
    block_number: int | None
    tx_hash: Hex32 | None
    voided: bool = Field(description="a voiding statement on this node targets it")
    voided_by: str | None
    known_here: bool = Field(description="this node stores the statement")
    checks: list[RecordCheck]
