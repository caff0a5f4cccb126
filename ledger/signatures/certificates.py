"""X.509 certificates that carry a signer into a PDF signature.

A PDF signature (CMS) names its signer by a certificate. Ours are carriers, not the trust:
whether a signer was valid is read from the chain (the member's key in the Consortium, the
card's status and key commitment in the IdentityRegistry) at the block that timestamps the
signature. So:

- an organisation's certificate is self-issued by its Ed25519 key (the key registered on
  chain): subject its name, role and DID;
- a card holder's certificate is issued by the school's key to the holder's wallet key:
  subject the card's opaque id, its kind and the school, never a name or a personal number.

Each carries an ``eduledger signer`` extension (non-critical, a UTF8String of JSON) that
names the signer as the chain knows it: ``{"signer": "member", "did": ...}`` or
``{"signer": "card", "card_id", "kind", "key_salt", "issuer"}`` (the key salt opens the
card's key commitment on chain, as the card itself does when it is presented).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

__all__ = ["SIGNER_OID", "holder_certificate", "member_certificate", "signer_of"]

# 2.25 is the UUID arc (ITU-T X.667): an OID of our own without registering one.
SIGNER_OID = x509.ObjectIdentifier("2.25.216355196430873785766125338765063476331")
MEMBER_CERT_DAYS = 3650
HOLDER_CERT_DAYS = 365
_UB_NAME = 64  # upper bound of X.520 name attributes


def _utf8string(text: str) -> bytes:
    raw = text.encode("utf-8")
    n = len(raw)
    if n < 0x80:
        return b"\x0c" + bytes([n]) + raw
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(size)]) + size + raw


def _read_utf8string(der: bytes) -> str | None:
    if len(der) < 2 or der[0] != 0x0C:
        return None
    first, rest = der[1], der[2:]
    if first < 0x80:
        length, body = first, rest
    else:
        size = first & 0x7F
        if size == 0 or size > 3 or len(rest) < size:
            return None
        length, body = int.from_bytes(rest[:size], "big"), rest[size:]
    if length != len(body):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _short(text: str) -> str:
    return text if len(text) <= _UB_NAME else text[: _UB_NAME - 1] + "…"


def _serial(*parts: str) -> int:
    # Positive, at most 20 octets (RFC 5280), and the same for the same signer and key.
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:16], "big") >> 1 | 1


def _member_name(name: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _short(name)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _short(name)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        ]
    )


def _key_usage(*, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def member_certificate(
    private_key: Ed25519PrivateKey, *, did: str, name: str, role: str, now: datetime | None = None
) -> x509.Certificate:
    """The organisation's certificate, self-issued by its on-chain Ed25519 key."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    subject = _member_name(name, role)
    public = private_key.public_key()
    claims = json.dumps({"signer": "member", "did": did}, separators=(",", ":"))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(_serial(did, public.public_bytes_raw().hex()))
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=MEMBER_CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(did)]), critical=False)
        .add_extension(x509.UnrecognizedExtension(SIGNER_OID, _utf8string(claims)), critical=False)
    )
    return builder.sign(private_key, None)


def holder_certificate(
    school_key: Ed25519PrivateKey,
    school_certificate: x509.Certificate,
    *,
    holder: Ed25519PublicKey,
    card_id: str,
    kind: str,
    key_salt: str,
    school_did: str,
    school_name: str,
    not_after: datetime | None = None,
    now: datetime | None = None,
) -> x509.Certificate:
    """A short certificate the school issues to a card holder's wallet key."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    until = now + timedelta(days=HOLDER_CERT_DAYS)
    if not_after is not None:
        until = min(until, not_after)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, card_id[2:]),  # 64 hex digits
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _short(school_name)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind),
        ]
    )
    claims = json.dumps(
        {"signer": "card", "card_id": card_id, "kind": kind, "key_salt": key_salt, "issuer": school_did},
        separators=(",", ":"),
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(school_certificate.subject)
        .public_key(holder)
        .serial_number(_serial(card_id, holder.public_bytes_raw().hex(), now.isoformat()))
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"urn:eduledger:card:{card_id}")]),
            critical=False,
        )
        .add_extension(x509.UnrecognizedExtension(SIGNER_OID, _utf8string(claims)), critical=False)
    )
    return builder.sign(school_key, None)


def signer_of(certificate: x509.Certificate) -> dict[str, Any] | None:
    """The signer the certificate's ``eduledger signer`` extension names; None without one."""
    try:
        ext = certificate.extensions.get_extension_for_oid(SIGNER_OID)
    except (x509.ExtensionNotFound, ValueError):
        return None
    value = ext.value
    text = _read_utf8string(value.value) if isinstance(value, x509.UnrecognizedExtension) else None
    if text is None:
        return None
    try:
        claims = json.loads(text)
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None
