"""SM2 seal keys (商用密码: SM2 signatures over SM3 digests, GM/T 0003 and GM/T 0004).

Each organisation may seal with an SM2 key besides its Ed25519 key. The SM2 keys of a data
directory live in ``seal-keys.json`` (mode 0600), each private key sealed under the keystore
passphrase (``ledger.keys.sealing``), bound to its organisation and public key; a key is
made on first use. The chain knows only the Ed25519 keys, so an SM2 public key is vouched
for by the organisation's Ed25519 key (a key statement inside every SM2 seal), and the
Ed25519 key's validity comes from the chain as for any other signature.

Signing uses the gmssl package (pure Python, maintained on PyPI): ``sign_with_sm3`` computes
e = SM3(Z_A || M) with the default user id ``1234567812345678`` and signs it. gmssl draws
the per-signature secret k from ``random`` (a Mersenne Twister: predictable, and a known k
gives the private key away), so k is always handed in here, from ``secrets``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmssl import sm2 as gm_sm2

from ledger.errors import KeystoreError
from ledger.fileio import atomic_write
from ledger.keys.keystore import validate_org_id
from ledger.keys.sealing import MalformedSeal, WrongPassphrase, seal, unseal

__all__ = ["SM2_USER_ID", "SealKeys", "Sm2Key", "sm2_verify"]

SEAL_KEYS_FILE = "seal-keys.json"
FORMAT = "eduledger-sm2-seal-keys"
SM2_USER_ID = "1234567812345678"  # GM/T 0009's default distinguishing identifier (what gmssl uses)
_N = int(gm_sm2.default_ecc_table["n"], 16)
_PUBLIC_RE = re.compile(r"[0-9a-f]{128}")


def _new_k() -> str:
    return f"{secrets.randbelow(_N - 1) + 1:064x}"


@dataclass(frozen=True, repr=False)
class Sm2Key:
    """An unlocked SM2 key; its repr shows the public key only."""

    org_id: str
    public_hex: str  # x || y, 128 hex digits (no 04 prefix: gmssl's form)
    _private_hex: str

    def sign(self, message: bytes) -> bytes:
        """r || s (64 bytes) over SM3(Z_A || message)."""
        crypt = gm_sm2.CryptSM2(private_key=self._private_hex, public_key=self.public_hex)
        while True:  # gmssl answers None for the (rare) k that gives r = 0 or s = 0
            signed = crypt.sign_with_sm3(message, _new_k())
            if signed:
                return bytes.fromhex(signed)

    def __repr__(self) -> str:
        return f"Sm2Key(org_id={self.org_id!r}, public={self.public_hex[:16]}...)"

    def __reduce__(self) -> Any:
        raise TypeError("an Sm2Key cannot be pickled: it holds a private key")


def sm2_verify(public_hex: str, message: bytes, signature: bytes) -> bool:
    """Whether `signature` (r || s) is an SM2 signature of SM3(Z_A || message) by `public_hex`."""
    if not isinstance(public_hex, str) or not _PUBLIC_RE.fullmatch(public_hex) or len(signature) != 64:
        return False
    crypt = gm_sm2.CryptSM2(private_key=None, public_key=public_hex)
    try:
        return bool(crypt.verify_with_sm3(signature.hex(), message))
    except (ValueError, ZeroDivisionError):  # a point off the curve, r or s out of range
        return False


def _new_private() -> tuple[str, str]:
    d = secrets.randbelow(_N - 1) + 1
    private = f"{d:064x}"
    crypt = gm_sm2.CryptSM2(private_key=private, public_key="")
    public = crypt._kg(d, gm_sm2.default_ecc_table["g"])  # d·G, gmssl's own point arithmetic
    return private, public


def _aad(org_id: str, public_hex: str) -> bytes:
    return f"{FORMAT}/1/{org_id}/{public_hex}".encode()


class SealKeys:
    """The SM2 seal keys of one data directory, under the keystore passphrase."""

    def __init__(self, data_dir: Path, passphrase: str, *, scrypt_n: int) -> None:
        self.path = data_dir / SEAL_KEYS_FILE
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._lock = threading.Lock()
        self._open: dict[str, Sm2Key] = {}

    def __repr__(self) -> str:
        return f"SealKeys({str(self.path)!r})"

    def __reduce__(self) -> Any:
        raise TypeError("SealKeys cannot be pickled: it holds a passphrase")

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"format": FORMAT, "version": 1, "keys": {}}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"cannot read {self.path}: {exc}", code="seal_keys_corrupt") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("keys"), dict):
            raise KeystoreError(f"{self.path} is not an SM2 seal-key file", code="seal_keys_corrupt")
        return doc

    def key_for(self, org_id: str) -> Sm2Key:
        """The organisation's SM2 key, made (and saved) on first use."""
        validate_org_id(org_id)
        with self._lock:
            if org_id in self._open:
                return self._open[org_id]
            doc = self._read()
            entry = doc["keys"].get(org_id)
            if entry is None:
                private, public = _new_private()
                doc["keys"][org_id] = {
                    "public_key": public,
                    "key": seal(
                        bytes.fromhex(private),
                        self._passphrase,
                        _aad(org_id, public),
                        scrypt_n=self._scrypt_n,
                    ),
                }
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                atomic_write(self.path, json.dumps(doc, indent=2).encode())
            else:
                public = str(entry.get("public_key", ""))
                try:
                    private = unseal(entry.get("key"), self._passphrase, _aad(org_id, public)).hex()
                except MalformedSeal:
                    raise KeystoreError(
                        f"the SM2 key of {org_id} in {self.path} is corrupt", code="seal_keys_corrupt"
                    ) from None
                except WrongPassphrase:
                    raise KeystoreError(
                        f"wrong passphrase for the SM2 keys in {self.path}", code="wrong_passphrase"
                    ) from None
            key = Sm2Key(org_id, public, private)
            self._open[org_id] = key
            return key
