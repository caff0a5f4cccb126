"""Documents encrypted to a card's holder (数据加密与保护): an organisation sends a file that
only the holder's wallet opens.

The holder's key. The card's holder key is Ed25519: it signs (presentations, holder
proofs) and is never used to encrypt. When the wallet claims a card it makes a separate
X25519 key pair for encryption and sends the public JWK with the claim (``encryption_jwk``);
a claim that rotates the card's key replaces it, and a rotation without one clears it, so
that nothing more is encrypted to a lost wallet. The key is bound to the card in two
places: the node keeps it with the card (the card view lists it, for senders), and the
card itself, the SD-JWT VC the issuer signs at claim time, carries its RFC 7638 thumbprint
as ``encryptionKeyThumbprint`` (always disclosed). So anyone shown the card can check that
a JWK offered as "the holder's encryption key" is the one the issuer bound to the card,
without the node, and a changed key needs a new card from the issuer.

The document. A standard JWE (RFC 7516, compact serialisation): ``alg`` ECDH-ES+A256KW over
X25519 (RFC 8037), ``enc`` A256GCM, ``kid`` the key's RFC 7638 thumbprint, ``cty`` the
media type; the file name is encrypted the same way, in a JWE of its own (a name such as
``张三-处分决定.pdf`` is personal data too). The node stores only the two JWEs; the
plaintext is never written, and the node holds no key that opens them. Made with joserfc.

Only an active card receives documents (a suspended or revoked holder is not the person to
write to); every refusal happens before anything is written.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import Engine
from sqlalchemy.orm import defer
from sqlmodel import select

from ledger.credentials import jose
from ledger.errors import Conflict, InvalidInput, NotFound, TooLarge
from ledger.identity.models import IdentityCard, IdentityDocument
from ledger.identity.types import CardStatus
from ledger.store import session_scope

__all__ = ["ALG", "ENC", "MAX_DOCUMENT_BYTES", "DocumentUpload", "HolderDocuments", "check_encryption_jwk",
           "decrypt", "encrypt_to", "encryption_kid", "jwe_kid", "parse_upload"]

ALG: Final = "ECDH-ES+A256KW"
ENC: Final = "A256GCM"
MAX_DOCUMENT_BYTES: Final = 8 * 1024 * 1024
MAX_FILENAME_CHARS: Final = 255
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
DOCUMENT_ID_BYTES: Final = 16
X25519_KEY_LEN: Final = 32
_MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
_DOCUMENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
# Members a public OKP JWK may carry besides kty, crv, x (RFC 7517 section 4); a private
# key's "d" (or anything else) is refused.
_PUBLIC_MEMBERS = frozenset({"kty", "crv", "x", "kid", "use", "alg", "key_ops"})


def check_encryption_jwk(jwk: Any) -> dict[str, str]:
    """The public X25519 key of `jwk`, as ``{"kty": "OKP", "crv": "X25519", "x": ...}``.
    ``encryption_jwk_private`` if it holds a private part; ``bad_encryption_jwk`` unless it is
    an OKP X25519 public JWK (32-byte x) meant for encryption."""
    if not isinstance(jwk, dict):
        raise InvalidInput("encryption_jwk is not a JWK object", code="bad_encryption_jwk")
    if "d" in jwk:
        raise InvalidInput("encryption_jwk holds a private key: send only its public part",
                           code="encryption_jwk_private")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "X25519":
        raise InvalidInput("encryption_jwk must be an OKP key on X25519 (RFC 8037)",
                           code="bad_encryption_jwk")
    unknown = sorted(str(k)[:20] for k in jwk if k not in _PUBLIC_MEMBERS)
    if unknown:
        raise InvalidInput(f"encryption_jwk has members a public X25519 JWK does not: {unknown[:5]}",
                           code="bad_encryption_jwk")
    if jwk.get("use", "enc") != "enc" or jwk.get("alg", ALG) != ALG:
        raise InvalidInput(f"encryption_jwk is for encryption (use enc, alg {ALG})",
                           code="bad_encryption_jwk")
    try:
        raw = jose.b64url_decode(jwk.get("x"))  # type: ignore[arg-type]  # checked inside
    except InvalidInput:
        raw = b""
    if len(raw) != X25519_KEY_LEN:
        raise InvalidInput("encryption_jwk x is not 32 bytes of base64url", code="bad_encryption_jwk")
    return {"kty": "OKP", "crv": "X25519", "x": str(jwk["x"])}


def encryption_kid(jwk: dict[str, Any]) -> str:
    """The key's RFC 7638 thumbprint (base64url): the ``kid`` of every JWE made to it."""
    return jose.b64url(jose.okp_thumbprint(jwk))


class _DocumentRegistry(jwe.JWERegistry):
    # A whole document (base64url), not joserfc's default of 64 KiB of ciphertext.
    max_ciphertext_length = (MAX_DOCUMENT_BYTES * 4) // 3 + 4096


_REGISTRY: Final = _DocumentRegistry(algorithms=[ALG, ENC])


def encrypt_to(jwk: dict[str, Any], plaintext: bytes, *, cty: str | None = None) -> str:
    """A compact JWE of `plaintext` to the X25519 public key `jwk` (ECDH-ES+A256KW, A256GCM)."""
    header = {"alg": ALG, "enc": ENC, "kid": encryption_kid(jwk), **({"cty": cty} if cty else {})}
    return jwe.encrypt_compact(header, plaintext, OKPKey.import_key(jwk), registry=_REGISTRY)


