"""SD-JWT credentials: issue, select, bind and verify (RFC 9901, compact serialization).

Profile used here (see DESIGN.md, Credentials):

* Issuer-signed JWT: compact JWS, ``{"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": ...}``
  (``typ`` of the SD-JWT VC profile, draft-ietf-oauth-sd-jwt-vc; credentials issued before
  it say ``vc+sd-jwt`` and verify alike: nothing checks the issuer JWT's ``typ``),
  Ed25519; payload gets ``"_sd_alg": "sha-256"`` and, for holder binding,
  ``"cnf": {"jwk": <Ed25519 OKP JWK>}``.
* Everything inside ``payload[sd_root]`` (``credentialSubject`` by default) is selectively
  disclosable, recursively: every object property is an object-property Disclosure
  ``[salt, name, value]`` whose digest goes in that object's ``_sd`` array (sorted), every
  array element an array-element Disclosure ``[salt, value]`` replaced in place by
  ``{"...": digest}``. Inner objects and arrays are blinded first, so disclosing a parent
  without its children shows the structure (``{}`` / ``[]``) but not the children. Other
  top-level claims stay in the clear. Salts are 16 random bytes, base64url.
* Disclosure digests: base64url(SHA-256(ASCII of the base64url Disclosure)) (RFC 9901
  section 4.2.3). Disclosures are compact UTF-8 JSON.
* Compact form ``<JWT>~<D1>~...~<Dn>~`` and, with key binding, ``...~<KB-JWT>`` whose
  payload is ``{iat, aud, nonce, sd_hash}`` and header ``typ: "kb+jwt"`` (section 4.3).

Verification follows RFC 9901 sections 7.1 and 7.3: split, issuer signature, digests
(every presented Disclosure must be referenced exactly once by the signed payload, directly
or through another presented Disclosure; no digest may appear twice; a claim name may not
clash), then key binding. Every failure is an :class:`SdJwtError` with one of the codes
``malformed``, ``signature_invalid``, ``claim_tampered``, ``holder_binding_missing``,
``holder_binding_invalid``; no other exception type escapes for any input string (the
``issuer_key`` callback's own errors excepted, which propagate).

The anchored leaf is :func:`issuer_jwt_hash`, keccak256 of the issuer-signed JWT, which is
the same for the issued SD-JWT and for every presentation derived from it.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import json.encoder
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.credentials.jose import (
    _TO_URLSAFE,
    SdJwtError,
    b64url,
    b64url_decode,
    b64url_decode_all,
    check_signature,
    decode_jws_unverified,
    ed25519_jwk,
    json_loads,
    jwk_to_ed25519,
    sign_jws,
)
from ledger.merkle import keccak256

__all__ = [
    "Disclosure",
    "Issued",
    "Parsed",
    "SdJwtError",
    "Verified",
    "add_key_binding",
    "disclosure_digest",
    "disclosure_paths",
    "issue",
    "issuer_jwt_hash",
    "parse",
    "sd_hash",
    "select",
    "verify",
    "verify_parsed",
]

SD_ALG = "sha-256"
ISSUER_TYP = "dc+sd-jwt"
KB_TYP = "kb+jwt"
MAX_COMPACT_CHARS = 256 * 1024
MAX_DISCLOSURES = 2000
MAX_DEPTH = 64
"""Nesting limit for claims (issuance and verification): deeper is ``malformed``."""
KB_MAX_FUTURE_SKEW = 300
"""Seconds a KB-JWT ``iat`` may lie in the verifier's future (clock skew)."""

_RESERVED_NAMES = frozenset(("_sd", "..."))
_COMPACT_RE = re.compile(r"[A-Za-z0-9_\-.~]*")
_JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SCALARS = (str, int, float, bool, type(None))
_sha256 = hashlib.sha256

ClaimPath = tuple[str | int, ...]


def _err(code: str, message: str) -> SdJwtError:
    return SdJwtError(message, code=code)


class Disclosure(NamedTuple):
    """One Disclosure. ``name`` is None for an array element; ``value`` is exactly what the
    Disclosure carries (for a nested object or array, its blinded form with ``_sd`` /
    ``{"...": digest}``); ``encoded`` is the base64url string and ``digest`` its digest.

    A named tuple, not a dataclass: issuance and verification make one per claim, and a
    tuple is several times cheaper to build."""

    salt: str
    name: str | None
    value: Any
    encoded: str
    digest: str


