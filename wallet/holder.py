"""The holder wallet: a graduate's key, credentials and shares, in one directory.

Layout of a wallet directory (mode 0700; every file mode 0600, written atomically)::

    wallet.json                 the holder's Ed25519 key, encrypted; its public JWK in clear
    credentials/<hash>.json     one file per credential (id, type, issuer, received_at, compact)
    credentials/<hash>.photo    an identity card's portrait file
    encryption-keys/<hash>.json an X25519 key documents to a card are encrypted to, encrypted
                                (one per card claimed; named by a hash of its thumbprint)
    shares/<hash>.json          one file per share made (share id, url, expiry, withdraw token)

File names are hashes of the ids, so that an id sent by a server can never name a path.
One file per record means two commands running at once cannot lose each other's writes.

The private key is sealed as the organisations' keystores seal theirs (ledger.keys.sealing):
AES-256-GCM under a key derived from the passphrase by scrypt (n=2**15, r=8, p=1 by
default); the associated data binds it to the format and to the public key stored next to
it. The passphrase comes from the caller, or from
EDULEDGER_WALLET_PASSPHRASE, or from the file named by EDULEDGER_WALLET_PASSPHRASE_FILE;
there is no default. The private key never appears in a repr, a log line or an error.

The Ed25519 holder key signs (presentations, holder proofs); encryption needs X25519, so
each card claim makes a separate X25519 key pair, sealed the same way, whose public JWK goes
with the claim: documents an organisation sends to the card are JWEs to it (ECDH-ES+A256KW,
A256GCM; ledger.identity.documents) that the wallet opens with joserfc.

Credentials are SD-JWT VCs (``dc+sd-jwt``; ``vc+sd-jwt`` before) bound to the holder's key
(``cnf``). A presentation keeps the disclosures the holder chooses, by dotted path
(``credentialSubject.courses.3.grade``), and ends with a key-binding JWT for the verifier.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.credentials import jose
from ledger.credentials.anchorproof import HOLDER_CREDENTIAL_FORMAT
from ledger.errors import ConfigError, InvalidInput
from ledger.fileio import atomic_write, fsync_dir
from ledger.keys.sealing import (
    SCRYPT_P,
    SCRYPT_R,
    MalformedSeal,
    WrongPassphrase,
    scrypt_params_ok,
    seal,
    unseal,
)
from ledger.settings import DEFAULT_WALLET_SCRYPT_N, WalletSettings

FORMAT = "eduledger-holder-wallet"
CREDENTIAL_FORMAT = HOLDER_CREDENTIAL_FORMAT  # `eduledger verify` reads these files as they are
SHARE_FORMAT = "eduledger-holder-share"
ENCRYPTION_KEY_FORMAT = "eduledger-holder-encryption-key"
FORMAT_VERSION = 1

WALLET_FILE = "wallet.json"
CREDENTIALS_DIR = "credentials"
SHARES_DIR = "shares"
ENCRYPTION_KEYS_DIR = "encryption-keys"

DIR_ENV = "EDULEDGER_WALLET_DIR"
PASSPHRASE_ENV = "EDULEDGER_WALLET_PASSPHRASE"
PASSPHRASE_FILE_ENV = "EDULEDGER_WALLET_PASSPHRASE_FILE"
DEFAULT_DIR = Path("~/.eduledger/wallet")

DEFAULT_SCRYPT_N = DEFAULT_WALLET_SCRYPT_N
SCRYPT_N_ENV = "EDULEDGER_WALLET_SCRYPT_N"  # lowering the cost is for tests only

MAX_ID_LENGTH = 512

ClaimPath = tuple[str | int, ...]


class WalletError(InvalidInput):
    """Anything the holder wallet or its API client refuses; `code` says what."""

    code = "wallet_error"


# --------------------------------------------------------------------------- helpers


def _settings() -> WalletSettings:
    try:
        return WalletSettings()
    except ConfigError as exc:  # a wallet's problem to the holder: a WalletError like the others
        raise WalletError(exc.message, code="invalid_setting") from None


def default_wallet_dir() -> Path:
    """EDULEDGER_WALLET_DIR, or ~/.eduledger/wallet."""
    return _settings().wallet_dir.expanduser()


def resolve_wallet_dir(directory: str | os.PathLike[str] | None) -> Path:
    return Path(directory).expanduser() if directory else default_wallet_dir()


def wallet_passphrase() -> str:
    """The passphrase from the settings; never printed or logged."""
    settings = _settings()
    if settings.wallet_passphrase is not None and settings.wallet_passphrase.get_secret_value():
        return settings.wallet_passphrase.get_secret_value()
    path = settings.wallet_passphrase_file
    if path is not None:
        try:
            value = path.expanduser().read_text(encoding="utf-8").strip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise WalletError(
                f"cannot read the wallet passphrase file {path}: {reason}", code="no_passphrase"
            ) from None
        if not value:
            raise WalletError(f"the wallet passphrase file {path} is empty", code="no_passphrase")
        return value
    raise WalletError(
        f"no wallet passphrase: set {PASSPHRASE_ENV}, or {PASSPHRASE_FILE_ENV} to a file holding it",
        code="no_passphrase",
    )


def _resolve_passphrase(passphrase: str | None) -> str:
    value = wallet_passphrase() if passphrase is None else passphrase
    if not isinstance(value, str) or not value:
        raise WalletError("the wallet passphrase must not be empty", code="empty_passphrase")
    return value


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _id_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise WalletError(f"invalid {what} {value!r:.80}", code=f"invalid_{what.replace(' ', '_')}")
    return value


def dotted(path: Sequence[str | int]) -> str:
    """("credentialSubject", "courses", 3, "grade") -> "credentialSubject.courses.3.grade"."""
    return ".".join(str(part) for part in path)


def _split_dotted(path: str) -> tuple[str, ...]:
    parts = tuple(path.split(".")) if isinstance(path, str) else ()
    if not parts or any(not part for part in parts):
        raise WalletError(f"invalid claim path {path!r}: use dotted names such as "
                          "credentialSubject.courses.3.grade", code="unknown_claim", path=path)
    return parts


def _path_strings(path: Sequence[str | int]) -> tuple[str, ...]:
    return tuple(str(part) for part in path)


def _walk(value: Any, parts: Sequence[str]) -> bool:
    """Whether `parts` leads somewhere inside the plain JSON `value`."""
    for part in parts:
        if isinstance(value, Mapping) and part in value and part != "_sd":
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return True


def claim_selector(
    available: Iterable[tuple[Sequence[str | int], Any]], chosen: Iterable[str]
) -> Callable[[Sequence[str | int], Any], bool]:
    """The `keep` function for sdjwt.select that discloses exactly the chosen claims.

    A disclosure is kept when its path equals a chosen path, lies under one (a whole
    course line brings its fields), or is an ancestor of one (its parents must be
    disclosed for it to be seen). A chosen path that matches no disclosable claim raises
    WalletError(code="unknown_claim") naming it.
    """
    entries = [(_path_strings(path), value) for path, value in available]
    wanted: list[tuple[str, ...]] = []
    unknown: list[str] = []
    for text in chosen:
        parts = _split_dotted(text)
        known = any(path[: len(parts)] == parts for path, _ in entries) or any(
            len(path) < len(parts) and parts[: len(path)] == path and _walk(value, parts[len(path):])
            for path, value in entries
        )
        if known:
            wanted.append(parts)
        else:
            unknown.append(text)
    if unknown:
        names = ", ".join(unknown)
        raise WalletError(
            f"no such disclosable claim: {names} (see `eduledger wallet show` for the paths)",
            code="unknown_claim",
            paths=unknown,
        )

    def keep(path: Sequence[str | int], _value: Any) -> bool:
        have = _path_strings(path)
        return any(have[: len(want)] == want or want[: len(have)] == have for want in wanted)

    return keep


# --------------------------------------------------------------------------- files


def _save(path: Path, doc: Mapping[str, Any]) -> None:
    """Write one wallet record (a credential or a share) atomically, mode 0600."""
    _ensure_dir(path.parent)
    try:
        atomic_write(path, _json_bytes(doc))
    except OSError as exc:
        raise WalletError(f"cannot write {path}: {exc.strerror}", code="wallet_io") from None


def _load_all(folder: Path, kind: Any, what: str) -> list[Any]:
    """Every record of one kind in `folder` (none if it does not exist)."""
    if not folder.is_dir():
        return []
    return [kind.from_json(_read_json(path, what), path) for path in sorted(folder.glob("*.json"))]


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WalletError(f"cannot read {what} {path}: {reason}", code="wallet_corrupt") from None
    if not isinstance(doc, dict):
        raise WalletError(f"{what} {path} is corrupt: not a JSON object", code="wallet_corrupt")
    return doc


def _ensure_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise WalletError(f"cannot create wallet directory {directory}: {exc.strerror}",
                          code="wallet_io") from None


# --------------------------------------------------------------------------- key crypto


def _check_scrypt(n: Any, r: Any, p: Any, where: str) -> None:
    if not scrypt_params_ok(n, r, p):
        raise WalletError(f"{where}: unsupported scrypt parameters n={n!r} r={r!r} p={p!r}",
                          code="wallet_corrupt")


def default_scrypt_n() -> int:
    """DEFAULT_SCRYPT_N, unless EDULEDGER_WALLET_SCRYPT_N (for tests) says otherwise."""
    n = _settings().wallet_scrypt_n
    _check_scrypt(n, SCRYPT_R, SCRYPT_P, SCRYPT_N_ENV)
    return n


def _aad(public_x: str) -> bytes:
    return f"{FORMAT}/{FORMAT_VERSION}/ed25519/{public_x}".encode()


def _x25519_aad(public_x: str) -> bytes:
    return f"{ENCRYPTION_KEY_FORMAT}/{FORMAT_VERSION}/x25519/{public_x}".encode()


def _public_jwk(private: Ed25519PrivateKey) -> dict[str, str]:
    return jose.ed25519_jwk(private.public_key())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an OKP public JWK."""
    return jose.b64url(jose.okp_thumbprint(jwk))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class EncryptionKey:
    """An X25519 key pair made for a card claim; the private part stays in memory until the
    claim succeeds, then is sealed into the wallet (Wallet.add_card)."""

    private: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(X25519PrivateKey.generate())

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK sent with the claim: {"kty": "OKP", "crv": "X25519", "x": ...}."""
        return {"kty": "OKP", "crv": "X25519", "x": jose.b64url(self.private.public_key().public_bytes_raw())}

    @property
    def kid(self) -> str:
        return jwk_thumbprint(self.jwk)

    def private_jwk(self) -> dict[str, str]:
        return {**self.jwk, "d": jose.b64url(self.private.private_bytes_raw())}

    def __reduce__(self) -> Any:
        raise TypeError("EncryptionKey cannot be pickled: it holds a private key")


@dataclass(frozen=True)
class StoredCredential:
    credential_id: str
    type: str
    issuer_name: str
    received_at: str
    compact: str = field(repr=False)
    issuer: dict[str, Any] = field(default_factory=dict, repr=False)
    # The anchor proof the API sent with the credential (Merkle path, root, chain,
    # contract, transaction), when it was anchored by then; kept for offline verification.
    anchor: dict[str, Any] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CREDENTIAL_FORMAT,
            "version": FORMAT_VERSION,
            "credential_id": self.credential_id,
            "type": self.type,
            "issuer_name": self.issuer_name,
            "issuer": self.issuer,
            "received_at": self.received_at,
            "compact": self.compact,
            "anchor": self.anchor,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], path: Path) -> StoredCredential:
        try:
            record = cls(
                credential_id=doc["credential_id"],
                type=doc.get("type", ""),
                issuer_name=doc.get("issuer_name", ""),
                received_at=doc["received_at"],
                compact=doc["compact"],
                issuer=dict(doc.get("issuer") or {}),
                anchor=dict(doc["anchor"]) if doc.get("anchor") else None,
            )
        except (KeyError, TypeError, ValueError):
            raise WalletError(f"credential file {path} is corrupt", code="wallet_corrupt") from None
        if doc.get("format") != CREDENTIAL_FORMAT or not all(
            isinstance(v, str) for v in (record.credential_id, record.type, record.issuer_name,
                                         record.received_at, record.compact)
        ):
            raise WalletError(f"credential file {path} is corrupt", code="wallet_corrupt")
        return record


@dataclass(frozen=True)
class ShareRecord:
    share_id: str
    credential_id: str
    url: str
    expires_at: str
    api: str
    claims: tuple[str, ...]
    created_at: str
    withdraw_token: str = field(repr=False)
    qr_png_url: str = ""
    qr_svg_url: str = ""

    @property
    def expired(self) -> bool:
        try:
            when = datetime.fromisoformat(self.expires_at)
        except ValueError:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when <= datetime.now(UTC)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SHARE_FORMAT,
            "version": FORMAT_VERSION,
            "share_id": self.share_id,
            "credential_id": self.credential_id,
            "url": self.url,
            "expires_at": self.expires_at,
            "api": self.api,
            "claims": list(self.claims),
            "created_at": self.created_at,
            "withdraw_token": self.withdraw_token,
            "qr_png_url": self.qr_png_url,
            "qr_svg_url": self.qr_svg_url,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], path: Path) -> ShareRecord:
        try:
            record = cls(
                share_id=doc["share_id"],
                credential_id=doc["credential_id"],
                url=doc["url"],
                expires_at=doc["expires_at"],
                api=doc.get("api", ""),
                claims=tuple(doc.get("claims") or ()),
                created_at=doc["created_at"],
                withdraw_token=doc["withdraw_token"],
                qr_png_url=doc.get("qr_png_url", ""),
                qr_svg_url=doc.get("qr_svg_url", ""),
            )
        except (KeyError, TypeError, ValueError):
            raise WalletError(f"share file {path} is corrupt", code="wallet_corrupt") from None
        if doc.get("format") != SHARE_FORMAT:
            raise WalletError(f"share file {path} is corrupt", code="wallet_corrupt")
        return record


URN_UUID = "urn:uuid:"


def _prefixed(value: str, wanted: str) -> bool:
    """`wanted` starts `value`, or starts it after a "urn:uuid:" scheme the user left out."""
    if value.startswith(wanted):
        return True
    return value.startswith(URN_UUID) and value[len(URN_UUID):].startswith(wanted)


def _find(items: Sequence[Any], wanted: str, attr: str, what: str, unknown_code: str) -> Any:
    """The item whose `attr` equals `wanted`, or the only one it is a prefix of."""
    if not isinstance(wanted, str) or not wanted:
        raise WalletError(f"no {what} given", code=unknown_code)
    exact = [item for item in items if getattr(item, attr) == wanted]
    if exact:
        return exact[0]
    matches = [item for item in items if _prefixed(getattr(item, attr), wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise WalletError(f"no {what} {wanted!r} in the wallet", code=unknown_code, id=wanted)
    ids = ", ".join(sorted(getattr(item, attr) for item in matches)[:5])
    raise WalletError(f"{what} prefix {wanted!r} is ambiguous: it matches {ids}",
                      code=f"ambiguous_{what.replace(' ', '_')}", id=wanted)


# --------------------------------------------------------------------------- wallet


class Wallet:
    """An unlocked holder wallet. Create with `Wallet.create`, open with `Wallet.open`."""

    def __init__(self, directory: Path, private_key: Ed25519PrivateKey, created_at: str, *,
                 passphrase: str | None = None, scrypt_n: int | None = None) -> None:
        self.directory = directory
        self._key = private_key
        self.created_at = created_at
        self._jwk = _public_jwk(private_key)
        # To seal the encryption keys of cards claimed later, as the holder key is sealed.
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n

    # -- lifecycle

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str] | None = None,
        passphrase: str | None = None,
        *,
        scrypt_n: int | None = None,
    ) -> Wallet:
        """A new wallet with a fresh Ed25519 key; refuses to replace an existing one.

        `scrypt_n` defaults to 2**15 (EDULEDGER_WALLET_SCRYPT_N may lower it for tests).
        """
        secret = _resolve_passphrase(passphrase)
        if scrypt_n is None:
            scrypt_n = default_scrypt_n()
        _check_scrypt(scrypt_n, SCRYPT_R, SCRYPT_P, "Wallet.create")
        root = resolve_wallet_dir(directory)
        path = root / WALLET_FILE
        if path.exists():
            raise WalletError(f"a wallet already exists in {root}", code="wallet_exists")
        _ensure_dir(root)
        private = Ed25519PrivateKey.generate()
        jwk = _public_jwk(private)
        created_at = _now()
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": created_at,
            "holder_jwk": jwk,
            "key": seal(private.private_bytes_raw(), secret, _aad(jwk["x"]), scrypt_n=scrypt_n),
        }
        try:
            atomic_write(path, _json_bytes(doc), exclusive=True)
        except FileExistsError:
            raise WalletError(f"a wallet already exists in {root}", code="wallet_exists") from None
        except OSError as exc:
            raise WalletError(f"cannot write {path}: {exc.strerror}", code="wallet_io") from None
        return cls(root, private, created_at, passphrase=secret, scrypt_n=scrypt_n)

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str] | None = None, passphrase: str | None = None
    ) -> Wallet:
        """Unlock the wallet in `directory` (default: EDULEDGER_WALLET_DIR or ~/.eduledger/wallet)."""
        root = resolve_wallet_dir(directory)
        path = root / WALLET_FILE
        if not path.is_file():
            raise WalletError(
                f"no wallet in {root}: create one with `eduledger wallet create`", code="no_wallet"
            )
        secret = _resolve_passphrase(passphrase)
        doc = _read_json(path, "wallet file")
        if doc.get("format") != FORMAT or doc.get("version") != FORMAT_VERSION:
            raise WalletError(f"{path} is not an eduledger holder wallet (version 1)",
                              code="wallet_corrupt")
        try:
            jwk = doc["holder_jwk"]
            sealed = doc["key"]
            x = jwk["x"]
            created_at = str(doc.get("created_at", ""))
        except (KeyError, TypeError):
            raise WalletError(f"wallet file {path} is corrupt", code="wallet_corrupt") from None
        scrypt_n = None
        if isinstance(sealed, dict) and isinstance(sealed.get("kdfparams"), dict):
            params = sealed["kdfparams"]
            _check_scrypt(params.get("n"), params.get("r"), params.get("p"), f"wallet file {path}")
            scrypt_n = params.get("n")
        try:
            raw = unseal(sealed, secret, _aad(str(x)))
        except MalformedSeal:
            raise WalletError(f"wallet file {path} is corrupt or uses an unsupported cipher",
                              code="wallet_corrupt") from None
        except WrongPassphrase:
            raise WalletError(f"wrong passphrase for the wallet in {root}",
                              code="wrong_passphrase") from None
        try:
            private = Ed25519PrivateKey.from_private_bytes(raw)
        except ValueError:
            raise WalletError(f"wallet file {path} is corrupt", code="wallet_corrupt") from None
        if _public_jwk(private)["x"] != x:
            raise WalletError(f"wallet file {path} is corrupt: the key does not match its public part",
                              code="wallet_corrupt")
        return cls(root, private, created_at, passphrase=secret, scrypt_n=scrypt_n)

    def __repr__(self) -> str:
        return f"Wallet(directory={str(self.directory)!r}, holder={self.thumbprint!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Wallet cannot be pickled: it holds a private key")

    # -- the holder's key

    @property
    def holder_jwk(self) -> dict[str, str]:
        """The holder's public key as an OKP Ed25519 JWK (a fresh copy)."""
        return dict(self._jwk)

    @property
    def thumbprint(self) -> str:
        return jwk_thumbprint(self._jwk)

    # -- credentials

    def _credential_path(self, credential_id: str) -> Path:
        return self.directory / CREDENTIALS_DIR / f"{_id_hash(credential_id)}.json"

    def add_credential(
        self,
        compact: str,
        *,
        credential_id: str,
        type: str = "",
        issuer: Mapping[str, Any] | str | None = None,
        received_at: str | None = None,
        anchor: Mapping[str, Any] | None = None,
    ) -> StoredCredential:
        """Store a credential issued to this wallet's key.

        The SD-JWT must parse and be bound (cnf.jwk) to the holder key, or it could never
        be presented. Adding the same credential twice is a no-op; a different credential
        under an existing id is refused (code credential_exists).
        """
        from ledger.credentials import sdjwt

        _check_id(credential_id, "credential id")
        if not isinstance(compact, str) or not compact:
            raise WalletError("the credential is empty", code="invalid_credential")
        try:
            parsed = sdjwt.parse(compact)
            sdjwt.disclosure_paths(compact)  # every disclosure resolves against the signed JWT
        except Exception as exc:  # any parse failure means: not a credential we can hold
            message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
            raise WalletError(f"not an SD-JWT credential: {message}", code="invalid_credential") from None
        if parsed.kb_jwt:
            raise WalletError("that is a presentation, not an issued credential",
                              code="invalid_credential")
        cnf = parsed.payload.get("cnf") if isinstance(parsed.payload, Mapping) else None
        bound = cnf.get("jwk") if isinstance(cnf, Mapping) else None
        if not isinstance(bound, Mapping) or any(bound.get(k) != v for k, v in self._jwk.items()):
            raise WalletError(
                f"credential {credential_id} is not bound to this wallet's key",
                code="not_bound_to_wallet",
            )
        if isinstance(issuer, Mapping):
            issuer_doc = dict(issuer)
            issuer_name = str(issuer.get("name") or issuer.get("id") or "")
        else:
            issuer_doc = {}
            issuer_name = issuer or ""
        record = StoredCredential(
            credential_id=credential_id,
            type=str(type or ""),
            issuer_name=issuer_name,
            received_at=received_at or _now(),
            compact=compact,
            issuer=issuer_doc,
            anchor=dict(anchor) if isinstance(anchor, Mapping) else None,
        )
        path = self._credential_path(credential_id)
        if path.exists():
            existing = StoredCredential.from_json(_read_json(path, "credential file"), path)
            if existing.compact == compact:
                return existing
            raise WalletError(f"the wallet already holds a different credential {credential_id}",
                              code="credential_exists")
        _save(path, record.to_json())
        return record

    def list_credentials(self) -> list[StoredCredential]:
        """The stored credentials, oldest first."""
        records = _load_all(self.directory / CREDENTIALS_DIR, StoredCredential, "credential file")
        return sorted(records, key=lambda r: (r.received_at, r.credential_id))

    def get(self, credential_id: str) -> StoredCredential:
        """A stored credential by id, or by a prefix of its id that matches only one."""
        found: StoredCredential = _find(self.list_credentials(), credential_id, "credential_id",
                                        "credential", "unknown_credential")
        return found

    def claims(self, credential_id: str) -> list[tuple[ClaimPath, Any]]:
        """Every selectively disclosable claim of a credential, as (path, value)."""
        from ledger.credentials import sdjwt

        return list(sdjwt.disclosure_paths(self.get(credential_id).compact))

    def export(self, credential_id: str) -> dict[str, Any]:
        """A stored credential as a credential file (``eduledger-credential/1``): the whole
        SD-JWT, every claim disclosable, with its anchor proof, for `eduledger verify` and
        ``POST /v1/verify``. It holds personal data: the holder decides where it goes."""
        from ledger.anchoring.proof import AnchorProof
        from ledger.credentials.anchorproof import envelope

        record = self.get(credential_id)
        return envelope(record.compact, AnchorProof.from_dict(record.anchor) if record.anchor else None)

    def present(
        self, credential_id: str, paths: Sequence[str], *, aud: str, nonce: str | None = None
    ) -> str:
        """A presentation of a credential that discloses only the chosen claims.

        `paths` are dotted: "credentialSubject.holder_name", "credentialSubject.courses.3"
        (a whole course line) or "credentialSubject.courses.3.grade". The result is the
        compact SD-JWT with a key-binding JWT for `aud`, signed by the holder key, with
        `nonce` (default: 128 random bits).
        """
        from ledger.credentials import sdjwt

        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(aud, str) or not aud:
            raise WalletError("a presentation needs an audience (the API URL)", code="invalid_audience")
        record = self.get(credential_id)
        keep = claim_selector(sdjwt.disclosure_paths(record.compact), paths)
        selected = sdjwt.select(record.compact, keep)
        return str(sdjwt.add_key_binding(
            selected, holder_key=self._key, aud=aud, nonce=nonce or secrets.token_urlsafe(16)
        ))

    # -- identity cards (held like credentials; the portrait file beside them)

    def add_card(self, claimed: Mapping[str, Any], encryption_key: EncryptionKey | None = None
                 ) -> StoredCredential:
        """Keep an identity card the API handed over (its answer to the card's claim code), and
        the encryption key whose public part went with the claim, sealed."""
        import base64
        import binascii

        try:
            photo = base64.b64decode(str(claimed["photo_base64"]), validate=True)
            card_id = _check_id(claimed["card_id"], "card id")
            issuer = claimed.get("issuer")
            record = self.add_credential(str(claimed["sd_jwt"]), credential_id=card_id,
                                         type=f"identity card ({claimed.get('kind', '')})",
                                         issuer=issuer if isinstance(issuer, Mapping) else "")
        except (KeyError, binascii.Error, ValueError):
            raise WalletError("the API's answer is not an identity card", code="bad_response") from None
        atomic_write(self._credential_path(card_id).with_suffix(".photo"), photo)
        if encryption_key is not None:
            self._keep_encryption_key(card_id, encryption_key)
        return record

    # -- documents encrypted to a card's holder

    def _encryption_key_path(self, kid: str) -> Path:
        return self.directory / ENCRYPTION_KEYS_DIR / f"{_id_hash(kid)}.json"

    def _keep_encryption_key(self, card_id: str, key: EncryptionKey) -> None:
        secret = _resolve_passphrase(self._passphrase)
        jwk = key.jwk
        _save(self._encryption_key_path(key.kid), {
            "format": ENCRYPTION_KEY_FORMAT, "version": FORMAT_VERSION, "kid": key.kid, "jwk": jwk,
            "card_id": card_id, "created_at": _now(),
            "key": seal(key.private.private_bytes_raw(), secret, _x25519_aad(jwk["x"]),
                        scrypt_n=self._scrypt_n or default_scrypt_n())})

    def encryption_key(self, kid: str) -> EncryptionKey:
        """The wallet's encryption key with thumbprint `kid` (unsealed), or no_encryption_key."""
        path = self._encryption_key_path(kid) if isinstance(kid, str) else None
        if path is None or not path.is_file():
            raise WalletError(f"this wallet has no encryption key {str(kid)[:60]!r}: the document was "
                              "encrypted to another wallet's key", code="no_encryption_key")
        doc = _read_json(path, "encryption key file")
        try:
            x, sealed = str(doc["jwk"]["x"]), doc["key"]
            raw = unseal(sealed, _resolve_passphrase(self._passphrase), _x25519_aad(x))
            key = EncryptionKey(X25519PrivateKey.from_private_bytes(raw))
        except (KeyError, TypeError, ValueError, MalformedSeal):
            raise WalletError(f"encryption key file {path} is corrupt", code="wallet_corrupt") from None
        except WrongPassphrase:
            raise WalletError(f"wrong passphrase for the wallet in {self.directory}",
                              code="wrong_passphrase") from None
        if key.kid != kid:
            raise WalletError(f"encryption key file {path} is corrupt", code="wallet_corrupt")
        return key

    def open_document(self, token: str) -> tuple[bytes, dict[str, Any]]:
        """Decrypt a compact JWE sent to one of this wallet's cards: (plaintext, protected
        header). no_encryption_key if made to a key the wallet lacks; document_unreadable if it
        does not decrypt (altered, or not ECDH-ES+A256KW with A256GCM)."""
        from ledger.identity import documents

        try:
            key = self.encryption_key(documents.jwe_kid(token))
            return documents.decrypt(token, key.private_jwk())
        except WalletError:
            raise
        except InvalidInput as exc:
            raise WalletError(exc.message, code=exc.code) from None

    def holder_proof(self, card_id: str, method: str, path: str) -> str:
        """A fresh proof, by the holder key, for one request about a card (HolderProof)."""
        from ledger.identity.holder_auth import make_proof

        return make_proof(self._key, card_id, method, path)

    def portrait(self, card_id: str) -> bytes:
        """The portrait file of a held card (what a relying party compares with the chain)."""
        record = self.get(card_id)
        path = self._credential_path(record.credential_id).with_suffix(".photo")
        try:
            return path.read_bytes()
        except OSError:
            raise WalletError(f"no portrait kept for {record.credential_id}", code="no_portrait") from None

    def answer_challenge(self, card_id: str, challenge: Mapping[str, Any]) -> str:
        """A presentation of a card answering a relying party's challenge: the claims it asks
        for and the portrait commitment's opening, key-bound to its audience and nonce."""
        try:
            wanted = [str(c) for c in challenge["claims"]]
            audience, nonce = str(challenge["audience"]), str(challenge["nonce"])
        except (KeyError, TypeError):
            raise WalletError("not a challenge", code="bad_challenge") from None
        held = {path[1] for path, _ in self.claims(card_id) if len(path) >= 2}
        return self.present(card_id, [f"holder.{c}" for c in [*wanted, "portrait"] if c in held],
                            aud=audience, nonce=nonce)

    # -- signing documents with a card's key (the key never leaves the wallet)

    def card_signer(self, card_id: str) -> dict[str, Any]:
        """The signer a card names in a signature: its opaque id, kind, key salt and issuer."""
        from ledger.credentials import sdjwt

        record = self.get(card_id)
        payload = sdjwt.parse(record.compact).payload
        if not isinstance(payload.get("cardId"), str) or not isinstance(payload.get("keySalt"), str):
            raise WalletError(f"{record.credential_id} is not an identity card", code="not_a_card")
        cnf = payload.get("cnf")
        if not isinstance(cnf, dict) or cnf.get("jwk") != self._jwk:
            raise WalletError("this card is bound to another key than this wallet's",
                              code="card_key_mismatch")
        return {"type": "card", "card_id": payload["cardId"], "kind": str(payload.get("cardKind", "")),
                "key_salt": payload["keySalt"], "issuer": str(payload.get("iss", ""))}

    def signing_proof(self, card_id: str) -> str:
        """Proof that this wallet holds the card's key, for a signing certificate request."""
        import time

        from ledger.signatures.service import CERTIFICATE_AUDIENCE

        signer = self.card_signer(card_id)
        return jose.sign_jws({"alg": "EdDSA", "typ": "JWT"}, {
            "card_id": signer["card_id"], "aud": CERTIFICATE_AUDIENCE, "iat": int(time.time())}, self._key)

    def sign_detached(self, card_id: str, document: bytes, *, name: str | None = None,
                      media_type: str | None = None) -> str:
        """A detached signature (JWS) of `document` by the card's key."""
        from ledger.identity.service import jwk_thumbprint as card_thumbprint
        from ledger.signatures.detached import document_manifest, sign_detached

        signer = {**self.card_signer(card_id), "jwk": self.holder_jwk}
        kid = f"urn:eduledger:card:{signer['card_id']}#{card_thumbprint(self._jwk).hex()}"
        return sign_detached(document_manifest(document, name=name, media_type=media_type), signer,
                             kid=kid, key=self._key)

    def sign_pdf(self, card_id: str, document: bytes, certificate_pem: str,
                 chain_pem: Sequence[str]) -> bytes:
        """`document` with a PDF signature by the card's key and a visible stamp, under the
        certificate the card's school issued to this key."""
        import time

        from cryptography import x509

        from ledger.signatures.pdf import sign_pdf, stamp_lines
        from ledger.signatures.types import ROLE_NAMES

        signer = self.card_signer(card_id)
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
            chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in chain_pem]
        except ValueError:
            raise WalletError("the signing certificate is not a PEM certificate",
                              code="bad_response") from None
        if jose.ed25519_jwk(certificate.public_key().public_bytes_raw()) != self._jwk:  # type: ignore[union-attr]
            raise WalletError("the signing certificate is for another key", code="card_key_mismatch")
        school = next((a.value for a in certificate.subject if a.oid.dotted_string == "2.5.4.10"), "")
        zh, en = ROLE_NAMES.get(signer["kind"], (signer["kind"], signer["kind"]))
        lines, lines_en = stamp_lines(seal=False, signer_name=str(school), role_zh=zh, role_en=en,
                                      detail=f"{signer['card_id'][:10]}…", when=int(time.time()))
        return sign_pdf(document, private_key=self._key, certificate=certificate, chain=chain,
                        stamp_lines=lines, stamp_lines_en=lines_en, reason="电子签名 Electronic signature")

    # -- shares

    def _share_path(self, share_id: str) -> Path:
        return self.directory / SHARES_DIR / f"{_id_hash(share_id)}.json"

    def record_share(
        self,
        credential_id: str,
        share: Mapping[str, Any],
        *,
        api: str,
        claims: Sequence[str] = (),
    ) -> ShareRecord:
        """Remember a share the API made (its response to POST /v1/shares), with its withdraw token."""
        try:
            record = ShareRecord(
                share_id=_check_id(share["share_id"], "share id"),
                credential_id=credential_id,
                url=str(share["url"]),
                expires_at=str(share["expires_at"]),
                api=api,
                claims=tuple(claims),
                created_at=_now(),
                withdraw_token=str(share["withdraw_token"]),
                qr_png_url=str(share.get("qr_png_url") or ""),
                qr_svg_url=str(share.get("qr_svg_url") or ""),
            )
        except (KeyError, TypeError) as exc:
            raise WalletError(f"the share response lacks {exc}", code="bad_response") from None
        path = self._share_path(record.share_id)
        _save(path, record.to_json())
        return record

    def list_shares(self) -> list[ShareRecord]:
        """The shares made from this wallet and not forgotten, oldest first."""
        records = _load_all(self.directory / SHARES_DIR, ShareRecord, "share file")
        return sorted(records, key=lambda r: (r.created_at, r.share_id))

    def get_share(self, share_id: str) -> ShareRecord:
        """A share by id, or by a prefix of its id that matches only one."""
        found: ShareRecord = _find(self.list_shares(), share_id, "share_id", "share", "unknown_share")
        return found

    def forget_share(self, share_id: str) -> ShareRecord:
        """Drop a share (withdrawn or expired) and its withdraw token from the wallet."""
        record = self.get_share(share_id)
        path = self._share_path(record.share_id)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WalletError(f"cannot remove {path}: {exc.strerror}", code="wallet_io") from None
        fsync_dir(path.parent)
        return record

