"""Integrity audit reports: canonical JSON and CSV; signed and anchored.

The report is a JSON object (see ``IntegrityAudit`` for its fields). What is signed and
anchored is its canonical form (``ledger.canonical.canonical_json``, RFC 8785 style), so a
report read back from a file, re-indented or with its keys reordered, still verifies:

* signature: Ed25519 by the auditor organisation's credential-signing key over the
  canonical bytes (``sign_report``);
* anchor: the report hash, keccak256 of the canonical bytes, is the single leaf of a batch
  of kind ``audit_report`` anchored by the auditor organisation (``anchor_report``). A
  one-leaf tree's root is ``keccak256(0x00 || hash)``, so anyone holding the report can
  find the root in the registry.

``verify_report`` checks both, and that the key that signed belongs to the member that
anchored, which must hold the auditor role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput
from ledger.merkle import MerkleTree, keccak256
from ledger.spreadsheet import csv_text

if TYPE_CHECKING:
    from ledger.anchoring import AnchoringAPI
    from ledger.anchoring.models import AnchorBatch
    from ledger.contracts.bindings import AnchorRegistryContract
    from ledger.keys import OrganisationKeys

__all__ = [
    "FINDING_KINDS",
    "REPORT_TYPE",
    "ReportVerification",
    "anchor_report",
    "canonical_report",
    "report_hash",
    "report_root",
    "sign_report",
    "to_csv",
    "verify_report",
]

REPORT_TYPE = "eduledger-integrity-audit-report"
REPORT_KIND = "audit_report"

# kind -> (中文, English, what it means)
FINDING_KINDS: dict[str, tuple[str, str, str]] = {
    "offchain_data_changed": (
        "链下数据被改动", "Off-chain data changed",
        "A stored row no longer matches what was anchored: a credential whose recomputed "
        "leaf, signature or disclosures disagree with its anchored leaf, a batch whose rebuilt "
        "Merkle root differs, or an index row that differs from its chain event."),
    "item_missing": (
        "数据缺失", "Item missing",
        "An anchored leaf has no stored item behind it (the credential row is gone)."),
    "batch_not_anchored": (
        "批次未上链", "Batch not anchored",
        "A stored batch root is not in the registry, or was anchored by another member, "
        "with another leaf count or of another kind."),
    "status_differs": (
        "状态不一致", "Status differs",
        "The status stored with a credential differs from its status on chain."),
    "event_missing_from_index": (
        "事件索引缺失", "Event missing from the index",
        "A registry event on chain has no row in the event index (up to the block the index "
        "had reached)."),
}


# --- canonical form, hash, signature, anchor ---------------------------------------------


def canonical_report(report: Mapping[str, Any] | str | bytes) -> bytes:
    """The canonical bytes of a report given as a dict or as JSON text (any formatting)."""
    if isinstance(report, str | bytes | bytearray):
        try:
            report = json.loads(report)
        except ValueError:
            raise InvalidInput("the report is not valid JSON", code="malformed_report") from None
    if not isinstance(report, Mapping):
        raise InvalidInput("a report is a JSON object", code="malformed_report")
    return canonical_json(dict(report))


def report_hash(report_json: bytes) -> bytes:
    """keccak256 of the canonical report bytes: the leaf that is anchored."""
    return keccak256(report_json)


def report_root(report_json: bytes) -> bytes:
    """The root of the one-leaf batch that anchors the report."""
    return MerkleTree([report_hash(report_json)]).root


def sign_report(report_json: bytes, auditor_keys: OrganisationKeys) -> bytes:
    """Ed25519 signature of the canonical report bytes by the auditor's signing key."""
    return auditor_keys.sign_credential_bytes(bytes(report_json))


def anchor_report(anchoring: AnchoringAPI, auditor_org: str, report_json: bytes, *,
                  idempotency_key: str | None = None) -> AnchorBatch:
    """Anchor the report hash as a one-leaf batch of kind audit_report (exactly once per key)."""
    return anchoring.anchor(auditor_org, REPORT_KIND, [report_hash(report_json)],
                            idempotency_key=idempotency_key)


@dataclass
class ReportVerification:
    report_hash: str
    root: str
    failures: list[str] = field(default_factory=list)
    member_id: int | None = None
    anchored_block: int | None = None

    @property
    def valid(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "failures": list(self.failures),
                "report_hash": self.report_hash, "root": self.root,
                "member_id": self.member_id, "anchored_block": self.anchored_block}


def _public_key(value: Ed25519PublicKey | bytes | str) -> tuple[Ed25519PublicKey, bytes]:
    if isinstance(value, Ed25519PublicKey):
        return value, value.public_bytes_raw()
    raw = value
    if isinstance(value, str):
        text = value[2:] if value.startswith("0x") else value
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidInput("the auditor public key is not hex", code="bad_key") from None
    if not isinstance(raw, bytes | bytearray) or len(raw) != 32:
        raise InvalidInput("the auditor public key must be 32 bytes (Ed25519)", code="bad_key")
    return Ed25519PublicKey.from_public_bytes(bytes(raw)), bytes(raw)


def _signature(value: bytes | str) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value.startswith("0x") else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise InvalidInput("the signature is not hex", code="bad_signature") from None
    return bytes(value)


def verify_report(report_json: Mapping[str, Any] | str | bytes, signature: bytes | str,
                  auditor_public_key: Ed25519PublicKey | bytes | str,
                  registry: AnchorRegistryContract) -> ReportVerification:
    """Check a report against the chain alone: the auditor's signature over its canonical
    JSON, that its hash is anchored as an audit report, and that the signing key belongs
    to the member that anchored it, an auditor.

    Failures: ``signature_invalid``, ``not_anchored``, ``wrong_kind``,
    ``anchored_by_non_auditor``, ``key_not_of_anchoring_member``.
    """
    from ledger.contracts.bindings import AnchorKind, ConsortiumContract, Role

    data = canonical_report(report_json)
    leaf, root = report_hash(data), report_root(data)
    result = ReportVerification("0x" + leaf.hex(), "0x" + root.hex())
    key, key_bytes = _public_key(auditor_public_key)
    try:
        key.verify(_signature(signature), data)
    except InvalidSignature:
        result.failures.append("signature_invalid")
    info = registry.root_info(root)
    if not info.anchored:
        result.failures.append("not_anchored")
        return result
    result.member_id, result.anchored_block = info.member_id, info.block_number
    if info.kind is not AnchorKind.AUDIT_REPORT:
        result.failures.append("wrong_kind")
    consortium = ConsortiumContract.at(registry.client, registry.consortium_address())
    if consortium.member(info.member_id).role is not Role.AUDITOR:
        result.failures.append("anchored_by_non_auditor")
    key_info = consortium.key_info(key_bytes)
    if key_info.member_id != info.member_id or not key_info.valid_at(info.block_number):
        result.failures.append("key_not_of_anchoring_member")
    return result


# --- CSV ------------------------------------------------------------------------------


def to_csv(report: Mapping[str, Any]) -> str:
    """One line per finding (after a header): seq, kind, 中文, item, details (JSON); no cell
    is a formula when a spreadsheet opens it (ledger.spreadsheet)."""
    rows: list[list[object]] = [["seq", "kind", "kind_zh", "item", "details"]]
    for finding in report.get("findings", []):
        kind = str(finding["kind"])
        rows.append([finding["seq"], kind, FINDING_KINDS.get(kind, ("",))[0], finding["item"],
                     canonical_json(finding.get("details", {})).decode("utf-8")])
    return csv_text(rows)
