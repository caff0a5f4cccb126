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
import re
from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput
from ledger.merkle import keccak256

FILE_FORMAT = "eduledger-credential/1"
MAX_FILE_BYTES = 512 * 1024
_HEX32_ANY_CASE = re.compile(r"0x[0-9a-fA-F]{64}\Z")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_ANCHOR_FIELDS = frozenset({"leaf", "proof", "root", "chain_id", "contract", "tx_hash", "block_number"})
_REQUIRED_ANCHOR_FIELDS = ("leaf", "proof", "root", "chain_id", "contract")
_ENVELOPE_FIELDS = frozenset({"format", "sd_jwt", "anchor"})


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _refuse_unknown_fields(raw: dict[Any, Any], known: frozenset[str], what: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise InvalidInput(f"{what} has unknown fields: {', '.join(unknown)[:200]}", code="malformed")


def credential_leaf(payload: dict[str, Any]) -> bytes:
    return keccak256(canonical_json({k: v for k, v in payload.items() if k != "cnf"}))


@dataclass(frozen=True)
class AnchorRef:
    leaf: str
    proof: list[str]
    root: str
    chain_id: int
    contract: str
    tx_hash: str | None
    block_number: int | None

    def to_dict(self) -> dict[str, Any]:
        # = dataclasses.asdict, without its deep copy of every field (a hot path of verify)
        return {"leaf": self.leaf, "proof": list(self.proof), "root": self.root,
                "chain_id": self.chain_id, "contract": self.contract, "tx_hash": self.tx_hash,
                "block_number": self.block_number}

    @classmethod
    def from_dict(cls, raw: Any) -> AnchorRef:
        """The proof as :meth:`to_dict` wrote it; anything else (a missing, unknown or
        mistyped field) is ``malformed``."""
        if not isinstance(raw, dict):
            raise InvalidInput("the anchor proof must be an object", code="malformed")
        _refuse_unknown_fields(raw, _ANCHOR_FIELDS, "the anchor proof")
        missing = [k for k in _REQUIRED_ANCHOR_FIELDS if k not in raw]
        if missing:
            raise InvalidInput(f"the anchor proof is incomplete (missing {', '.join(missing)})",
                               code="malformed")
        proof, chain_id, block_number, tx_hash = (raw["proof"], raw["chain_id"], raw.get("block_number"),
                                                  raw.get("tx_hash"))
        if not isinstance(proof, list) or len(proof) > 64 or not all(
                isinstance(h, str) and _HEX32_ANY_CASE.match(h) for h in (raw["leaf"], raw["root"], *proof)):
            raise InvalidInput("the anchor proof holds malformed hashes", code="malformed")
        if not _is_count(chain_id) or chain_id == 0:
            raise InvalidInput("the anchor proof's chain_id is not a chain id", code="malformed")
        if not isinstance(raw["contract"], str) or not _ADDRESS.match(raw["contract"]):
            raise InvalidInput("the anchor proof names a malformed contract address", code="malformed")
        if tx_hash is not None and not (isinstance(tx_hash, str) and _HEX32_ANY_CASE.match(tx_hash)):
            raise InvalidInput("the anchor proof's tx_hash is not a transaction hash", code="malformed")
        if block_number is not None and not _is_count(block_number):
            raise InvalidInput("the anchor proof's block_number is not a block number", code="malformed")
        return cls(leaf=raw["leaf"].lower(), proof=[p.lower() for p in proof], root=raw["root"].lower(),
                   chain_id=chain_id, contract=raw["contract"],
                   tx_hash=None if tx_hash is None else tx_hash.lower(), block_number=block_number)

    def proof_bytes(self) -> list[bytes]:
        return [bytes.fromhex(p[2:]) for p in self.proof]


def envelope(sd_jwt: str, anchor: AnchorRef | None) -> dict[str, Any]:
    return {"format": FILE_FORMAT, "sd_jwt": sd_jwt,
            "anchor": anchor.to_dict() if anchor else None}


def read_credential(data: str | bytes | dict[str, Any]) -> tuple[str, AnchorRef | None]:
    """A credential envelope (JSON) or a bare compact SD-JWT → (sd_jwt, anchor proof)."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise InvalidInput("the credential is too large", code="too_large")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the credential is not UTF-8 text", code="malformed") from None
    if isinstance(data, str):
        text = data.strip()
        if len(text) > MAX_FILE_BYTES:
            raise InvalidInput("the credential is too large", code="too_large")
        if not text.startswith("{"):
            return text, None
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidInput("the credential file is not valid JSON", code="malformed") from None
    if not isinstance(data, dict) or not isinstance(data.get("sd_jwt"), str):
        raise InvalidInput("a credential file holds an 'sd_jwt' string", code="malformed")
    _refuse_unknown_fields(data, _ENVELOPE_FIELDS, "the credential file")
    if data.get("format", FILE_FORMAT) != FILE_FORMAT:
        raise InvalidInput(f"the credential file's format is not {FILE_FORMAT}", code="malformed")
    anchor = data.get("anchor")
    return data["sd_jwt"].strip(), None if anchor is None else AnchorRef.from_dict(anchor)
