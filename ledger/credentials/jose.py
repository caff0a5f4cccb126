"""The small part of JOSE that SD-JWT credentials need: base64url, Ed25519 JWKs, compact JWS.

Only ``alg: "EdDSA"`` with Ed25519 keys (RFC 8037) is supported, and nothing else is
accepted: a token whose header names another algorithm (``none`` included) fails with
``signature_invalid``. Decoding is strict throughout, because an SD-JWT's integrity rests
on exact strings: base64url must use the URL-safe alphabet without padding and with zero
trailing bits (so every byte string has exactly one encoding), and JSON must be UTF-8,
an object where an object is expected, without duplicate member names or the non-JSON
constants ``NaN``/``Infinity``.

Every failure raises :class:`SdJwtError` (a :class:`ledger.errors.InvalidInput`) with a
stable ``code``; nothing else escapes for any input string.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic_core import from_json as _from_json

from ledger.errors import InvalidInput

__all__ = [
    "SdJwtError",
    "b64url",
    "b64url_decode",
    "decode_jws_unverified",
    "ed25519_jwk",
    "json_dumps",
    "json_loads",
    "jwk_to_ed25519",
    "okp_thumbprint",
    "sign_jws",
    "verify_jws",
]

ALG = "EdDSA"
ED25519_SIGNATURE_LEN = 64
ED25519_KEY_LEN = 32


class SdJwtError(InvalidInput):
    """A credential, presentation or JOSE object is not acceptable.

    ``code`` is one of ``malformed``, ``signature_invalid``, ``claim_tampered``,
    ``holder_binding_missing``, ``holder_binding_invalid``. Re-exported by
    :mod:`ledger.credentials.sdjwt`, where it is documented as living.
    """

    code = "malformed"


def _malformed(message: str) -> SdJwtError:
    return SdJwtError(message, code="malformed")


# --- base64url -----------------------------------------------------------------------

_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_B64URL_DOTTED_RE = re.compile(r"[A-Za-z0-9_.-]*")
_PAD = (b"", b"", b"==", b"=")  # by len % 4; len % 4 == 1 is never valid
_B64URL_VALUE = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_SPARE_BITS = (0, 0, 0x0F, 0x03)  # bits of the last character that must be zero, by len % 4


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URLSAFE).decode("ascii")


def b64url_decode(s: str, *, alphabet_checked: bool = False) -> bytes:
    """Strict inverse of :func:`b64url`.

    Rejects (``malformed``) anything but the URL-safe alphabet, ``=`` padding, a length
    that is 1 mod 4, and non-zero trailing bits, so ``b64url(b64url_decode(s)) == s``
    whenever it returns. ``alphabet_checked``: the caller has already matched ``s``
    against the alphabet (binascii would silently skip foreign characters otherwise).
    """
    if type(s) is not str:
        raise _malformed("base64url value is not a string")
    if not alphabet_checked and _B64URL_RE.fullmatch(s) is None:
        raise _malformed("invalid base64url")
    padding = _padding(s, len(s) & 3)
    try:
        return binascii.a2b_base64(s.encode("ascii").translate(_FROM_URLSAFE) + padding)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex already guards
        raise _malformed("invalid base64url") from exc


def _padding(s: str, rem: int) -> bytes:
    """The ``=`` padding of base64url ``s`` (in the alphabet; ``rem`` = its length mod 4),
    once it is known to be canonical: a length of 1 mod 4 is ``malformed``, and so are
    non-zero trailing bits ("AB" and "AA" both decode to b"\x00"; only the last character
    can carry such bits), so that the encoded form is unique."""
    if rem:
        if rem == 1:
            raise _malformed("invalid base64url")
        if _B64URL_VALUE[s[-1]] & _SPARE_BITS[rem]:
            raise _malformed("non-canonical base64url (trailing bits set)")
    return _PAD[rem]


def b64url_decode_all(parts: list[str], *, alphabet_checked: bool = False) -> list[bytes]:
    """:func:`b64url_decode` of each part (``malformed`` for the first bad one), with one
    encode and one alphabet translation for all of them: an SD-JWT has dozens of parts."""
    if not parts:
        return []
    joined = ".".join(parts)
    if "~" in joined or (not alphabet_checked and _B64URL_DOTTED_RE.fullmatch(joined) is None):
        raise _malformed("invalid base64url")
    standard = joined.encode("ascii").translate(_FROM_URLSAFE).split(b".")
    if len(standard) != len(parts):  # a part held a "."
        raise _malformed("invalid base64url")
    a2b = binascii.a2b_base64
    out = []
    for part, data in zip(parts, standard):  # noqa: B905 - lengths compared above
        rem = len(data) & 3
        out.append(a2b(data + _padding(part, rem) if rem else data))
    return out


# --- JSON ----------------------------------------------------------------------------

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (no spaces, non-ASCII kept as is, NaN/Infinity refused)."""
    return _ENCODER.encode(value).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member name")
    return out


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_pairs_no_duplicates)


