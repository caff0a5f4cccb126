"""A secret sealed under a passphrase: scrypt derives the key, AES-256-GCM encrypts.

Both the organisation keystores (their Ed25519 half) and the holder wallet keep private
keys this way. The sealed form is a JSON object::

    {"cipher": "aes-256-gcm", "ciphertext": hex, "nonce": hex (12 bytes),
     "kdf": "scrypt", "kdfparams": {"n", "r", "p", "dklen": 32, "salt": hex (16 bytes)}}

The associated data (``aad``) binds the ciphertext to its owner and format: a sealed key
moved into another file fails to open. Reading refuses scrypt parameters outside fixed
bounds, so a tampered file cannot make us allocate gigabytes. Errors here carry no
secret; callers turn them into their own errors with their own wording.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = ["MAX_SCRYPT_N", "MIN_SCRYPT_N", "SCRYPT_P", "SCRYPT_R", "MalformedSeal", "WrongPassphrase",
           "scrypt_params_ok", "seal", "unseal"]

SCRYPT_R = 8
SCRYPT_P = 1
# Accepted when sealing (tests may use a low cost) and when opening.
MIN_SCRYPT_N = 2**10
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_RP = 16
CIPHER = "aes-256-gcm"
KDF = "scrypt"


class MalformedSeal(ValueError):
    """The sealed object is not one we write (fields, encodings, cipher or parameters)."""


class WrongPassphrase(ValueError):
    """The passphrase (or the associated data) does not open the seal."""


def scrypt_params_ok(n: Any, r: Any, p: Any) -> bool:
    return (all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p))
            and MIN_SCRYPT_N <= n <= MAX_SCRYPT_N and n & (n - 1) == 0
            and 1 <= r <= MAX_SCRYPT_RP and 1 <= p <= MAX_SCRYPT_RP)


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal(secret: bytes, passphrase: str, aad: bytes, *, scrypt_n: int) -> dict[str, Any]:
    """`secret` encrypted under `passphrase`, bound to `aad`."""
    if not scrypt_params_ok(scrypt_n, SCRYPT_R, SCRYPT_P):
        raise MalformedSeal(f"unsupported scrypt parameters n={scrypt_n!r} r={SCRYPT_R} p={SCRYPT_P}")
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(12)
    ciphertext = AESGCM(_key(passphrase, salt, scrypt_n, SCRYPT_R, SCRYPT_P)).encrypt(nonce, secret, aad)
    return {"cipher": CIPHER, "ciphertext": ciphertext.hex(), "nonce": nonce.hex(), "kdf": KDF,
            "kdfparams": {"n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "dklen": 32, "salt": salt.hex()}}


def unseal(sealed: Any, passphrase: str, aad: bytes) -> bytes:
    """The secret inside `sealed`; MalformedSeal or WrongPassphrase otherwise."""
    if not isinstance(sealed, Mapping):
        raise MalformedSeal("not an object")
    try:
        params = sealed["kdfparams"]
        n, r, p = params["n"], params["r"], params["p"]
        dklen = params.get("dklen", 32)
        salt = bytes.fromhex(params["salt"])
        nonce = bytes.fromhex(sealed["nonce"])
        ciphertext = bytes.fromhex(sealed["ciphertext"])
        cipher, kdf = sealed["cipher"], sealed["kdf"]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MalformedSeal("malformed") from None
    if cipher != CIPHER or kdf != KDF:
        raise MalformedSeal("unsupported cipher")
    if not scrypt_params_ok(n, r, p):
        raise MalformedSeal(f"unsupported scrypt parameters n={n!r} r={r!r} p={p!r}")
    if dklen != 32 or len(nonce) != 12 or not salt:
        raise MalformedSeal("malformed")
    try:
        return AESGCM(_key(passphrase, salt, n, r, p)).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise WrongPassphrase("does not open") from None
