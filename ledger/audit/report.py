"""Integrity audit reports: canonical JSON, CSV, a bilingual HTML page; signed and anchored.

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

import html
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
    "to_html",
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


# --- HTML -----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:2rem;
color:#1d2530;max-width:72rem}
h1{font-size:1.5rem;margin-bottom:.2rem}.en{color:#5b6675;font-weight:normal}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #d5dbe3;padding:.35rem .55rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f1f4f8}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem;
word-break:break-all}.ok{color:#136f2d;font-weight:bold}.bad{color:#a61b1b;font-weight:bold}
details pre{white-space:pre-wrap;margin:.3rem 0}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _row(zh: str, en: str, value: str) -> str:
    return f"<tr><th>{_e(zh)} <span class=en>{_e(en)}</span></th><td>{value}</td></tr>"


def to_html(report: Mapping[str, Any], *, report_hash_hex: str | None = None,
            signature_hex: str | None = None, anchor: Mapping[str, Any] | None = None) -> str:
    """A self-contained bilingual (中文 / English) page of the report."""
    chain = report.get("chain", {}) or {}
    scope = report.get("scope", {}) or {}
    summary = report.get("summary", {}) or {}
    auditor = report.get("auditor") or {}
    findings = list(report.get("findings", []))
    total = int(summary.get("findings", len(findings)))
    verdict = ("<span class=ok>未发现问题 No findings</span>" if total == 0
               else f"<span class=bad>发现 {total} 项问题 {total} finding(s)</span>")
    parts = [
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>完整性审计报告 Integrity audit report {_e(report.get('run_id'))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>完整性审计报告 <span class=en>Integrity audit report</span></h1>",
        f"<p>{verdict}</p>",
        "<table>",
        _row("审计编号", "Run", f"<code>{_e(report.get('run_id'))}</code>"),
        _row("发起人", "Requested by", _e(report.get("requested_by"))),
        _row("审计机构", "Auditor", _e(auditor.get("org_id") or "—")),
        _row("开始时间", "Started", _e(report.get("started_at"))),
        _row("完成时间", "Finished", _e(report.get("finished_at"))),
        _row("链", "Chain", f"{_e(chain.get('chain_id'))} · <code>{_e(chain.get('anchor_registry'))}</code>"),
        _row("区块范围", "Blocks read", f"{_e(chain.get('from_block'))} – {_e(chain.get('head_block'))}"
             f" (索引至 indexed to {_e(chain.get('indexed_to_block'))})"),
        _row("批次", "Batches", _e(scope.get("batches"))),
        _row("已锚定叶子", "Anchored leaves", _e(scope.get("anchored_leaves"))),
        _row("凭证", "Credentials", _e(scope.get("credentials"))),
        _row("链上事件", "Chain events", _e(scope.get("chain_events"))),
    ]
    if report_hash_hex:
        parts.append(_row("报告哈希", "Report hash (keccak256)", f"<code>{_e(report_hash_hex)}</code>"))
    if signature_hex:
        parts.append(_row("签名", "Signature (Ed25519)", f"<code>{_e(signature_hex)}</code>"))
    if auditor.get("public_key"):
        parts.append(_row("签名公钥", "Signing key", f"<code>{_e(auditor['public_key'])}</code>"))
    if anchor:
        parts.append(_row("上链存证", "Anchored", f"区块 block {_e(anchor.get('block_number'))} · "
                          f"<code>{_e(anchor.get('tx_hash'))}</code> · root "
                          f"<code>{_e(anchor.get('root'))}</code>"))
    parts.append("</table>")

    by_kind = summary.get("by_kind", {}) or {}
    parts.append("<h2>按类别 <span class=en>By kind</span></h2><table>"
                 "<tr><th>类别 Kind</th><th>数量 Count</th><th>含义 Meaning</th></tr>")
    for kind, (zh, en, meaning) in FINDING_KINDS.items():
        parts.append(f"<tr><td>{_e(zh)}<br><span class=en>{_e(en)}</span></td>"
                     f"<td>{_e(by_kind.get(kind, 0))}</td><td>{_e(meaning)}</td></tr>")
    parts.append("</table>")

    parts.append("<h2>发现 <span class=en>Findings</span></h2>")
    if not findings:
        parts.append("<p>无 <span class=en>None</span></p>")
    else:
        parts.append("<table><tr><th>#</th><th>类别 Kind</th><th>对象 Item</th>"
                     "<th>详情 Details</th></tr>")
        for finding in findings:
            kind = str(finding.get("kind"))
            zh, en, _ = FINDING_KINDS.get(kind, (kind, kind, ""))
            details = finding.get("details", {}) or {}
            reasons = details.get("reasons") if isinstance(details, Mapping) else None
            summary_text = ", ".join(map(str, reasons)) if isinstance(reasons, list) else "…"
            pretty = json.dumps(details, ensure_ascii=False, indent=2, sort_keys=True)
            parts.append(
                f"<tr><td>{_e(finding.get('seq'))}</td><td>{_e(zh)}<br><span class=en>{_e(en)}"
                f"</span></td><td class=mono>{_e(finding.get('item'))}</td><td><details><summary>"
                f"{_e(summary_text)}</summary><pre class=mono>{_e(pretty)}</pre></details></td></tr>")
        parts.append("</table>")
    parts.append("<p class=en>This page is a rendering of the signed JSON report; verify the JSON "
                 "(signature and on-chain anchor), not this page. 本页为已签名 JSON 报告的展示，"
                 "请以 JSON 报告的签名与链上存证为准。</p></body></html>")
    return "\n".join(parts)
