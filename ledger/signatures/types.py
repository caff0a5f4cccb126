"""What a signature verification answers: per signature, who signed (an organisation's seal
or a card holder), in which role, for which school, when (the anchor's block and time, in
Beijing time), whether the signer was valid then and what became of them since, and every
check with a named reason when it fails.

Reasons (``failures``):

- ``malformed_signature``: not a signature this project reads;
- ``document_altered``: the file is not the one signed (its digest differs, or a PDF was
  changed after the signature by more than signatures and form fields);
- ``signature_invalid``: the signature does not verify with the signer's key;
- ``signer_unknown``: the certificate or signature names no member or card of this network;
- ``not_anchored`` / ``anchor_pending``: no time evidence on chain (none was ever recorded /
  it is recorded and waits for the chain);
- ``card_not_active_at_signing``: the card was suspended, revoked, ended or outside its
  validity window when the signature was anchored;
- ``holder_key_not_current``: the key that signed was not the card's key then (rotated);
- ``key_not_valid_at_signing``: the organisation's key was not valid then (retired);
- ``member_not_active_at_signing``: the organisation was suspended or removed then, or its
  role does not seal documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ledger.consortium.names import split_name
from ledger.credentials.types import CHINA_TZ

__all__ = ["ROLE_NAMES", "SignatureFormat", "SignatureVerdict", "beijing", "split_name"]


class SignatureFormat(StrEnum):
    PDF = "pdf"  # a PAdES signature embedded in the PDF, with a visible stamp
    JWS = "jws"  # a detached compact JWS (EdDSA)
    SM2 = "sm2"  # a detached seal signed with SM2 over SM3


# Role names shown to people: (Chinese, English).
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "bureau": ("教育局", "education bureau"),
    "school": ("学校", "school"),
    "partner": ("合作机构", "partner organisation"),
    "auditor": ("督导", "auditor"),
    "teacher": ("教师", "teacher"),
    "student": ("学生", "student"),
    "graduate": ("毕业生", "graduate"),
}


def beijing(moment: datetime | int) -> str:
    """RFC 3339 in Beijing time (+08:00)."""
    when = datetime.fromtimestamp(moment, UTC) if isinstance(moment, int) else moment
    return when.astimezone(CHINA_TZ).isoformat()


@dataclass
class SignatureVerdict:
    format: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    signer: dict[str, Any] | None = None
    document: dict[str, Any] = field(default_factory=dict)
    timestamp: dict[str, Any] = field(default_factory=lambda: {"status": "absent"})
    at_signing: dict[str, Any] | None = None
    now: dict[str, Any] | None = None
    field_name: str | None = None

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(c["outcome"] != "failed" for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [c["code"] for c in self.checks if c["outcome"] == "failed"]

    def check(self, name: str, passed: bool, code: str = "ok", **details: Any) -> bool:
        self.checks.append(
            {
                "check": name,
                "outcome": "passed" if passed else "failed",
                "code": "ok" if passed else code,
                **({"details": details} if details else {}),
            }
        )
        return passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "failures": self.failures,
            "format": self.format,
            "field": self.field_name,
            "signer": self.signer,
            "document": self.document,
            "timestamp": self.timestamp,
            "at_signing": self.at_signing,
            "now": self.now,
            "checks": self.checks,
        }