@dataclass(frozen=True)
class Issued:
    compact: str
    """``issuer_jwt + "~" + "".join(d.encoded + "~" for d in disclosures)`` (so ``jwt~`` with none)."""
    issuer_jwt: str
    disclosures: list[Disclosure]
    signed_payload: dict[str, Any]
    """The payload as signed (digests, ``_sd_alg``, ``cnf``), without decoding the JWT again;
    it shares clear-text values with the payload given to :func:`issue`."""


@dataclass(frozen=True)
class Parsed:
    issuer_jwt: str
    header: dict[str, Any]
    payload: dict[str, Any]
    disclosures: list[Disclosure]
    kb_jwt: str | None
    presentation_without_kb: str
    """Everything up to and including the last ``~``: what ``sd_hash`` is computed over."""
    signing_input: bytes
    signature: bytes


@dataclass(frozen=True)
class Verified:
    header: dict[str, Any]
    payload: dict[str, Any]
    """The issuer-signed payload as signed (digests, ``_sd_alg``, ``cnf``)."""
    claims: dict[str, Any]
    """The Processed SD-JWT Payload: disclosed values in place, undisclosed digests and array
    placeholders removed, no ``_sd`` / ``_sd_alg``."""
    disclosed: list[tuple[ClaimPath, Any]]
    """Each presented Disclosure's claim path and value (as it appears in ``claims``),
    parents before children. Array indices are positions in the signed array."""
    undisclosed_count: int
    """Digests in the (processed) signed payload with no presented Disclosure, decoys
    included; digests inside undisclosed parents are not visible and not counted."""
    holder_jwk: dict[str, Any] | None
    key_binding: dict[str, Any] | None
    """The KB-JWT payload when one was presented (it has then been checked)."""
    issuer_jwt: str


# --- digests -------------------------------------------------------------------------


def disclosure_digest(encoded: str) -> str:
    """base64url(SHA-256(US-ASCII bytes of the base64url Disclosure)) (RFC 9901 4.2.3)."""
    return b64url(_sha256(encoded.encode("utf-8", "surrogatepass")).digest())


def sd_hash(presentation_without_kb: str) -> str:
    """The KB-JWT ``sd_hash`` over ``<JWT>~<D1>~...~<Dn>~`` (RFC 9901 4.3.1)."""
    return b64url(_sha256(presentation_without_kb.encode("ascii")).digest())


def issuer_jwt_hash(compact_or_jwt: str) -> bytes:
    """keccak256 of the issuer-signed JWT's ASCII bytes: the anchored leaf.

    Accepts the JWT alone, an issued SD-JWT or any presentation of it (with or without
    KB-JWT): everything from the first ``~`` on is ignored, so hiding claims does not
    change the hash.
    """
    if type(compact_or_jwt) is not str:
        raise _err("malformed", "SD-JWT is not a string")
    jwt = compact_or_jwt.split("~", 1)[0]
    if len(jwt) > MAX_COMPACT_CHARS or _JWT_RE.fullmatch(jwt) is None:
        raise _err("malformed", "not a compact JWS")
    return keccak256(jwt.encode("ascii"))


# --- issuance ------------------------------------------------------------------------


_SALT_BATCH = 16
_ZEROS = bytes(_SALT_BATCH)


def _salt_batch() -> list[str]:
    """16 salts of 16 CSPRNG bytes each, base64url (22 characters), for one ``secrets`` call
    and one base64 pass: each salt's 16 bytes are followed by two zero bytes, so every
    salt starts on a 24-character boundary and its first 22 characters are exactly
    ``b64url(16 bytes)`` (the zero bytes only fill the last character's spare bits)."""
    raw = bytearray(secrets.token_bytes(18 * _SALT_BATCH))
    raw[16::18] = _ZEROS
    raw[17::18] = _ZEROS
    text = binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).decode("ascii")
    return [text[i : i + 22] for i in range(0, 24 * _SALT_BATCH, 24)]


def _digests(encoded: list[bytes]) -> list[str]:
    """base64url SHA-256 of each item; one base64 pass (33-byte groups end on 44 characters)."""
    sha = _sha256
    text = (
        binascii.b2a_base64(b"\0".join([sha(e).digest() for e in encoded]) + b"\0", newline=False)
        .translate(_TO_URLSAFE)
        .decode("ascii")
    )
    return [text[i : i + 43] for i in range(0, 44 * len(encoded), 44)]