def jwe_kid(token: str) -> str:
    """The ``kid`` of a compact JWE's protected header (unverified: it picks the key to try);
    ``document_unreadable`` unless it is a JWE of ECDH-ES+A256KW with A256GCM."""
    try:
        header = jose.json_loads(jose.b64url_decode(token.split(".")[0])) if isinstance(token, str) else None
    except InvalidInput:
        header = None
    if not isinstance(header, dict) or header.get("alg") != ALG or header.get("enc") != ENC:
        raise InvalidInput(f"not a compact JWE of {ALG} with {ENC}", code="document_unreadable")
    return str(header.get("kid", ""))


def decrypt(token: str, private_jwk: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Open a compact JWE with the X25519 private JWK it was made to: (plaintext, protected
    header); ``document_unreadable`` if it does not decrypt (altered, or for another key)."""
    jwe_kid(token)
    try:
        opened = jwe.decrypt_compact(token, OKPKey.import_key(private_jwk), registry=_REGISTRY)
    except (JoseError, ValueError):
        raise InvalidInput("the document does not decrypt: it was altered, or is not for this key",
                           code="document_unreadable") from None
    return bytes(opened.plaintext or b""), dict(opened.protected)


@dataclass(frozen=True)
class DocumentUpload:
    content: bytes
    filename: str
    media_type: str


def _media_type(text: str | None) -> str:
    media = (text or DEFAULT_MEDIA_TYPE).split(";")[0].strip().lower()
    if not _MEDIA_TYPE_RE.fullmatch(media):
        raise InvalidInput("media_type is not a media type such as application/pdf", code="bad_media_type")
    return media


def _filename(text: Any) -> str:
    if text is None:
        return "document"
    if (not isinstance(text, str) or not 1 <= len(text) <= MAX_FILENAME_CHARS or not text.isprintable()
            or "/" in text or "\\" in text or text in (".", "..")):
        raise InvalidInput(f"filename is a file's name (1 to {MAX_FILENAME_CHARS} printable characters, "
                           "no / or \\)", code="bad_filename")
    return text


def parse_upload(body: bytes, content_type: str, *, filename: str | None = None) -> DocumentUpload:
    """What an organisation sends: the raw file (its Content-Type its media type, the name
    from ?filename=), or JSON ``{"content_base64", "filename", "media_type"}``."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return DocumentUpload(body, _filename(filename), _media_type(content_type or None))
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the body is not JSON", code="invalid_input") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("content_base64"), str) \
            or set(doc) - {"content_base64", "filename", "media_type"}:
        raise InvalidInput('send {"content_base64": ..., "filename": ..., "media_type": ...}',
                           code="invalid_input")
    try:
        content = base64.b64decode(doc["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("content_base64 is not base64", code="invalid_input") from None
    media = doc.get("media_type")
    if media is not None and not isinstance(media, str):
        raise InvalidInput("media_type is text", code="bad_media_type")
    return DocumentUpload(content, _filename(doc.get("filename", filename)), _media_type(media))


class HolderDocuments:
    """The documents sent to cards' holders: encrypted on the way in, listed and handed out
    (still encrypted) to the holder."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, card: IdentityCard, sender_org: str, upload: DocumentUpload) -> IdentityDocument:
        """Encrypt `upload` to `card`'s holder and keep the JWE (the caller may read the card)."""
        if card.status != CardStatus.ACTIVE.value:
            raise Conflict(f"the card is {card.status}: documents go to active cards only",
                           code="card_not_active")
        if card.encryption_jwk is None:
            raise Conflict("the card's holder has no encryption key (claimed by a wallet that sent "
                           "none): ask them to claim the card again", code="no_encryption_key")
        if not upload.content:
            raise InvalidInput("the document is empty", code="empty_document")
        if len(upload.content) > MAX_DOCUMENT_BYTES:
            raise TooLarge(f"a document is at most {MAX_DOCUMENT_BYTES // 2**20} MiB",
                           code="document_too_large", limit_bytes=MAX_DOCUMENT_BYTES)
        key = json.loads(card.encryption_jwk)
        document = IdentityDocument(
            id=secrets.token_urlsafe(DOCUMENT_ID_BYTES), card_id=card.id, sender_org=sender_org,
            media_type=upload.media_type, size=len(upload.content), kid=encryption_kid(key),
            jwe=encrypt_to(key, upload.content, cty=upload.media_type),
            name_jwe=encrypt_to(key, upload.filename.encode("utf-8"), cty="text/plain"))
        with session_scope(self.engine) as session:
            session.add(document)
        return document

    def for_card(self, card: IdentityCard) -> list[IdentityDocument]:
        """The card's documents, oldest first, without their JWEs (a listing of big files
        should not read them all)."""
        with session_scope(self.engine) as session:
            return list(session.exec(select(IdentityDocument).where(IdentityDocument.card_id == card.id)
                                     .options(defer(IdentityDocument.jwe))  # type: ignore[arg-type]
                                     .order_by(IdentityDocument.created_at)).all())  # type: ignore[arg-type]

    def get(self, card: IdentityCard, document_id: str) -> IdentityDocument:
        found = None
        if isinstance(document_id, str) and _DOCUMENT_ID_RE.fullmatch(document_id):
            with session_scope(self.engine) as session:
                found = session.get(IdentityDocument, document_id)
        if found is None or found.card_id != card.id:
            raise NotFound("no such document for this card", code="document_not_found")
        return found


def view(document: IdentityDocument, *, content: bool) -> dict[str, Any]:
    """A document's record; with `content` its JWE too."""
    out: dict[str, Any] = {
        "document_id": document.id, "card_id": document.card_id, "sender_org": document.sender_org,
        "media_type": document.media_type, "size": document.size, "kid": document.kid, "alg": ALG, "enc": ENC,
        "name_jwe": document.name_jwe, "created_at": document.created_at}
    if content:
        out["jwe"] = document.jwe
    return out
