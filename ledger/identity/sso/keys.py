"""The OpenID Provider's own secrets: the RSA key that signs ID tokens (RS256, which every
relying party supports: OpenID Connect Core 15.1), the secret of the pairwise subjects and
the key that encrypts the card claims a sign-in keeps for its code and token.

Kept in ``<data dir>/sso-keys.json`` (mode 0600), sealed under the keystore passphrase like
the organisations' keys; made on first use. Losing the file changes every subject: keep it
with the keystores.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import RSAKey

from ledger.errors import ConfigError, KeystoreError
from ledger.fileio import atomic_write
from ledger.keys.sealing import MalformedSeal, WrongPassphrase, seal, unseal

__all__ = ["KEYS_FILE", "ProviderKeys"]

KEYS_FILE = "sso-keys.json"
FORMAT = "eduledger-sso-keys"
RSA_BITS = 2048


class ProviderKeys:
    def __init__(self, data_dir: Path, passphrase: str, *, scrypt_n: int) -> None:
        self.path = data_dir / KEYS_FILE
        pem, self._pairwise, self._claims = self._load_or_create(passphrase, scrypt_n)
        self.signing_key: RSAKey = RSAKey.import_key(pem, parameters={"use": "sig", "alg": "RS256"})
        self.signing_key.ensure_kid()

    def _load_or_create(self, passphrase: str, scrypt_n: int) -> tuple[bytes, bytes, bytes]:
        aad = FORMAT.encode()
        if not self.path.exists():
            key = RSAKey.generate_key(RSA_BITS, private=True)
            pem = key.as_pem(private=True)
            fresh = (pem, secrets.token_bytes(32), secrets.token_bytes(32))
            doc = {"format": FORMAT, "version": 1,
                   "sealed": seal(fresh[1] + fresh[2] + pem, passphrase, aad, scrypt_n=scrypt_n)}
            try:
                atomic_write(self.path, json.dumps(doc, indent=2).encode(), exclusive=True)
            except FileExistsError:  # another process made them first: use theirs
                pass
            else:
                return fresh
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ValueError
            raw = unseal(doc["sealed"], passphrase, aad)
        except WrongPassphrase:
            raise KeystoreError(f"wrong passphrase for {self.path}", code="wrong_passphrase") from None
        except (OSError, ValueError, KeyError, TypeError, MalformedSeal):
            raise ConfigError(f"{self.path} is not an eduledger SSO keys file",
                              code="secrets_corrupt") from None
        if len(raw) <= 64:
            raise ConfigError(f"{self.path} is not an eduledger SSO keys file", code="secrets_corrupt")
        return raw[64:], raw[:32], raw[32:64]

    @property
    def kid(self) -> str:
        return str(self.signing_key.kid)

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.as_dict(private=False)]}

    def subject(self, org_id: str, sector: str, person_key: str) -> str:
        """The pairwise subject (OpenID Connect Core 8.1) of a person for a sector: the same
        for every client of `org_id` in `sector`, unlinkable across sectors without the secret."""
        message = b"\x00".join((b"eduledger sso sub/1", org_id.encode(), sector.encode(),
                                person_key.encode()))
        digest = hmac.new(self._pairwise, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def seal_claims(self, what: str, claims: dict[str, Any]) -> bytes:
        nonce = secrets.token_bytes(12)
        data = json.dumps(claims, ensure_ascii=False, sort_keys=True).encode()
        return nonce + AESGCM(self._claims).encrypt(nonce, data, what.encode())

    def open_claims(self, what: str, sealed: bytes) -> dict[str, Any]:
        try:
            opened: dict[str, Any] = json.loads(AESGCM(self._claims).decrypt(sealed[:12], sealed[12:],
                                                                              what.encode()))
        except (InvalidTag, ValueError):
            raise ConfigError("the claims of a sign-in do not decrypt (altered or moved)",
                              code="personal_data_unreadable") from None
        return opened

    def __repr__(self) -> str:
        return f"ProviderKeys({str(self.path)!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("ProviderKeys cannot be pickled: it holds secrets")
