"""Organisation keystores, encrypted at rest.

An organisation has two private keys:

- a secp256k1 Ethereum account key, which signs its transactions;
- an Ed25519 key, which signs the credentials it issues.

Both live in one JSON file, ``<dir>/<org_id>.keystore.json`` (mode 0600, written
atomically). The Ethereum key is a standard Web3 Secret Storage v3 keystore (scrypt),
readable by any Ethereum tool; the Ed25519 key is encrypted with AES-256-GCM under a
key derived from the same passphrase by scrypt, with the same work factor, so that
neither half is easier to attack than the other. The public parts (org id, address,
Ed25519 public key, creation time) are stored in clear so that a keystore can be listed
without its passphrase.

Private material is never put in a ``repr``, a ``str``, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys_api
from eth_keys.backends import CoinCurveECCBackend, get_backend
from eth_keys.backends.base import BaseECCBackend

from ledger import settings
from ledger.errors import InvalidInput, KeystoreError
from ledger.fileio import atomic_write
from ledger.keys.sealing import (
    SCRYPT_P,
    SCRYPT_R,
    MalformedSeal,
    WrongPassphrase,
    scrypt_params_ok,
    seal,
    unseal,
)
from ledger.settings import DEFAULT_KEYSTORE_SCRYPT_N

FORMAT = "eduledger-organisation-keystore"
FORMAT_VERSION = 1
SUFFIX = ".keystore.json"

# eth_account's default scrypt cost for v3 keystores (n=2**18, r=8, p=1: ~256 MiB, ~1 s).
# The Ed25519 half uses the same cost: the weaker half would bound both, since they share
# one passphrase.
DEFAULT_SCRYPT_N = DEFAULT_KEYSTORE_SCRYPT_N

_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# --------------------------------------------------------------------------- backend


def ecc_backend() -> BaseECCBackend:
    """The secp256k1 backend used for organisation accounts: always coincurve.

    eth_keys picks CoinCurveECCBackend by itself when coincurve is importable, unless
    ECC_BACKEND_CLASS says otherwise; we do not depend on that and pass it explicitly.
    """
    backend = get_backend()
    if isinstance(backend, CoinCurveECCBackend):
        return backend
    return CoinCurveECCBackend()


def _local_account(private_key: bytes) -> LocalAccount:
    key = eth_keys_api.PrivateKey(private_key, backend=ecc_backend())
    return LocalAccount(key, Account())


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, eq=False, repr=False)
class OrganisationKeys:
    """An organisation's unlocked keys. Its repr and str show public parts only."""

    org_id: str
    account: LocalAccount
    address: str
    ed25519_private: Ed25519PrivateKey
    ed25519_public_bytes: bytes

    @property
    def ed25519_public_hex(self) -> str:
        return self.ed25519_public_bytes.hex()

    def sign_credential_bytes(self, message: bytes) -> bytes:
        """An Ed25519 signature of `message` with the credential-signing key."""
        return self.ed25519_private.sign(message)

    def __repr__(self) -> str:
        return (
            f"OrganisationKeys(org_id={self.org_id!r}, address={self.address!r}, "
            f"ed25519_public={self.ed25519_public_hex!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("OrganisationKeys cannot be pickled: it holds private keys")


@dataclass(frozen=True)
class KeystoreInfo:
    """The public part of a keystore file, readable without the passphrase."""

    org_id: str
    address: str
    ed25519_public_bytes: bytes
    created_at: str
    path: Path

    @property
    def ed25519_public_hex(self) -> str:
        return self.ed25519_public_bytes.hex()


# --------------------------------------------------------------------------- paths


def validate_org_id(org_id: str) -> str:
    if not isinstance(org_id, str) or not _ORG_ID.fullmatch(org_id) or ".." in org_id:
        raise InvalidInput(
            f"invalid organisation id {org_id!r}: use 1-128 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit",
            code="invalid_org_id",
        )
    return org_id


def keystore_path(directory: str | os.PathLike[str], org_id: str) -> Path:
    return Path(directory) / f"{validate_org_id(org_id)}{SUFFIX}"


# --------------------------------------------------------------------------- crypto


def _check_scrypt_params(n: int, r: int, p: int, *, where: str) -> None:
    if not scrypt_params_ok(n, r, p):
        raise KeystoreError(f"{where}: unsupported scrypt parameters n={n!r} r={r!r} p={p!r}")


def _aad(org_id: str, public_hex: str) -> bytes:
    # Binds the ciphertext to its owner: swapping keys between files fails to decrypt.
    return f"{FORMAT}/{FORMAT_VERSION}/ed25519/{org_id}/{public_hex}".encode()


def _encrypt_ed25519(
    private: Ed25519PrivateKey, passphrase: str, org_id: str, public_hex: str, n: int
) -> dict[str, Any]:
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return seal(raw, passphrase, _aad(org_id, public_hex), scrypt_n=n)


def _ethereum_keystore(private_key: bytes, passphrase: str, n: int) -> dict[str, Any]:
    return dict(Account.encrypt(private_key, passphrase, kdf="scrypt", iterations=n))


# --------------------------------------------------------------------------- files


def _ensure_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeystoreError(
            f"cannot create keystore directory {directory}: {exc.strerror}"
        ) from None


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeystoreError(f"no keystore file {path}", code="keystore_not_found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise KeystoreError(f"cannot read keystore file {path}: {reason}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeystoreError(
            f"keystore file {path} is corrupt: not valid JSON (line {exc.lineno})",
            code="keystore_corrupt",
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeystoreError(
            f"keystore file {path} is corrupt: not an eduledger organisation keystore",
            code="keystore_corrupt",
        )
    if doc.get("version") != FORMAT_VERSION:
        raise KeystoreError(
            f"keystore file {path} has unsupported version {doc.get('version')!r}",
            code="keystore_corrupt",
        )
    return doc


def _corrupt(path: Path, what: str) -> KeystoreError:
    return KeystoreError(f"keystore file {path} is corrupt: {what}", code="keystore_corrupt")


def _public_info(doc: dict[str, Any], path: Path) -> KeystoreInfo:
    try:
        org_id = doc["org_id"]
        address = doc["address"]
        public = bytes.fromhex(doc["ed25519_public_key"])
        created_at = doc["created_at"]
    except (KeyError, TypeError, ValueError):
        raise _corrupt(path, "missing or malformed public fields") from None
    if not (isinstance(org_id, str) and isinstance(address, str) and isinstance(created_at, str)):
        raise _corrupt(path, "malformed public fields")
    if len(public) != 32:
        raise _corrupt(path, "Ed25519 public key is not 32 bytes")
    return KeystoreInfo(org_id, address, public, created_at, path)


def _document(
    org_id: str,
    account: LocalAccount,
    ed_private: Ed25519PrivateKey,
    created_at: str,
    passphrase: str,
    n: int,
) -> bytes:
    public_hex = ed_private.public_key().public_bytes_raw().hex()
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "org_id": org_id,
        "address": account.address,
        "ed25519_public_key": public_hex,
        "created_at": created_at,
        "ethereum": _ethereum_keystore(account.key, passphrase, n),
        "ed25519": _encrypt_ed25519(ed_private, passphrase, org_id, public_hex, n),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _resolve_passphrase(passphrase: str | None) -> str:
    value = settings.keystore_passphrase() if passphrase is None else passphrase
    if not isinstance(value, str) or not value:
        raise InvalidInput("the keystore passphrase must not be empty", code="empty_passphrase")
    return value


# --------------------------------------------------------------------------- cache

# Unlocked keys per (path, mtime_ns, size, passphrase tag): scrypt makes unlocking take
# about a second. The tag is an HMAC under a per-process random key, so a wrong passphrase
# never hits the cache and the cache never holds the passphrase itself.
_CACHE_MAX = 64
_cache: OrderedDict[tuple[str, int, int, bytes], OrganisationKeys] = OrderedDict()
_cache_lock = threading.Lock()
_cache_secret = secrets.token_bytes(32)


def _cache_key(path: Path, passphrase: str) -> tuple[str, int, int, bytes] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    tag = hmac.new(_cache_secret, passphrase.encode("utf-8"), hashlib.sha256).digest()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, tag)


def clear_keystore_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --------------------------------------------------------------------------- API


def create_keystore(
    directory: str | os.PathLike[str],
    org_id: str,
    passphrase: str | None = None,
    *,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> OrganisationKeys:
    """Generate an organisation's two keys and store them encrypted in `directory`.

    Refuses to overwrite an existing keystore. `passphrase` defaults to the configured
    one (EDULEDGER_KEYSTORE_PASSPHRASE or EDULEDGER_KEYSTORE_PASSPHRASE_FILE).
    """
    validate_org_id(org_id)
    secret = _resolve_passphrase(passphrase)
    _check_scrypt_params(scrypt_n, SCRYPT_R, SCRYPT_P, where="create_keystore")
    directory = Path(directory)
    path = keystore_path(directory, org_id)
    _ensure_dir(directory)
    if path.exists():
        raise KeystoreError(
            f"a keystore for {org_id} already exists: {path}", code="keystore_exists"
        )
    account = _local_account(secrets.token_bytes(32))
    ed_private = Ed25519PrivateKey.generate()
    created_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    data = _document(org_id, account, ed_private, created_at, secret, scrypt_n)
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise KeystoreError(f"cannot write keystore file {path}: {exc.strerror}") from None
    return OrganisationKeys(
        org_id=org_id,
        account=account,
        address=account.address,
        ed25519_private=ed_private,
        ed25519_public_bytes=ed_private.public_key().public_bytes_raw(),
    )


def read_keystore_info(directory: str | os.PathLike[str], org_id: str) -> KeystoreInfo:
    """The public fields of an organisation's keystore, without unlocking it."""
    path = keystore_path(directory, org_id)
    return _public_info(_read_document(path), path)


def list_keystores(directory: str | os.PathLike[str]) -> list[KeystoreInfo]:
    """The keystores in `directory`, sorted by org id (none if it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        if path.name.startswith("."):
            continue
        found.append(_public_info(_read_document(path), path))
    return sorted(found, key=lambda info: info.org_id)


def load_keystore(
    directory: str | os.PathLike[str],
    org_id: str,
    passphrase: str | None = None,
    *,
    use_cache: bool = True,
) -> OrganisationKeys:
    """Unlock an organisation's keys.

    Raises KeystoreError: "wrong passphrase for keystore of <org_id>" when the passphrase
    does not open it, or naming the file when it is missing or corrupt.
    """
    path = keystore_path(directory, org_id)
    secret = _resolve_passphrase(passphrase)
    key = _cache_key(path, secret) if use_cache else None
    if key is not None:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit

    doc = _read_document(path)
    info = _public_info(doc, path)
    if info.org_id != org_id:
        raise _corrupt(path, f"it belongs to {info.org_id!r}, not {org_id!r}")

    eth_doc = doc.get("ethereum")
    if not isinstance(eth_doc, dict):
        raise _corrupt(path, "no Ethereum key")
    try:
        kdfparams = eth_doc["crypto"]["kdfparams"]
        if eth_doc["crypto"]["kdf"] != "scrypt":
            raise _corrupt(path, "Ethereum key is not scrypt-encrypted")
        _check_scrypt_params(
            kdfparams["n"], kdfparams["r"], kdfparams["p"], where=f"keystore file {path}"
        )
    except (KeyError, TypeError):
        raise _corrupt(path, "malformed Ethereum keystore") from None
    try:
        eth_private = bytes(Account.decrypt(eth_doc, secret))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeystoreError(
                f"wrong passphrase for keystore of {org_id}", code="wrong_passphrase"
            ) from None
        raise _corrupt(path, "malformed Ethereum keystore") from None
    except Exception:
        raise _corrupt(path, "malformed Ethereum keystore") from None

    account = _local_account(eth_private)
    if account.address.lower() != info.address.lower():
        raise _corrupt(path, "the Ethereum key does not match the stored address")

    ed = doc.get("ed25519")
    if isinstance(ed, dict) and isinstance(ed.get("kdfparams"), dict):
        params = ed["kdfparams"]
        with contextlib.suppress(KeyError):
            _check_scrypt_params(params["n"], params["r"], params["p"], where=f"keystore file {path}")
    try:
        raw = unseal(ed, secret, _aad(org_id, info.ed25519_public_bytes.hex()))
    except MalformedSeal:
        raise _corrupt(path, "malformed or unsupported Ed25519 key encryption") from None
    except WrongPassphrase:
        # The Ethereum half opened with this passphrase, so the file was altered.
        raise _corrupt(path, "the Ed25519 key does not decrypt (file altered?)") from None
    if len(raw) != 32:
        raise _corrupt(path, "the Ed25519 key is not 32 bytes")
    ed_private = Ed25519PrivateKey.from_private_bytes(raw)
    public = ed_private.public_key().public_bytes_raw()
    if public != info.ed25519_public_bytes:
        raise _corrupt(path, "the Ed25519 key does not match the stored public key")

    keys = OrganisationKeys(
        org_id=org_id,
        account=account,
        address=account.address,
        ed25519_private=ed_private,
        ed25519_public_bytes=public,
    )
    if key is not None:
        with _cache_lock:
            _cache[key] = keys
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_MAX:
                _cache.popitem(last=False)
    return keys


def change_passphrase(
    directory: str | os.PathLike[str],
    org_id: str,
    old_passphrase: str,
    new_passphrase: str,
    *,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> OrganisationKeys:
    """Re-encrypt an organisation's keystore under a new passphrase (atomically)."""
    keys = load_keystore(directory, org_id, old_passphrase, use_cache=False)
    new_secret = _resolve_passphrase(new_passphrase)
    _check_scrypt_params(scrypt_n, SCRYPT_R, SCRYPT_P, where="change_passphrase")
    path = keystore_path(directory, org_id)
    created_at = read_keystore_info(directory, org_id).created_at
    data = _document(org_id, keys.account, keys.ed25519_private, created_at, new_secret, scrypt_n)
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise KeystoreError(f"cannot write keystore file {path}: {exc.strerror}") from None
    return keys
