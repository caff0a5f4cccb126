"""Holder proofs: how a card's holder authenticates to the node with their wallet key.

A holder has no API key; they hold the card's key. Each request carries a fresh proof,
``Authorization: HolderProof <jwt>``: a compact JWS signed with EdDSA by the card's current
holder key (the Ed25519 key whose salted commitment is on chain), shaped after DPoP's
proof JWT (RFC 9449 section 4.2)::

    header  {"alg": "EdDSA", "typ": "holder-proof+jwt"}
    payload {"sub": <card id>, "htm": <HTTP method>, "htu": <request path, without query>,
             "iat": <seconds since the epoch>, "jti": <128 random bits, base64url>}

The node checks, in this order, and refuses with 401 and a named code: it is a JWS of that
type (``malformed_holder_proof``); it verifies with the key the card is bound to now
(``holder_key_not_current``: another key, or a key the card was rotated away from); it names
this card, method and path (``holder_proof_mismatch``); it was made within the last
``MAX_AGE`` seconds and not more than ``SKEW`` ahead (``holder_proof_expired``); its ``jti``
was never used (``holder_proof_replayed``). A spent ``jti`` is kept until the proof would be
expired anyway, so the table of spent proofs stays small. ``htu`` is the path alone (not
DPoP's full URL) so that a proxy's host name in front of the node does not matter.

The card's key is the one the node bound at the card's last claim (it keeps it with the
card and put its commitment on chain in the same step), so a proof is checked without a
chain read.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError

from ledger.credentials import jose
from ledger.errors import InvalidInput, PermissionDenied
from ledger.identity.models import IdentityCard, IdentityHolderProof
from ledger.store import session_scope

__all__ = ["MAX_AGE", "PROOF_TYP", "SCHEME", "HolderAccess", "HolderProofRefused", "HolderProofs",
           "make_proof"]

SCHEME: Final = "HolderProof"
PROOF_TYP: Final = "holder-proof+jwt"
MAX_AGE: Final = 120  # seconds a proof is good for
SKEW: Final = 30  # seconds a wallet's clock may be ahead
_JTI_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class HolderProofRefused(PermissionDenied):
    """A request whose holder proof does not hold (HTTP 401); `code` says why."""

    code = "malformed_holder_proof"
    http_status = 401


def make_proof(key: Ed25519PrivateKey, card_id: str, method: str, path: str, *, now: int | None = None,
               jti: str | None = None) -> str:
    """A holder proof for one request (the wallet makes one for each)."""
    payload = {"sub": card_id, "htm": method.upper(), "htu": path.split("?")[0],
               "iat": int(time.time()) if now is None else now, "jti": jti or secrets.token_urlsafe(16)}
    return jose.sign_jws({"alg": "EdDSA", "typ": PROOF_TYP}, payload, key)


@dataclass(frozen=True)
class HolderAccess:
    """A request the card's holder made (their proof held)."""

    card: IdentityCard
    jti: str


class HolderProofs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def authenticate(self, card: IdentityCard, proof: str, *, method: str, path: str,
                     now: float | None = None) -> HolderAccess:
        """The holder's access to `card` for this request, or HolderProofRefused. Spends the proof."""
        now = time.time() if now is None else now
        try:
            header, payload, _, _ = jose.decode_jws_unverified(proof)
        except InvalidInput:
            raise HolderProofRefused("the holder proof is not a compact JWS") from None
        if header.get("typ") != PROOF_TYP:
            raise HolderProofRefused(f"the holder proof's typ is not {PROOF_TYP}")
        try:
            current = jose.jwk_to_ed25519(json.loads(card.holder_jwk)) if card.holder_jwk else None
            if current is None:
                raise InvalidInput("unclaimed")
            jose.verify_jws(proof, current)
        except InvalidInput:
            raise HolderProofRefused("the holder proof is not signed by the card's current holder key",
                                     code="holder_key_not_current") from None
        if (payload.get("sub"), payload.get("htm"), payload.get("htu")) != (card.id, method.upper(), path):
            raise HolderProofRefused("the holder proof is for another card or request",
                                     code="holder_proof_mismatch")
        iat, jti = payload.get("iat"), payload.get("jti")
        if type(iat) is not int or not now - MAX_AGE <= iat <= now + SKEW:
            raise HolderProofRefused(f"the holder proof was not made in the last {MAX_AGE} seconds",
                                     code="holder_proof_expired")
        if not isinstance(jti, str) or not _JTI_RE.fullmatch(jti):
            raise HolderProofRefused("the holder proof's jti is not 16 to 64 base64url characters")
        self._spend(card.id, jti, datetime.fromtimestamp(iat + MAX_AGE + SKEW, UTC),
                    datetime.fromtimestamp(now, UTC))
        return HolderAccess(card, jti)

    def _spend(self, card_id: str, jti: str, expires_at: datetime, now: datetime) -> None:
        try:
            with session_scope(self.engine, write=True) as session:
                session.execute(delete(IdentityHolderProof).where(
                    IdentityHolderProof.expires_at < now - timedelta(seconds=1)))  # type: ignore[arg-type]
                session.add(IdentityHolderProof(jti=jti, card_id=card_id, expires_at=expires_at))
        except IntegrityError:
            raise HolderProofRefused("this holder proof has been used already: make a new one",
                                     code="holder_proof_replayed") from None
