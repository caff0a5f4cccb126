"""Detached signatures of files that are not PDFs: a compact JWS (RFC 7515) whose payload
names the file by its SHA-256, and the signer as the chain knows it.

    header  {"alg": "EdDSA", "typ": "eduledger-signature+jwt", "kid": ...}
    payload {"document": {"sha256", "size", "name"?, "media_type"?},
             "signer": {"type": "member", "did"} | {"type": "card", "card_id", "kind",
                        "key_salt", "jwk", "issuer"},
             "iat": unix seconds (the signer's own clock: the anchor is the time evidence)}

An organisation's ``kid`` is its key id on chain (``<did>#ed25519-<hex>``); a card holder's
is ``urn:eduledger:card:<card id>#<JWK thumbprint>``. Any JOSE library verifies the
signature with the key (the member's from its DID document, the holder's in ``signer.jwk``).

An SM2 seal (商用密码) has the same form with ``alg`` ``SM2-SM3`` (a private name: JOSE
registers no SM2 algorithm): the signature is r || s over SM3(Z_A || signing input), with
the default user id, and the header carries the SM2 public key and its statement, a JWS
by the member's on-chain Ed25519 key (``kid``) that says "this SM2 key is mine".
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.credentials import jose
from ledger.errors import InvalidInput
from ledger.signatures.sm2 import SM2_USER_ID, Sm2Key

__all__ = [
    "JWS_TYP",
    "SM2_ALG",
    "DetachedSignature",
    "document_manifest",
    "parse_detached",
    "sign_detached",
    "sign_sm2",
    "sm2_key_statement",
]

JWS_TYP = "eduledger-signature+jwt"
SM2_STATEMENT_TYP = "eduledger-sm2-key+jwt"
SM2_ALG = "SM2-SM3"
MAX_SIGNATURE_CHARS = 64 * 1024


def document_manifest(
    document: bytes, *, name: str | None = None, media_type: str | None = None
) -> dict[str, Any]:
    manifest: dict[str, Any] = {"sha256": hashlib.sha256(document).hexdigest(), "size": len(document)}
    if name:
        manifest["name"] = name
    if media_type:
        manifest["media_type"] = media_type
    return manifest


def sign_detached(
    document: dict[str, Any],
    signer: dict[str, Any],
    *,
    kid: str,
    key: Ed25519PrivateKey,
    now: int | None = None,
) -> str:
    payload = {"document": document, "signer": signer, "iat": int(now if now is not None else time.time())}
    return jose.sign_jws({"alg": "EdDSA", "typ": JWS_TYP, "kid": kid}, payload, key)


def sm2_key_statement(sm2: Sm2Key, *, did: str, kid: str, key: Ed25519PrivateKey) -> str:
    """The member's Ed25519 key vouching for its SM2 key."""
    return jose.sign_jws(
        {"alg": "EdDSA", "typ": SM2_STATEMENT_TYP, "kid": kid},
        {"sub": did, "sm2_public_key": sm2.public_hex, "uid": SM2_USER_ID, "iat": int(time.time())},
        key,
    )


def sign_sm2(
    document: dict[str, Any],
    signer: dict[str, Any],
    *,
    kid: str,
    sm2: Sm2Key,
    statement: str,
    now: int | None = None,
) -> str:
    header = {
        "alg": SM2_ALG,
        "typ": JWS_TYP,
        "kid": kid,
        "sm2": {"public_key": sm2.public_hex, "uid": SM2_USER_ID, "statement": statement},
    }
    payload = {"document": document, "signer": signer, "iat": int(now if now is not None else time.time())}
    signing_input = jose.b64url(jose.json_dumps(header)) + "." + jose.b64url(jose.json_dumps(payload))
    return signing_input + "." + jose.b64url(sm2.sign(signing_input.encode("ascii")))


@dataclass(frozen=True)
class DetachedSignature:
    token: str
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg"))

    @property
    def document_sha256(self) -> str | None:
        doc = self.payload.get("document")
        digest = doc.get("sha256") if isinstance(doc, dict) else None
        return digest if isinstance(digest, str) else None

    @property
    def signer(self) -> dict[str, Any]:
        signer = self.payload.get("signer")
        return signer if isinstance(signer, dict) else {}

    @property
    def claimed_time(self) -> int | None:
        iat = self.payload.get("iat")
        return iat if type(iat) is int and 0 <= iat < 2**40 else None


def parse_detached(token: str | bytes) -> DetachedSignature:
    """A detached signature as written by `sign_detached` or `sign_sm2`; ``malformed_signature``
    otherwise (its signature is not checked here)."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidInput(
                "a detached signature is ASCII text (a compact JWS)", code="malformed_signature"
            ) from None
    token = token.strip()
    if not 10 <= len(token) <= MAX_SIGNATURE_CHARS:
        raise InvalidInput(
            "a detached signature is a compact JWS of at most 64 KiB", code="malformed_signature"
        )
    try:
        header, payload, signing_input, signature = jose.decode_jws_unverified(token)
    except InvalidInput as exc:
        raise InvalidInput(f"not a detached signature: {exc.message}", code="malformed_signature") from None
    parsed = DetachedSignature(token, header, payload, signing_input, signature)
    if header.get("typ") != JWS_TYP or parsed.alg not in ("EdDSA", SM2_ALG) or parsed.document_sha256 is None:
        raise InvalidInput(
            "not an eduledger detached signature (typ, alg or document digest)", code="malformed_signature"
        )
    return parsed