JSON_MAX_DEPTH = 100
"""Deepest JSON nesting accepted from untrusted input.

Not only a sanity limit: CPython's C JSON decoder recurses on the C stack and relies on
the interpreter recursion limit to stop, and ``py_ecc`` (imported with web3/eth) raises
that limit to 100,000, so ``json.loads("[" * 100_000)`` segfaults the process."""

# A JSON string, or an unterminated one up to the end: each quote is scanned at most once,
# so this is linear even on crafted input (a pattern that must find the closing quote is
# quadratic on '"\\"\\"\\"...').
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_JSON_START = frozenset('[{"-0123456789tfn')
_JSON_END = frozenset(']}"0123456789el')


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= JSON_MAX_DEPTH:
        return False  # the common case: too few brackets to nest that deep
    depth = deepest = 0
    for ch in _NOT_BRACKET_RE.sub("", _JSON_STRING_RE.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest > JSON_MAX_DEPTH


def json_loads(raw: bytes, what: str = "JSON") -> Any:
    """Strict JSON from UTF-8 bytes; any problem (including nesting deeper than
    :data:`JSON_MAX_DEPTH`) is ``malformed``."""
    if raw.count(b"[") + raw.count(b"{") <= JSON_MAX_DEPTH:  # so nested no deeper
        # jiter (pydantic-core's parser) is several times faster, and reads valid JSON as
        # the strict decoder below does (property-tested); but it keeps the last of
        # duplicate names. Without objects there are none; with them, the text has none if
        # it is exactly the compact form of what was read (as disclosures and payloads that
        # we issue are). Anything else gets the strict decoder's verdict.
        try:
            value = _from_json(raw, allow_inf_nan=False)
            if b"{" not in raw or orjson.dumps(value) == raw:
                return value
        except (ValueError, TypeError):  # TypeError: orjson refuses integers beyond 64 bits
            pass
    try:
        text = raw.decode("utf-8")
        if _too_deep(text):
            raise _malformed(f"{what} is nested more than {JSON_MAX_DEPTH} deep")
        if text[:1] in _JSON_START and text[-1:] in _JSON_END:
            # no surrounding white space: skip JSONDecoder.decode's two regex passes
            value, end = _DECODER.raw_decode(text)
            if end == len(text):
                return value
        return _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(f"{what} is not valid JSON") from exc


# --- Ed25519 JWK (RFC 8037) ----------------------------------------------------------


def ed25519_jwk(public: Ed25519PublicKey | bytes) -> dict[str, str]:
    """The public JWK ``{"kty": "OKP", "crv": "Ed25519", "x": ...}`` for a key or its 32 raw bytes."""
    if isinstance(public, Ed25519PublicKey):
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    elif isinstance(public, bytes | bytearray | memoryview):
        raw = bytes(public)
        if len(raw) != ED25519_KEY_LEN:
            raise _malformed("an Ed25519 public key is 32 bytes")
    else:
        raise TypeError("ed25519_jwk takes an Ed25519PublicKey or its 32 raw bytes")
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def okp_thumbprint(jwk: Mapping[str, Any]) -> bytes:
    """RFC 7638 SHA-256 thumbprint of an OKP public JWK (Ed25519 or X25519): the hash of its
    required members crv, kty, x in lexicographic order, without spaces."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"),
                           sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def jwk_to_ed25519(jwk: dict[str, Any]) -> Ed25519PublicKey:
    """The Ed25519 public key of a JWK; ``malformed`` unless it is a public OKP/Ed25519 key."""
    if not isinstance(jwk, dict):
        raise _malformed("JWK is not an object")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise _malformed("JWK is not an OKP Ed25519 key")
    if "d" in jwk:
        raise _malformed("JWK contains a private key")
    raw = b64url_decode(jwk.get("x"))  # type: ignore[arg-type]  # checked inside
    if len(raw) != ED25519_KEY_LEN:
        raise _malformed("JWK x is not 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:  # pragma: no cover - OpenSSL accepts any 32 bytes
        raise _malformed("JWK x is not an Ed25519 public key") from exc


# --- compact JWS ---------------------------------------------------------------------


def sign_jws(header: dict[str, Any], payload: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Compact JWS ``b64(header).b64(payload).b64(sig)``; ``header["alg"]`` must be EdDSA if set."""
    if header.get("alg", ALG) != ALG:
        raise ValueError("sign_jws only signs with EdDSA")
    if "alg" not in header:
        header = {"alg": ALG, **header}
    signing_input = (b64url(json_dumps(header)) + "." + b64url(json_dumps(payload))).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url(key.sign(signing_input))


def decode_jws_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split and decode a compact JWS without checking its signature.

    Returns ``(header, payload, signing_input, signature)``; header and payload must be
    JSON objects and the header must carry a string ``alg``. Anything else is ``malformed``.
    """
    if type(token) is not str:
        raise _malformed("JWS is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise _malformed("JWS must have three dot-separated parts")
    h64, p64, s64 = parts
    if not h64 or not p64 or not s64:
        raise _malformed("JWS has an empty part")
    header = json_loads(b64url_decode(h64), "JWS header")
    payload = json_loads(b64url_decode(p64), "JWS payload")
    signature = b64url_decode(s64)
    if not isinstance(header, dict):
        raise _malformed("JWS header is not a JSON object")
    if not isinstance(header.get("alg"), str):
        raise _malformed("JWS header has no alg")
    if not isinstance(payload, dict):
        raise _malformed("JWS payload is not a JSON object")
    return header, payload, (h64 + "." + p64).encode("ascii"), signature


def verify_jws(token: str, key: Ed25519PublicKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode a compact JWS and check its EdDSA signature with ``key``.

    ``malformed`` if it does not decode; ``signature_invalid`` if the algorithm is not
    EdDSA, the header lists ``crit`` extensions (none are understood) or the signature
    does not verify.
    """
    header, payload, signing_input, signature = decode_jws_unverified(token)
    check_signature(header, signing_input, signature, key)
    return header, payload


def check_signature(
    header: dict[str, Any], signing_input: bytes, signature: bytes, key: Ed25519PublicKey
) -> None:
    """The signature half of :func:`verify_jws`, for callers that already decoded the token."""
    if header.get("alg") != ALG:
        raise SdJwtError(f"unsupported JWS algorithm {header.get('alg')!r}", code="signature_invalid")
    if "crit" in header:
        raise SdJwtError("JWS header has critical extensions", code="signature_invalid")
    if len(signature) != ED25519_SIGNATURE_LEN:
        raise SdJwtError("signature has the wrong length", code="signature_invalid")
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError("the verification key must be an Ed25519PublicKey")
    try:
        key.verify(signature, signing_input)
    except InvalidSignature as exc:
        raise SdJwtError("signature does not verify", code="signature_invalid") from exc
