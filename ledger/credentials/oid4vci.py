"""OpenID for Verifiable Credential Issuance 1.0: a standard wallet receives a credential.

The node is the credential issuer of every credential it issued, and its own authorization
server. Only the pre-authorised code flow is offered, and the pre-authorised code is the
claim code a school hands the holder: the credential offer
(``openid-credential-offer://?credential_offer=...``) carries it, the token endpoint trades
it for an access token (no transaction code: the claim code is the secret), and the
credential endpoint binds the credential to the key of the wallet's proof of possession
through the same redemption as ``POST /v1/claims/redeem`` (one winner, the code is used
up). ``c_nonce`` values come from the nonce endpoint and each proves one proof fresh.

Errors are :class:`OAuthError` with the error code of the specification (``invalid_grant``,
``invalid_proof``, ``invalid_nonce``, ...) as their ``code``; the protocol's routes answer
them as ``{"error", "error_description"}``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, delete, update
from sqlmodel import select

from ledger.credentials import jose
from ledger.credentials.models import Oid4vciToken, Oid4vcNonce
from ledger.credentials.service import CredentialService, claim_code_hash
from ledger.credentials.types import CredentialType
from ledger.errors import Conflict, LedgerError, NotFound
from ledger.store import session_scope

__all__ = ["PRE_AUTHORIZED_GRANT", "PROOF_TYP", "OAuthError", "Oid4vciIssuer", "configuration_id"]

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
FORMAT = "dc+sd-jwt"
TOKEN_SECONDS = 600
NONCE_SECONDS = 300
PROOF_MAX_AGE = 300
"""Seconds a proof's ``iat`` may lie in the past, or in the future (clock skew)."""
MAX_PROOF_CHARS = 8 * 1024


class OAuthError(LedgerError):
    """An error of the protocol, as OAuth 2.0 and OpenID4VCI name them."""

    code = "invalid_request"
    http_status = 400

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.message}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back; they are UTC (ledger.store.columns.UTCDateTime).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def configuration_id(ctype: CredentialType) -> str:
    """The ``credential_configuration_id`` of a credential type."""
    return f"{ctype.value}_{FORMAT}"


def _configuration(ctype: CredentialType) -> dict[str, Any]:
    display = [{"name": ctype.label_zh, "locale": "zh-CN"}, {"name": ctype.label_en, "locale": "en"}]
    return {
        "format": FORMAT,
        "vct": ctype.vct,
        "scope": ctype.value,
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["EdDSA"],
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["EdDSA"]}},
        "credential_metadata": {"display": display},
        "display": display,  # where drafts before 1.0 looked for it
    }


