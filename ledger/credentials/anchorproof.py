"""What ties a credential to the chain: its leaf, and the proof that travels with it.

The leaf is keccak256 of the canonical JSON of the issuer-signed payload *without* `cnf`.
It does not change when the holder hides claims (the payload holds only digests of the
salted disclosures) nor when the issuer binds the credential to the holder's key at
redemption (which adds `cnf` and re-signs the same payload). It is unguessable: every
claim enters it only through a salted digest.

A credential file is a JSON envelope {"format", "sd_jwt", "anchor"}: the proof needs no
signature of its own, because a verifier checks it against the chain. Every other file a
surface of eduledger hands out is read as one too (``read_credential``): the wallet's own
stored credential, the answer of a redemption and a credential's record with its content.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.anchoring.proof import AnchorProof, refuse_unknown_fields
from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, TooLarge
from ledger.merkle import keccak256

FILE_FORMAT = "eduledger-credential/1"
# The holder wallet's own file of a credential (wallet.holder.StoredCredential).
HOLDER_CREDENTIAL_FORMAT = "eduledger-holder-credential"
MAX_FILE_BYTES = 512 * 1024
_ENVELOPE_FIELDS = frozenset({"format", "sd_jwt", "anchor"})
_HOLDER_FIELDS = frozenset({"format", "version", "credential_id", "type", "issuer_name", "issuer",
                            "received_at", "compact", "anchor"})
# Answers of the API that carry a credential, read as they are saved: POST /v1/claims/redeem
# and GET /v1/credentials/{id}?content=true. Their other fields are shown, never trusted:
# what verification says comes from the SD-JWT and the chain alone.
_REDEEMED_FIELDS = frozenset({"credential_id", "type", "sd_jwt", "anchor", "issuer"})
_RECORD_FIELDS = frozenset({"credential_id", "type", "issuer_org", "batch_id", "leaf", "status",
                            "status_reason", "status_note", "status_changed_at", "valid_from",
                            "valid_until", "supersedes", "superseded_by", "created_at", "sd_jwt",
                            "anchor"})
_UNFORMATTED_FIELDS = _ENVELOPE_FIELDS | _REDEEMED_FIELDS | _RECORD_FIELDS


def credential_leaf(payload: dict[str, Any]) -> bytes:
    return keccak256(canonical_json({k: v for k, v in payload.items() if k != "cnf"}))


def envelope(sd_jwt: str, anchor: AnchorProof | None) -> dict[str, Any]:
    return {"format": FILE_FORMAT, "sd_jwt": sd_jwt,
            "anchor": anchor.to_dict() if anchor else None}


def read_credential(data: str | bytes | dict[str, Any]) -> tuple[str, AnchorProof | None]:
    """A credential file or a bare compact SD-JWT → (sd_jwt, anchor proof).

    Read as credential files: the envelope (``eduledger-credential/1``, also without its
    ``format``); the wallet's stored credential (``eduledger-holder-credential``, the SD-JWT
    in ``compact``); and the JSON answers of ``POST /v1/claims/redeem`` and ``GET
    /v1/credentials/{id}?content=true``, whose ``sd_jwt`` and ``anchor`` are those of an
    envelope. Anything else (an unknown format or field) is ``malformed``."""
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
    if not isinstance(data, dict):
        raise InvalidInput("a credential file holds an 'sd_jwt' string", code="malformed")
    form = data.get("format", FILE_FORMAT)
    if form == HOLDER_CREDENTIAL_FORMAT:
        if not isinstance(data.get("compact"), str) or data.get("version") != 1:
            raise InvalidInput("the wallet's credential file holds a 'compact' SD-JWT string, version 1",
                               code="malformed")
        refuse_unknown_fields(data, _HOLDER_FIELDS, "the wallet's credential file")
        sd_jwt = data["compact"]
    elif form == FILE_FORMAT:
        if not isinstance(data.get("sd_jwt"), str):
            raise InvalidInput("a credential file holds an 'sd_jwt' string", code="malformed")
        refuse_unknown_fields(data, _ENVELOPE_FIELDS if "format" in data else _UNFORMATTED_FIELDS,
                              "the credential file")
        sd_jwt = data["sd_jwt"]
    else:
        raise InvalidInput(f"the credential file's format is not {FILE_FORMAT} (nor "
                           f"{HOLDER_CREDENTIAL_FORMAT})", code="malformed")
    anchor = data.get("anchor")
    return sd_jwt.strip(), None if anchor is None else AnchorProof.from_dict(anchor)
