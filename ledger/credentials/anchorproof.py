"""What ties a credential to the chain: its leaf, and the proof that travels with it.

The leaf is keccak256 of the canonical JSON of the issuer-signed payload *without* `cnf`.
It does not change when the holder hides claims (the payload holds only digests of the
salted disclosures) nor when the issuer binds the credential to the holder's key at
redemption (which adds `cnf` and re-signs the same payload). It is unguessable: every
claim enters it only through a salted digest.

A credential file is a JSON envelope {"format", "sd_jwt", "anchor"}: the proof needs no
signature of its own, because a verifier checks it against the chain.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.anchoring.proof import AnchorProof, refuse_unknown_fields
from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, TooLarge
from ledger.merkle import keccak256

FILE_FORMAT = "eduledger-credential/1"
MAX_FILE_BYTES = 512 * 1024
_ENVELOPE_FIELDS = frozenset({"format", "sd_jwt", "anchor"})


def credential_leaf(payload: dict[str, Any]) -> bytes:
    return keccak256(canonical_json({k: v for k, v in payload.items() if k != "cnf"}))


def envelope(sd_jwt: str, anchor: AnchorProof | None) -> dict[str, Any]:
    return {"format": FILE_FORMAT, "sd_jwt": sd_jwt,
            "anchor": anchor.to_dict() if anchor else None}


def read_credential(data: str | bytes | dict[str, Any]) -> tuple[str, AnchorProof | None]:
    """A credential envelope (JSON) or a bare compact SD-JWT → (sd_jwt, anchor proof)."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise TooLarge(f"the credential is larger than {MAX_FILE_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the credential is not UTF-8 text", code="malformed") from None
    if isinstance(data, str):
        text = data.strip()
        if len(text) > MAX_FILE_BYTES:
            raise TooLarge(f"the credential is larger than {MAX_FILE_BYTES} bytes")
        if not text.startswith("{"):
            return text, None
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidInput("the credential file is not valid JSON", code="malformed") from None
    if not isinstance(data, dict) or not isinstance(data.get("sd_jwt"), str):
        raise InvalidInput("a credential file holds an 'sd_jwt' string", code="malformed")
    refuse_unknown_fields(data, _ENVELOPE_FIELDS, "the credential file")
    if data.get("format", FILE_FORMAT) != FILE_FORMAT:
        raise InvalidInput(f"the credential file's format is not {FILE_FORMAT}", code="malformed")
    anchor = data.get("anchor")
    return data["sd_jwt"].strip(), None if anchor is None else AnchorProof.from_dict(anchor)
