"""Personal numbers and personal data, kept so that only this node can read or match them.

**Person keys.** A national id number (身份证号) or a national student number (全国学籍号, "G"
or "L" and the id number) has too little entropy for a salted hash: anyone holding the hash
and the salt tries every birth date and sequence number in minutes. So a person is matched
through a keyed hash: ``person_key = HMAC-SHA256(secret, "eduledger person/1" 0 kind 0
number)``, under a secret that only the bureau's node holds (``NodeSecrets``). The same
person gets the same key at every school that asks the bureau's node, no database or
chain holds a guessable form of the number, and without the secret the keys are random.

**Personal data.** Each person's fields (numbers, name, photo) are encrypted with AES-256-GCM
under a data key of their own; the data key is stored wrapped under the node's master key.
Erasing a person's off-chain data is deleting their wrapped key: what is left (ciphertexts
here, salted commitments on chain) no longer links to them. The associated data binds each
ciphertext to what it is (its table, field and row), so a ciphertext moved elsewhere fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import ConfigError, InvalidInput, KeystoreError
from ledger.fileio import atomic_write
from ledger.keys.sealing import MalformedSeal, WrongPassphrase, seal, unseal

__all__ = ["NUMBER_KINDS", "NodeSecrets", "PersonKeyer", "PersonalCipher", "normalise_number"]

_NUMBER_RE = re.compile(r"[A-Z0-9-]{1,64}")
SECRETS_FILE = "identity-secrets.json"
FORMAT = "eduledger-identity-secrets"
# The kinds of personal number a person key can be made of.
NUMBER_KINDS = ("national_id", "student_number", "staff_number")


def normalise_number(number: str) -> str:
    """A personal number as it is matched: NFKC (full-width digits become ASCII), no spaces,
    upper case (the check character X); 1 to 64 letters A-Z, digits and hyphens."""
    if not isinstance(number, str):
        raise InvalidInput("a personal number is text", code="bad_personal_number")
    text = "".join(unicodedata.normalize("NFKC", number).split()).upper()
    if not _NUMBER_RE.fullmatch(text):
        raise InvalidInput("a personal number is 1 to 64 letters, digits and hyphens",
                           code="bad_personal_number")
    return text


class PersonKeyer(Protocol):
    """Turns a personal number into the person key it is matched by (the bureau's node
    holds the secret; other nodes ask it)."""

    def person_key(self, kind: str, number: str) -> str: ...


@dataclass(frozen=True, repr=False)
class _Secrets:
    hmac_key: bytes
    master_key: bytes


class NodeSecrets:
    """The node's identity secrets: the person-key HMAC secret and the master key that wraps
    every person's data key. Kept in ``<data dir>/identity-secrets.json`` (mode 0600), sealed
    under the keystore passphrase like the organisations' keys; created on first use."""

    def __init__(self, data_dir: Path, passphrase: str, *, scrypt_n: int) -> None:
        self.path = data_dir / SECRETS_FILE
        self._secrets = self._load_or_create(passphrase, scrypt_n)

    def _load_or_create(self, passphrase: str, scrypt_n: int) -> _Secrets:
        aad = FORMAT.encode()
        if not self.path.exists():
            fresh = _Secrets(secrets.token_bytes(32), secrets.token_bytes(32))
            doc = {"format": FORMAT, "version": 1,
                   "sealed": seal(fresh.hmac_key + fresh.master_key, passphrase, aad, scrypt_n=scrypt_n)}
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
            raise ConfigError(f"{self.path} is not an eduledger identity secrets file",
                              code="secrets_corrupt") from None
        if len(raw) != 64:
            raise ConfigError(f"{self.path} is not an eduledger identity secrets file",
                              code="secrets_corrupt")
        return _Secrets(raw[:32], raw[32:])

    def person_key(self, kind: str, number: str) -> str:
        if kind not in NUMBER_KINDS:
            raise InvalidInput(f"unknown kind of personal number {kind!r}", code="bad_personal_number")
        message = b"\x00".join((b"eduledger person/1", kind.encode(), normalise_number(number).encode()))
        return hmac.new(self._secrets.hmac_key, message, hashlib.sha256).hexdigest()

    def cipher(self) -> PersonalCipher:
        return PersonalCipher(self._secrets.master_key)

    def __repr__(self) -> str:
        return f"NodeSecrets({str(self.path)!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("NodeSecrets cannot be pickled: it holds secrets")


class PersonalCipher:
    """AES-256-GCM over personal fields, under per-person data keys wrapped by the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._master = AESGCM(master_key)

    def new_wrapped_key(self, person: str) -> bytes:
        """A new data key for `person` (their person key or opaque id), wrapped."""
        nonce = secrets.token_bytes(12)
        return nonce + self._master.encrypt(nonce, secrets.token_bytes(32), b"data key\x00" + person.encode())

    def _data_key(self, wrapped: bytes, person: str) -> AESGCM:
        try:
            return AESGCM(self._master.decrypt(wrapped[:12], wrapped[12:], b"data key\x00" + person.encode()))
        except (InvalidTag, ValueError):
            raise ConfigError("a person's data key does not open (altered, or not this node's)",
                              code="personal_data_unreadable") from None

    def encrypt(self, wrapped: bytes, person: str, what: str, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._data_key(wrapped, person).encrypt(nonce, plaintext, what.encode())

    def decrypt(self, wrapped: bytes, person: str, what: str, ciphertext: bytes) -> bytes:
        try:
            return self._data_key(wrapped, person).decrypt(ciphertext[:12], ciphertext[12:], what.encode())
        except (InvalidTag, ValueError):
            raise ConfigError(f"personal data ({what}) does not decrypt (altered or moved)",
                              code="personal_data_unreadable") from None

    def seal_transient(self, subject: str, plaintext: bytes) -> bytes:
        """Personal data held only for a while (a photo a wallet sent with its answer), not yet
        tied to a known person: sealed under a fresh data key of its own, kept beside it
        (wrapped), so that clearing the value erases it. `subject` names the row it belongs to."""
        wrapped = self.new_wrapped_key(subject)
        return wrapped + self.encrypt(wrapped, subject, "transient", plaintext)

    def open_transient(self, subject: str, sealed: bytes) -> bytes:
        return self.decrypt(sealed[:_WRAPPED], subject, "transient", sealed[_WRAPPED:])


_WRAPPED = 12 + 32 + 16  # nonce, data key, tag: the length of a wrapped data key
