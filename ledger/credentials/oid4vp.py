"""OpenID for Verifiable Presentations 1.0: a member organisation asks a standard wallet for
a credential, and reads the verdict.

The organisation makes a request (credential type, the claims it wants: a DCQL query); the
node is the verifier's response endpoint. The client identifier uses the ``redirect_uri:``
prefix (OpenID4VP 1.0 section 5.9.3) with the request's own response URI, so the request
is not signed and travels by value in the ``openid4vp://`` URL (the prefix forbids signed
request objects, hence no ``request_uri``). The wallet posts ``vp_token``
(``{"credential": ["<SD-JWT>~<KB-JWT>"]}``) with ``response_mode=direct_post``; the node
checks the key binding's nonce and audience (the client identifier) and then runs the whole
verification of :mod:`ledger.credentials.verify` (anchor, membership, status, ...).

A wallet's answer that cannot be taken (unknown or expired request, wrong nonce or
audience, not the query's shape, a second answer) is an :class:`OAuthError` with a code of
its own; one that is taken closes the request with its verdict, valid or not.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, update

from ledger.credentials import jose, sdjwt
from ledger.credentials.models import PresentationRequest
from ledger.credentials.oid4vci import FORMAT, OAuthError
from ledger.credentials.types import CredentialType
from ledger.credentials.verify import CredentialVerifier
from ledger.errors import InvalidInput, NotFound
from ledger.store import session_scope

__all__ = ["CREDENTIAL_QUERY_ID", "PresentationVerifier"]

CREDENTIAL_QUERY_ID = "credential"
MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 60, 3600, 600
MAX_CLAIMS = 50
MAX_RESPONSE_CHARS = 512 * 1024
_PATH_PART_CHARS = 64


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _claim_path(text: Any) -> list[str | int]:
    """``credentialSubject.courses.1`` → ``["credentialSubject", "courses", 1]`` (a DCQL path)."""
    if not isinstance(text, str) or not 0 < len(text) <= 300:
        raise InvalidInput("a claim is a dotted path such as credentialSubject.holderName", code="bad_claim")
    parts = text.split(".")
    if any(not p or len(p) > _PATH_PART_CHARS or not p.replace("_", "").isalnum() for p in parts):
        raise InvalidInput(f"{text!r} is not a dotted claim path", code="bad_claim")
    return [int(p) if p.isdigit() else p for p in parts]


def dcql_query(ctype: CredentialType, claims: Sequence[Sequence[str | int]]) -> dict[str, Any]:
    query: dict[str, Any] = {"id": CREDENTIAL_QUERY_ID, "format": FORMAT, "meta": {"vct_values": [ctype.vct]}}
    if claims:
        query["claims"] = [{"path": list(path)} for path in claims]
    return {"credentials": [query]}


class PresentationVerifier:
    def __init__(self, *, engine: Engine, verifier: CredentialVerifier) -> None:
        self.engine = engine
        self.verifier = verifier

    # -- what the organisation does --------------------------------------------------

    def create(self, org_id: str, base: str, credential_type: str, claims: Sequence[str],
               expires_in: int = DEFAULT_SECONDS) -> PresentationRequest:
        ctype = CredentialType.parse(credential_type)
        if len(claims) > MAX_CLAIMS:
            raise InvalidInput(f"at most {MAX_CLAIMS} claims", code="bad_claim")
        paths = [_claim_path(c) for c in claims]
        if not MIN_SECONDS <= expires_in <= MAX_SECONDS:
            raise InvalidInput(f"expires_in is {MIN_SECONDS} to {MAX_SECONDS} seconds", code="invalid_input")
        request_id = secrets.token_urlsafe(12)
        now = _now()
        row = PresentationRequest(
            id=request_id, org_id=org_id, credential_type=ctype.value, claims_json=json.dumps(paths),
            nonce=secrets.token_urlsafe(24), client_id="redirect_uri:" + response_uri(base, request_id),
            created_at=now, expires_at=now + timedelta(seconds=expires_in))
        with session_scope(self.engine) as session:
            session.add(row)
        return self.get(org_id, request_id)

    def get(self, org_id: str, request_id: str) -> PresentationRequest:
        with session_scope(self.engine) as session:
            row = session.get(PresentationRequest, request_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no presentation request {request_id}", code="presentation_request_not_found")
        return row

    # -- the wallet ------------------------------------------------------------------

    def respond(self, request_id: str, form: Mapping[str, str], *,
                now: float | None = None) -> dict[str, Any]:
        """Take the wallet's direct_post answer: the verdict is kept for the organisation."""
        with session_scope(self.engine) as session:
            row = session.get(PresentationRequest, request_id)
        if row is None:
            raise OAuthError("no such presentation request", code="invalid_request")
        raw = form.get("vp_token", "")
        response_hash = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        if row.answered_at is not None:
            what = "this response was" if row.response_hash == response_hash else "another response was"
            raise OAuthError(f"{what} received already", code="response_replayed")
        moment = _now() if now is None else datetime.fromtimestamp(now, UTC)
        if _aware(row.expires_at) <= moment:
            raise OAuthError("the presentation request has expired", code="request_expired")
        try:
            presentation = self._presentation(row, raw)
        except OAuthError as exc:
            self._note(request_id, exc.code)
            raise
        result = self.verifier.verify(presentation, require_holder_binding=True, aud=row.client_id,
                                      nonce=row.nonce, now=now)
        missing = _missing(json.loads(row.claims_json), result.disclosed)
        # What the request asked beyond a valid credential: its type, and the claims disclosed.
        refused = ((["credential_type_mismatch"] if result.credential_type != row.credential_type else [])
                   + (["claims_missing"] if missing else []))
        verdict = {"valid": result.valid and not refused, "request_failures": refused,
                   "missing_claims": missing, "verification": result.to_dict()}
        with session_scope(self.engine) as session:
            won = session.execute(
                update(PresentationRequest)
                .where(PresentationRequest.id == request_id,  # type: ignore[arg-type]
                       PresentationRequest.answered_at.is_(None))  # type: ignore[union-attr]
                .values(answered_at=_now(), response_hash=response_hash, result_json=json.dumps(verdict),
                        error=None))
        if won.rowcount != 1:  # type: ignore[attr-defined]
            raise OAuthError("another response was received already", code="response_replayed")
        return {}

    def _note(self, request_id: str, code: str) -> None:
        with session_scope(self.engine) as session:
            session.execute(update(PresentationRequest)
                            .where(PresentationRequest.id == request_id)  # type: ignore[arg-type]
                            .values(error=code))

    def _presentation(self, row: PresentationRequest, raw: str) -> str:
        """The one SD-JWT presentation of the vp_token, once its key binding names this
        request's nonce and client identifier (the full check follows)."""
        if not raw or len(raw) > MAX_RESPONSE_CHARS:
            raise OAuthError("vp_token is missing", code="invalid_request")
        try:
            token = jose.json_loads(raw.encode("utf-8"), "vp_token")
        except jose.SdJwtError:
            raise OAuthError("vp_token is not JSON", code="invalid_request") from None
        entries = token.get(CREDENTIAL_QUERY_ID) if isinstance(token, dict) else None
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], str) \
                or len(token) != 1:
            raise OAuthError(f'vp_token must be {{"{CREDENTIAL_QUERY_ID}": ["<SD-JWT presentation>"]}}',
                             code="invalid_request")
        presentation: str = entries[0]
        try:
            parsed = sdjwt.parse(presentation)
        except jose.SdJwtError as exc:
            raise OAuthError(f"the presentation is not an SD-JWT: {exc.message}",
                             code="invalid_request") from None
        if parsed.kb_jwt is None:
            raise OAuthError("the presentation has no key binding JWT", code="holder_binding_missing")
        try:
            _, kb, _, _ = jose.decode_jws_unverified(parsed.kb_jwt)
        except jose.SdJwtError:
            raise OAuthError("the key binding JWT does not decode", code="invalid_request") from None
        if kb.get("nonce") != row.nonce:
            raise OAuthError("the key binding's nonce is not this request's", code="nonce_mismatch")
        if kb.get("aud") != row.client_id:
            raise OAuthError(f"the key binding's audience is not {row.client_id}", code="audience_mismatch")
        return presentation


def response_uri(base: str, request_id: str) -> str:
    return f"{base}/oid4vp/responses/{request_id}"


def request_url(row: PresentationRequest, base: str) -> str:
    """``openid4vp://?...``: the unsigned request by value (see the module docstring)."""
    ctype = CredentialType(row.credential_type)
    params = {
        "client_id": row.client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": response_uri(base, row.id),
        "nonce": row.nonce,
        "state": row.id,
        "dcql_query": json.dumps(dcql_query(ctype, json.loads(row.claims_json)), separators=(",", ":")),
        "client_metadata": json.dumps({"vp_formats_supported": {FORMAT: {
            "sd-jwt_alg_values": ["EdDSA"], "kb-jwt_alg_values": ["EdDSA"]}}}, separators=(",", ":")),
    }
    return "openid4vp://?" + urlencode(params)


def _missing(wanted: list[list[str | int]],
             disclosed: Sequence[tuple[tuple[str | int, ...], Any]]) -> list[str]:
    """The requested claims (dotted) the presentation did not disclose."""
    shown = {tuple(path) for path, _ in disclosed}
    return [".".join(map(str, path)) for path in wanted if tuple(path) not in shown]