class Oid4vciIssuer:
    """The issuer's protocol: metadata, offers, the token, nonce and credential endpoints."""

    def __init__(self, *, engine: Engine, credentials: CredentialService) -> None:
        self.engine = engine
        self.credentials = credentials

    # -- metadata and offers ----------------------------------------------------------

    def metadata(self, issuer: str) -> dict[str, Any]:
        """``/.well-known/openid-credential-issuer``."""
        return {
            "credential_issuer": issuer,
            "authorization_servers": [issuer],
            "credential_endpoint": f"{issuer}/oid4vci/credential",
            "nonce_endpoint": f"{issuer}/oid4vci/nonce",
            "display": [{"name": "教育链 eduledger", "locale": "zh-CN"},
                        {"name": "eduledger", "locale": "en"}],
            "credential_configurations_supported": {configuration_id(t): _configuration(t)
                                                    for t in CredentialType},
        }

    def authorization_server_metadata(self, issuer: str) -> dict[str, Any]:
        """``/.well-known/oauth-authorization-server`` (RFC 8414): the issuer is its own AS."""
        return {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oid4vci/token",
            "grant_types_supported": [PRE_AUTHORIZED_GRANT],
            "pre-authorized_grant_anonymous_access_supported": True,
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": [],
        }

    def offer(self, issuer: str, org_id: str, credential_id: str) -> tuple[dict[str, Any], str]:
        """The credential offer of a credential `org_id` issued and not yet claimed, and its
        ``openid-credential-offer://`` URL."""
        record = self.credentials.issued_by(org_id, credential_id)
        code = self.credentials.claim_code_of(org_id, credential_id)
        offer = {
            "credential_issuer": issuer,
            "credential_configuration_ids": [configuration_id(CredentialType(record.type))],
            "grants": {PRE_AUTHORIZED_GRANT: {"pre-authorized_code": code}},
        }
        text = jose.json_dumps(offer).decode("utf-8")
        return offer, "openid-credential-offer://?credential_offer=" + quote(text, safe="")

    # -- token endpoint --------------------------------------------------------------

    def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Trade a pre-authorised code (a claim code) for an access token."""
        grant = form.get("grant_type")
        if grant != PRE_AUTHORIZED_GRANT:
            raise OAuthError(f"grant_type {grant!r} is not supported (only {PRE_AUTHORIZED_GRANT})",
                             code="unsupported_grant_type" if grant else "invalid_request")
        code = form.get("pre-authorized_code")
        if not code or len(code) > 64:
            raise OAuthError("pre-authorized_code is missing", code="invalid_request")
        code_hash = claim_code_hash(code)
        try:
            self.credentials.unredeemed_claim(code_hash)
        except NotFound:
            raise OAuthError("the pre-authorized code is not known", code="invalid_grant") from None
        except Conflict:
            raise OAuthError("the pre-authorized code has been used", code="invalid_grant") from None
        token = secrets.token_urlsafe(32)
        now = _now()
        with session_scope(self.engine) as session:
            # One live token per code: a wallet that starts over gets a new one.
            session.execute(delete(Oid4vciToken).where(Oid4vciToken.code_hash == code_hash))  # type: ignore[arg-type]
            session.add(Oid4vciToken(token_hash=_hash(token), code_hash=code_hash, created_at=now,
                                     expires_at=now + timedelta(seconds=TOKEN_SECONDS)))
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}

    # -- nonce endpoint --------------------------------------------------------------

    def nonce(self) -> dict[str, Any]:
        value = secrets.token_urlsafe(24)
        now = _now()
        with session_scope(self.engine) as session:
            session.execute(delete(Oid4vcNonce).where(Oid4vcNonce.expires_at < now))  # type: ignore[arg-type]
            session.add(Oid4vcNonce(nonce_hash=_hash(value),
                                    expires_at=now + timedelta(seconds=NONCE_SECONDS)))
        return {"c_nonce": value, "c_nonce_expires_in": NONCE_SECONDS}

    def _use_nonce(self, value: str) -> None:
        now = _now()
        with session_scope(self.engine) as session:
            used = session.execute(
                update(Oid4vcNonce)
                .where(Oid4vcNonce.nonce_hash == _hash(value),  # type: ignore[arg-type]
                       Oid4vcNonce.used_at.is_(None),  # type: ignore[union-attr]
                       Oid4vcNonce.expires_at > now)  # type: ignore[arg-type]
                .values(used_at=now))
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise OAuthError("the proof's nonce is not a fresh c_nonce of this issuer (get another "
                             "from the nonce endpoint)", code="invalid_nonce")

    # -- credential endpoint ---------------------------------------------------------

    def _token(self, authorization: str | None) -> Oid4vciToken:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid_token("a Bearer access token is required")
        with session_scope(self.engine) as session:
            row = session.exec(select(Oid4vciToken).where(
                Oid4vciToken.token_hash == _hash(token.strip()))).first()
        if row is None or _aware(row.expires_at) <= _now():
            raise _invalid_token("the access token is unknown or has expired")
        return row

    def credential(self, issuer: str, authorization: str | None, body: Any) -> dict[str, Any]:
        """Issue the credential of the token's claim code, bound to the proof's key."""
        grant = self._token(authorization)
        if not isinstance(body, dict):
            raise OAuthError("the credential request is not a JSON object", code="invalid_credential_request")
        record = self._claimed(grant.code_hash)
        wanted = body.get("credential_configuration_id")
        if wanted is None and "credential_identifier" in body:
            raise OAuthError("credential identifiers are not issued", code="unknown_credential_identifier")
        offered = configuration_id(CredentialType(record.type))
        if wanted != offered:
            raise OAuthError(f"this code is for {offered}, not {wanted!r}",
                             code="unknown_credential_configuration")
        jwk = self._check_proof(issuer, _one_proof(body))
        try:
            redeemed = self.credentials.redeem_hash(grant.code_hash, jwk)
        except Conflict:  # a race with another redemption of the same code
            raise OAuthError("the credential has been issued already",
                             code="credential_request_denied") from None
        with session_scope(self.engine) as session:
            session.execute(delete(Oid4vciToken).where(Oid4vciToken.code_hash == grant.code_hash))  # type: ignore[arg-type]
        return {"credentials": [{"credential": redeemed["sd_jwt"]}],
                "credential_id": redeemed["credential_id"]}

    def _claimed(self, code_hash: str) -> Any:
        try:
            return self.credentials.unredeemed_claim(code_hash)
        except (NotFound, Conflict):
            raise OAuthError("the credential of this token has been issued already",
                             code="credential_request_denied") from None

    def _check_proof(self, issuer: str, proof_jwt: str, *, now: float | None = None) -> dict[str, Any]:
        """The holder's public JWK, once the proof of possession (OpenID4VCI 1.0 appendix
        F.1) is checked: its type, algorithm, key, signature, audience, age and nonce."""
        try:
            header, payload, signing_input, signature = jose.decode_jws_unverified(proof_jwt)
        except jose.SdJwtError as exc:
            raise OAuthError(f"the proof is not a JWT: {exc.message}", code="invalid_proof") from None
        if header.get("typ") != PROOF_TYP:
            raise OAuthError(f"the proof's typ is not {PROOF_TYP}", code="invalid_proof")
        if header.get("alg") != "EdDSA":
            raise OAuthError("the proof is not signed with EdDSA", code="invalid_proof")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or "kid" in header or "x5c" in header:
            raise OAuthError("the proof's header must carry the holder's key as jwk (alone)",
                             code="invalid_proof")
        public = {k: jwk[k] for k in ("kty", "crv", "x") if k in jwk}
        try:
            key = jose.jwk_to_ed25519(jwk)
            jose.check_signature(header, signing_input, signature, key)
        except jose.SdJwtError as exc:
            raise OAuthError(f"the proof does not verify: {exc.message}", code="invalid_proof") from None
        aud = payload.get("aud")
        if aud != issuer and not (isinstance(aud, list) and issuer in aud):
            raise OAuthError(f"the proof's aud is not {issuer}", code="invalid_proof")
        iat = payload.get("iat")
        now = time.time() if now is None else now
        if type(iat) is not int or abs(now - iat) > PROOF_MAX_AGE:
            raise OAuthError("the proof's iat is missing or not recent", code="invalid_proof")
        nonce = payload.get("nonce")
        if not isinstance(nonce, str):
            raise OAuthError("the proof has no nonce (get a c_nonce from the nonce endpoint)",
                             code="invalid_nonce")
        self._use_nonce(nonce)
        return public


def _invalid_token(message: str) -> OAuthError:
    error = OAuthError(message, code="invalid_token")
    error.http_status = 401
    return error


def _one_proof(body: dict[str, Any]) -> str:
    """The JWT of ``proof`` (drafts) or ``proofs`` (1.0): one key, one credential."""
    if "proofs" in body:
        proofs = body["proofs"]
        jwts = proofs.get("jwt") if isinstance(proofs, dict) else None
        if not isinstance(jwts, list) or len(proofs) != 1:
            raise OAuthError("proofs must be {\"jwt\": [...]}", code="invalid_proof")
        if len(jwts) != 1:
            raise OAuthError("one credential per claim code: exactly one proof", code="invalid_proof")
        value = jwts[0]
    else:
        proof = body.get("proof")
        if not isinstance(proof, dict) or proof.get("proof_type") != "jwt":
            raise OAuthError("a proof of possession of proof_type jwt is required", code="invalid_proof")
        value = proof.get("jwt")
    if not isinstance(value, str) or len(value) > MAX_PROOF_CHARS:
        raise OAuthError("the proof is not a JWT", code="invalid_proof")
    return value