def _decoy() -> str:
    # RFC 9901 4.2.5: a digest over a cryptographically secure random value.
    return b64url(_sha256(secrets.token_bytes(16)).digest())


def _check_plain(value: Any, depth: int) -> None:
    """Clear-text claims: JSON only, string keys, no reserved ``_sd`` / ``...`` names."""
    if depth > MAX_DEPTH:
        raise _err("malformed", "claims nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            if type(k) is not str:
                raise _err("malformed", f"claim name {k!r} is not a string")
            if k in _RESERVED_NAMES:
                raise _err("malformed", f"claim name {k!r} is reserved by SD-JWT")
            _check_plain(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_plain(v, depth + 1)
    elif not isinstance(value, _SCALARS):
        raise _err("malformed", f"claim value of type {type(value).__name__} is not JSON")


def _no_default(value: Any) -> Any:
    raise TypeError(f"claim value of type {type(value).__name__} is not JSON")


# The hot path of issuance encodes ~15 small JSON arrays per credential. json.dumps builds
# a new C encoder and a cycle-check dict on every call; one C encoder without cycle
# checking is safe here because it only ever sees containers _blind itself built (depth
# bounded by MAX_DEPTH), and it is half the cost.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    _fast_encoder = _c_make_encoder(
        None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def _json_value(value: Any) -> str:
        return "".join(_fast_encoder(value, 0))

else:  # pragma: no cover - pure-Python json
    _slow_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def _json_value(value: Any) -> str:
        return _slow_encoder.encode(value)


# Disclosure(...) without the named tuple's Python-level __new__: _tuple_new(Disclosure, fields)
_tuple_new: Any = tuple.__new__


def _blind(root: Any, decoys: int) -> tuple[Any, list[Disclosure]]:
    """Blind ``root`` recursively; returns its blinded form and the Disclosures (parents
    before children, siblings in input order). Disclosures are compact UTF-8 JSON."""
    out: list[Any] = []
    salts: list[str] = []
    ebs = json.encoder.encode_basestring
    b2a, urlsafe, int_repr = binascii.b2a_base64, _TO_URLSAFE, int.__repr__

    def value_json(value: Any, depth: int) -> tuple[Any, str]:
        """Containers and unusual scalars: (value as it goes in the Disclosure, JSON text)."""
        if isinstance(value, dict):
            value = obj(value, depth + 1)
        elif isinstance(value, list | tuple):
            value = arr(value, depth + 1)
        elif not isinstance(value, _SCALARS):
            raise _err("malformed", f"claim value of type {type(value).__name__} is not JSON")
        return value, _json_value(value)

    def obj(o: dict[Any, Any], depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _err("malformed", "claims nested too deeply")
        slots: list[int] = []  # this level's Disclosures; filled in once their digests are known
        encs: list[bytes] = []
        for name, value in o.items():
            if type(name) is not str:
                raise _err("malformed", f"claim name {name!r} is not a string")
            if name in _RESERVED_NAMES:
                raise _err("malformed", f"claim name {name!r} is reserved by SD-JWT")
            slots.append(len(out))
            out.append(None)
            t = type(value)
            if t is str:
                text = ebs(value)
            elif t is int:
                text = int_repr(value)
            elif t is bool:
                text = "true" if value else "false"
            elif value is None:
                text = "null"
            else:
                value, text = value_json(value, depth)
            if not salts:
                salts.extend(_salt_batch())
            salt = salts.pop()
            enc = b2a(('["' + salt + '",' + ebs(name) + "," + text + "]").encode("utf-8"), newline=False)
            enc = enc.rstrip(b"=").translate(urlsafe)
            encs.append(enc)
            out[slots[-1]] = (salt, name, value, enc)
        if not encs:
            sd = [_decoy() for _ in range(decoys)]
        else:
            sd = _digests(encs)
            for slot, digest in zip(slots, sd, strict=True):
                salt, name, value, enc = out[slot]
                out[slot] = _tuple_new(Disclosure, (salt, name, value, enc.decode("ascii"), digest))
            sd.extend(_decoy() for _ in range(decoys))
        if not sd:
            return {}  # RFC 9901 4.2.4.1: omit an empty _sd
        sd.sort()
        return {"_sd": sd}

    def arr(a: list[Any] | tuple[Any, ...], depth: int) -> list[dict[str, str]]:
        if depth > MAX_DEPTH:
            raise _err("malformed", "claims nested too deeply")
        slots: list[int] = []  # this level's Disclosures; filled in once their digests are known
        encs: list[bytes] = []
        for value in a:
            slots.append(len(out))
            out.append(None)
            t = type(value)
            if t is str:
                text = ebs(value)
            elif t is int:
                text = int_repr(value)
            elif t is bool:
                text = "true" if value else "false"
            elif value is None:
                text = "null"
            else:
                value, text = value_json(value, depth)
            if not salts:
                salts.extend(_salt_batch())
            salt = salts.pop()
            enc = b2a(('["' + salt + '",' + text + "]").encode("utf-8"), newline=False)
            enc = enc.rstrip(b"=").translate(urlsafe)
            encs.append(enc)
            out[slots[-1]] = (salt, None, value, enc)
        if not encs:
            return []
        digests = _digests(encs)
        for slot, digest in zip(slots, digests, strict=True):
            salt, _, value, enc = out[slot]
            out[slot] = _tuple_new(Disclosure, (salt, None, value, enc.decode("ascii"), digest))
        return [{"...": d} for d in digests]

    try:
        if isinstance(root, dict):
            blinded: Any = obj(root, 1)
        elif isinstance(root, list | tuple):
            blinded = arr(root, 1)
        else:
            raise _err("malformed", "the selectively disclosable root must be an object or an array")
    except (TypeError, ValueError, RecursionError) as exc:  # NaN, lone surrogates, huge ints
        if isinstance(exc, SdJwtError):
            raise
        raise _err("malformed", f"claims are not JSON-serialisable: {exc}") from exc
    return blinded, out


def issue(
    payload: dict[str, Any],
    *,
    key: Ed25519PrivateKey,
    kid: str,
    sd_root: str = "credentialSubject",
    holder_jwk: dict[str, Any] | None = None,
    typ: str = ISSUER_TYP,
    decoys: int = 0,
) -> Issued:
    """Issue an SD-JWT in which every claim under ``payload[sd_root]`` is selectively
    disclosable (see the module docstring). ``decoys`` decoy digests are added to every
    ``_sd`` array. The input must be JSON data (string keys; str/int/float/bool/None,
    lists, dicts) without the reserved names ``_sd`` / ``...`` / top-level ``_sd_alg``
    (and without ``cnf`` when ``holder_jwk`` is given); otherwise ``malformed``."""
    if not isinstance(payload, dict):
        raise _err("malformed", "payload is not an object")
    if sd_root not in payload:
        raise _err("malformed", f"payload has no {sd_root!r}")
    if "_sd_alg" in payload:
        raise _err("malformed", "payload already has _sd_alg")
    if holder_jwk is not None:
        jwk_to_ed25519(holder_jwk)  # validates (malformed)
        if "cnf" in payload:
            raise _err("malformed", "payload already has cnf")
    if type(decoys) is not int or decoys < 0:
        raise ValueError("decoys must be a non-negative int")

    signed: dict[str, Any] = {}
    disclosures: list[Disclosure] = []
    for name, value in payload.items():
        if type(name) is not str:
            raise _err("malformed", f"claim name {name!r} is not a string")
        if name in _RESERVED_NAMES:
            raise _err("malformed", f"claim name {name!r} is reserved by SD-JWT")
        if name == sd_root:
            signed[name], disclosures = _blind(value, decoys)
        else:
            _check_plain(value, 1)
            signed[name] = value
    signed["_sd_alg"] = SD_ALG
    if holder_jwk is not None:
        signed["cnf"] = {"jwk": dict(holder_jwk)}
    try:
        # = jose.sign_jws, with the cached encoder: _check_plain bounded the depth, so the
        # payload has no cycles
        header_json = _json_value({"alg": "EdDSA", "typ": typ, "kid": kid}).encode("utf-8")
        signing_input = b64url(header_json) + "." + b64url(_json_value(signed).encode("utf-8"))
    except (TypeError, ValueError, RecursionError) as exc:  # NaN, lone surrogates, huge ints
        raise _err("malformed", f"payload is not JSON-serialisable: {exc}") from exc
    jwt = signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))
    parts = [jwt]
    parts.extend(d.encoded for d in disclosures)
    parts.append("")
    return Issued(compact="~".join(parts), issuer_jwt=jwt, disclosures=disclosures,
                  signed_payload=signed)


# --- parsing -------------------------------------------------------------------------


def _split(compact: Any) -> tuple[str, list[str], str | None]:
    if type(compact) is not str:
        raise _err("malformed", "SD-JWT is not a string")
    if len(compact) > MAX_COMPACT_CHARS:
        raise _err("malformed", f"SD-JWT larger than {MAX_COMPACT_CHARS} characters")
    if _COMPACT_RE.fullmatch(compact) is None:
        raise _err("malformed", "SD-JWT contains characters outside base64url, '.' and '~'")
    parts = compact.split("~")
    if len(parts) < 2:
        raise _err("malformed", "SD-JWT has no '~' separator")
    if len(parts) - 2 > MAX_DISCLOSURES:
        raise _err("malformed", f"more than {MAX_DISCLOSURES} disclosures")
    raws = parts[1:-1]
    for r in raws:
        if not r:
            raise _err("malformed", "empty disclosure")
    return parts[0], raws, parts[-1] or None


def _decode_disclosure(encoded: str, digest: str | None = None) -> Disclosure:
    # _split matched the whole compact form against base64url plus "." and "~"; "~" cannot
    # occur in a part, so excluding "." leaves exactly the base64url alphabet.
    if "." in encoded:
        raise _err("malformed", "invalid base64url")
    return _disclosure(json_loads(b64url_decode(encoded, alphabet_checked=True), "disclosure"),
                       encoded, digest or disclosure_digest(encoded))


def _disclosure(arr: Any, encoded: str, digest: str) -> Disclosure:
    """The Disclosure whose decoded JSON is ``arr``: ``[salt, name, value]`` or ``[salt, value]``."""
    n = len(arr) if type(arr) is list else 0
    if n == 3:
        salt, name, value = arr
        if type(name) is not str:
            raise _err("malformed", "disclosure claim name is not a string")
        if name in _RESERVED_NAMES:
            raise _err("malformed", f"disclosure uses the reserved claim name {name!r}")
    elif n == 2:
        salt, value = arr
        name = None
    elif type(arr) is not list:
        raise _err("malformed", "disclosure is not a JSON array")
    else:
        raise _err("malformed", "disclosure is not a 2- or 3-element array")
    if type(salt) is not str:
        raise _err("malformed", "disclosure salt is not a string")
    disclosure: Disclosure = _tuple_new(Disclosure, (salt, name, value, encoded, digest))
    return disclosure


def _decode_disclosures(raws: list[str]) -> list[Disclosure]:
    """Every Disclosure of a compact form that _split has checked (so ASCII, and base64url
    plus "."), decoded in order; ``malformed`` for the first bad one."""
    if not raws:
        return []
    digests = _digests([r.encode("ascii") for r in raws])  # one base64 pass for all
    decoded = b64url_decode_all(raws, alphabet_checked=True)
    return [_disclosure(json_loads(d, "disclosure"), r, digest)
            for r, d, digest in zip(raws, decoded, digests, strict=True)]


def parse(compact: str) -> Parsed:
    """Split and decode an SD-JWT or SD-JWT+KB without checking anything cryptographic.

    ``malformed`` for anything that is not ``<JWS>~(<Disclosure>~)*[<KB-JWT>]`` with decodable
    parts, larger than 256 KiB, or with more than 2,000 Disclosures. The KB-JWT is returned
    as a string and not decoded here.
    """
    jwt, raws, kb = _split(compact)
    header, payload, signing_input, signature = decode_jws_unverified(jwt)
    disclosures = _decode_disclosures(raws)
    without_kb = compact if kb is None else compact[: len(compact) - len(kb)]
    return Parsed(jwt, header, payload, disclosures, kb, without_kb, signing_input, signature)


# --- resolving digests ---------------------------------------------------------------


class _Resolver:
    """RFC 9901 7.1 step 3-5 over a signed payload and the presented Disclosures.

    Disclosures are decoded lazily, only when their digest is found in the payload, so a
    foreign or altered Disclosure is reported as ``claim_tampered`` whatever its content.
    """

    def __init__(self, raws: Sequence[str] = (), decoded: list[Disclosure] | None = None) -> None:
        """From the encoded Disclosures, decoded when found; or from ``decoded`` alone."""
        self.raws = raws
        self.decoded: list[Disclosure | None]
        if decoded is not None:
            n = len(decoded)
            self.decoded = list(decoded)
            index = {d.digest: i for i, d in enumerate(decoded)}
        else:
            n = len(raws)
            self.decoded = [None] * n
            index = {disclosure_digest(raw): i for i, raw in enumerate(raws)}
        if len(index) != n:
            raise _err("claim_tampered", "the same disclosure is presented twice")
        self.index = index
        self.used = [False] * n
        self.parent = [-1] * n
        self.paths: list[ClaimPath] = [()] * n
        self.values: list[Any] = [None] * n
        self.order: list[int] = []
        self.seen: set[str] = set()
        self.undisclosed = 0

    def _take(self, digest: str, array_element: bool, parent: int) -> Disclosure | None:
        if digest in self.seen:
            raise _err("claim_tampered", "a digest is referenced more than once")
        self.seen.add(digest)
        i = self.index.get(digest)
        if i is None:
            self.undisclosed += 1
            return None
        d = self.decoded[i]
        if d is None:
            d = self.decoded[i] = _decode_disclosure(self.raws[i], digest)
        if array_element and d.name is not None:
            raise _err("claim_tampered", "an object-property disclosure is referenced as an array element")
        if not array_element and d.name is None:
            raise _err("claim_tampered", "an array-element disclosure is referenced from _sd")
        self.used[i] = True
        self.parent[i] = parent
        return d

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        alg = payload.get("_sd_alg", SD_ALG)
        if alg != SD_ALG:
            raise _err("malformed", f"unsupported _sd_alg {alg!r}")
        claims = self.obj(payload, (), -1, 0)
        claims.pop("_sd_alg", None)
        if not all(self.used):
            raise _err("claim_tampered", "a disclosure is not referenced by the issuer-signed JWT")
        return claims

    def value(self, v: Any, path: ClaimPath, parent: int, depth: int) -> Any:
        if type(v) is dict:
            return self.obj(v, path, parent, depth + 1)
        if type(v) is list:
            return self.arr(v, path, parent, depth + 1)
        return v

    def obj(self, o: dict[str, Any], path: ClaimPath, parent: int, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _err("malformed", "claims nested too deeply")
        out: dict[str, Any] = {}
        for k, v in o.items():
            if k != "_sd":
                out[k] = self.value(v, (*path, k), parent, depth)
        sd = o.get("_sd")
        if sd is None:
            return out
        if type(sd) is not list:
            raise _err("malformed", "_sd is not an array")
        found: list[tuple[int, Disclosure]] = []
        for digest in sd:
            if type(digest) is not str:
                raise _err("malformed", "_sd holds a non-string digest")
            d = self._take(digest, False, parent)
            if d is not None:
                found.append((self.index[digest], d))
        found.sort(key=lambda t: t[0])  # presentation order (= issuance order)
        for i, d in found:
            name: str = d.name  # type: ignore[assignment]  # object-property disclosure
            if name in out:
                raise _err("claim_tampered", f"claim {name!r} is disclosed twice at the same level")
            p = (*path, name)
            self.paths[i] = p
            self.order.append(i)
            out[name] = self.values[i] = self.value(d.value, p, i, depth)
        return out

    def arr(self, a: list[Any], path: ClaimPath, parent: int, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise _err("malformed", "claims nested too deeply")
        out: list[Any] = []
        for pos, el in enumerate(a):
            p = (*path, pos)
            if type(el) is dict and len(el) == 1 and type(el.get("...")) is str:
                digest = el["..."]
                d = self._take(digest, True, parent)
                if d is None:
                    continue
                i = self.index[digest]
                self.paths[i] = p
                self.order.append(i)
                val = self.values[i] = self.value(d.value, p, i, depth)
                out.append(val)
            else:
                out.append(self.value(el, p, parent, depth))
        return out


def _resolve_parsed(p: Parsed) -> _Resolver:
    r = _Resolver(decoded=p.disclosures)
    r.run(p.payload)
    return r


def disclosure_paths(compact: str) -> list[tuple[ClaimPath, Any]]:
    """Every Disclosure's claim path and value (children substituted), parents first.

    For the wallet UI; checks structure and digests (``malformed`` / ``claim_tampered``)
    but not the signature.
    """
    r = _resolve_parsed(parse(compact))
    return [(r.paths[i], r.values[i]) for i in r.order]


def select(compact: str, keep: Callable[[ClaimPath, Any], bool]) -> str:
    """A presentation (SD-JWT without KB-JWT) keeping the Disclosures whose path satisfies
    ``keep(path, value)``, plus every Disclosure a kept one is nested in. Disclosures keep
    their original order; any KB-JWT on the input is dropped."""
    p = parse(compact)
    r = _resolve_parsed(p)
    kept: set[int] = set()
    for i in r.order:
        if keep(r.paths[i], r.values[i]):
            j = i
            while j != -1 and j not in kept:
                kept.add(j)
                j = r.parent[j]
    parts = [p.issuer_jwt]
    parts.extend(p.disclosures[i].encoded for i in sorted(kept))
    parts.append("")
    return "~".join(parts)


# --- key binding ---------------------------------------------------------------------


def _cnf_jwk(payload: dict[str, Any]) -> dict[str, Any] | None:
    cnf = payload.get("cnf")
    if isinstance(cnf, dict) and isinstance(cnf.get("jwk"), dict):
        return cnf["jwk"]  # type: ignore[no-any-return]
    return None


def add_key_binding(
    sd_jwt_without_kb: str,
    *,
    holder_key: Ed25519PrivateKey,
    aud: str,
    nonce: str,
    iat: int | None = None,
) -> str:
    """Append a KB-JWT (``typ: kb+jwt``; ``{iat, aud, nonce, sd_hash}``) signed by the holder.

    The input must be an SD-JWT without KB-JWT whose Disclosures all connect to the signed
    payload (``malformed`` / ``claim_tampered``), bound (``cnf.jwk``) to ``holder_key``
    (``holder_binding_missing`` if it has no ``cnf.jwk``, ``holder_binding_invalid`` if
    the key differs).
    """
    p = parse(sd_jwt_without_kb)
    if p.kb_jwt is not None:
        raise _err("malformed", "the SD-JWT already ends with a KB-JWT")
    _resolve_parsed(p)
    jwk = _cnf_jwk(p.payload)
    if jwk is None:
        raise _err("holder_binding_missing", "the credential has no cnf.jwk to bind to")
    if jwk.get("x") != ed25519_jwk(holder_key.public_key())["x"] or jwk.get("crv") != "Ed25519":
        raise _err("holder_binding_invalid", "holder_key is not the key in cnf.jwk")
    if type(aud) is not str or type(nonce) is not str:
        raise TypeError("aud and nonce must be strings")
    kb_payload = {
        "iat": int(time.time()) if iat is None else int(iat),
        "aud": aud,
        "nonce": nonce,
        "sd_hash": sd_hash(p.presentation_without_kb),
    }
    return p.presentation_without_kb + sign_jws({"alg": "EdDSA", "typ": KB_TYP}, kb_payload, holder_key)


def _check_key_binding(
    kb_jwt: str,
    holder_jwk: dict[str, Any] | None,
    presentation_without_kb: str,
    aud: str | None,
    nonce: str | None,
    now: int,
    kb_max_age: int,
) -> dict[str, Any]:
    def bad(message: str) -> SdJwtError:
        return _err("holder_binding_invalid", message)

    try:
        header, payload, signing_input, signature = decode_jws_unverified(kb_jwt)
    except SdJwtError as exc:
        raise bad(f"KB-JWT: {exc.message}") from exc
    if holder_jwk is None:
        raise bad("a KB-JWT is presented but the credential has no cnf.jwk")
    try:
        holder_key = jwk_to_ed25519(holder_jwk)
    except SdJwtError as exc:
        raise bad(f"cnf.jwk: {exc.message}") from exc
    try:
        check_signature(header, signing_input, signature, holder_key)
    except SdJwtError as exc:
        raise bad(f"KB-JWT: {exc.message}") from exc
    if header.get("typ") != KB_TYP:
        raise bad("KB-JWT typ is not kb+jwt")
    if payload.get("sd_hash") != sd_hash(presentation_without_kb):
        raise bad("KB-JWT sd_hash does not match the presentation")
    iat = payload.get("iat")
    if type(iat) is not int:
        raise bad("KB-JWT has no integer iat")
    if iat > now + KB_MAX_FUTURE_SKEW or iat < now - kb_max_age:
        raise bad("KB-JWT iat is outside the acceptable window")
    if type(payload.get("aud")) is not str or type(payload.get("nonce")) is not str:
        raise bad("KB-JWT aud and nonce must be strings")
    if aud is not None and payload["aud"] != aud:
        raise bad("KB-JWT aud is not this verifier")
    if nonce is not None and payload["nonce"] != nonce:
        raise bad("KB-JWT nonce does not match")
    return payload


# --- verification --------------------------------------------------------------------


def verify(
    compact: str,
    *,
    issuer_key: Callable[[dict[str, Any], dict[str, Any]], Ed25519PublicKey],
    require_key_binding: bool = False,
    aud: str | None = None,
    nonce: str | None = None,
    now: int | None = None,
    kb_max_age: int = 10**9,
) -> Verified:
    """Verify an SD-JWT or SD-JWT+KB (RFC 9901 7.1, 7.3).

    Order: structure (``malformed``) -> issuer signature with ``issuer_key(header,
    payload)`` (``signature_invalid``; the callback's own exceptions propagate) -> digests
    (``claim_tampered``: a Disclosure not referenced, presented twice, a digest referenced
    twice, a name clash, a Disclosure of the wrong kind) -> key binding. A KB-JWT, when
    present, is always checked against ``cnf.jwk`` (``holder_binding_invalid``); with
    ``require_key_binding`` a credential without ``cnf`` or a presentation without KB-JWT
    is ``holder_binding_missing``. ``aud`` / ``nonce`` are compared when given; ``iat``
    must lie in ``[now - kb_max_age, now + 300]``.

    Token validity claims (``exp``, ``nbf``, VC ``validFrom``/``validUntil``) are not
    checked here.
    """
    jwt, raws, kb = _split(compact)
    header, payload, signing_input, signature = decode_jws_unverified(jwt)
    check_signature(header, signing_input, signature, issuer_key(header, payload))
    # Disclosures decoded lazily: a foreign one is claim_tampered whatever its content.
    return _verified(jwt, header, payload, _Resolver(raws), kb, compact[: len(compact) - len(kb or "")],
                     require_key_binding, aud, nonce, now, kb_max_age)


def verify_parsed(
    parsed: Parsed,
    *,
    issuer_key: Callable[[dict[str, Any], dict[str, Any]], Ed25519PublicKey],
    require_key_binding: bool = False,
    aud: str | None = None,
    nonce: str | None = None,
    now: int | None = None,
    kb_max_age: int = 10**9,
) -> Verified:
    """:func:`verify` for an SD-JWT that :func:`parse` has decoded (its Disclosures decoded once)."""
    header, payload = parsed.header, parsed.payload
    check_signature(header, parsed.signing_input, parsed.signature, issuer_key(header, payload))
    resolver = _Resolver(decoded=parsed.disclosures)
    return _verified(parsed.issuer_jwt, header, payload, resolver, parsed.kb_jwt,
                     parsed.presentation_without_kb, require_key_binding, aud, nonce, now, kb_max_age)


def _verified(
    jwt: str,
    header: dict[str, Any],
    payload: dict[str, Any],
    resolver: _Resolver,
    kb: str | None,
    without_kb: str,
    require_key_binding: bool,
    aud: str | None,
    nonce: str | None,
    now: int | None,
    kb_max_age: int,
) -> Verified:
    """The digests and key binding, once the issuer signature has passed."""
    claims = resolver.run(payload)
    holder_jwk = _cnf_jwk(payload)
    key_binding: dict[str, Any] | None = None
    if kb is not None:
        key_binding = _check_key_binding(
            kb, holder_jwk, without_kb, aud, nonce, int(time.time()) if now is None else now, kb_max_age
        )
    elif require_key_binding:
        if holder_jwk is None:
            raise _err("holder_binding_missing", "key binding is required but the credential has no cnf.jwk")
        raise _err("holder_binding_missing", "key binding is required but no KB-JWT was presented")

    return Verified(
        header=header,
        payload=payload,
        claims=claims,
        disclosed=[(resolver.paths[i], resolver.values[i]) for i in resolver.order],
        undisclosed_count=resolver.undisclosed,
        holder_jwk=holder_jwk,
        key_binding=key_binding,
        issuer_jwt=jwt,
    )
