"""The HTML pages, in Chinese and English, rendered from the Jinja2 templates in
``api/templates/``: the verification page an employer's phone opens from a QR code, the
error page, the integrity audit report, and the proctor's check-in page of an exam session.

Each function here only prepares plain data (texts, label lookups, formatting); the
templates lay it out. Autoescaping is on and undefined names are errors, so every value
reaches the page escaped, and a template asking for something not prepared fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ledger.audit.integrity import AuditReport
from ledger.audit.report import FINDING_KINDS
from ledger.credentials.types import CLAIM_LABELS, CredentialType

__all__ = ["CHECK_LABELS", "OUTCOME", "audit_report_page", "environment", "error_page", "exam_proctor_page",
           "share_page"]

environment = Environment(
    loader=PackageLoader("api", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)

CHECK_LABELS = {
    "format": ("格式", "Format"), "issuer": ("签发机构", "Issuer"),
    "signature": ("签名", "Signature"), "disclosures": ("披露内容", "Disclosed claims"),
    "anchor": ("区块链存证", "Ledger anchor"), "membership": ("机构资格", "Issuer membership"),
    "signing_key": ("签名密钥", "Signing key"), "status": ("状态", "Status"),
    "validity": ("有效期", "Validity"), "holder_binding": ("持有人确认", "Holder binding"),
    "share": ("分享链接", "Share link"),
}
OUTCOME = {"passed": ("✔", "通过 Passed"), "failed": ("✘", "未通过 Failed"),
           "skipped": ("–", "未检查 Not checked")}


def _render(template: str, **data: Any) -> str:
    return environment.get_template(template).render(**data)


def _text(value: Any) -> str:
    """A value as the page shows it: nothing for None."""
    return "" if value is None else str(value)


# --- the share page ----------------------------------------------------------------------


def _label(path: str) -> str:
    parts = [p for p in path.split(".") if p != "credentialSubject"]
    zh, en = _label_of(".".join(p for p in parts if not p.isdigit()))
    if parts and parts[-1].isdigit():
        return f"{zh} {en} #{int(parts[-1]) + 1}"
    return f"{zh} {en}" if zh != en else en


def _label_of(key: str) -> tuple[str, str]:
    return CLAIM_LABELS.get(key) or CLAIM_LABELS.get(key.split(".")[-1]) or (key, key)


def _value(value: Any, context: str = "") -> str:
    """A claim value as text; the fields of an object are labelled in its context
    (a course's "name" is the course's name, not the credential's)."""
    if isinstance(value, dict):
        fields = []
        for key, inner in value.items():
            zh, en = _label_of(f"{context}.{key}" if context else key)
            fields.append(f"{zh} {en}: {_value(inner, f'{context}.{key}' if context else key)}")
        return " · ".join(fields)
    if isinstance(value, list):
        return " | ".join(_value(v, context) for v in value)
    return str(value)


def _claims(disclosed: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per disclosed claim; a container whose parts are disclosed one by one (the
    transcript's course list) is shown through those parts, not twice."""
    paths = [item["path"] for item in disclosed]
    rows = []
    for item in disclosed:
        path = item["path"]
        if any(other.startswith(path + ".") for other in paths if other != path) and \
                isinstance(item["value"], list | dict) and not _is_element(path):
            continue
        if _is_element(path.rsplit(".", 1)[0]):
            continue  # a field of a listed element: shown inside the element's row
        context = ".".join(p for p in path.split(".")[1:] if not p.isdigit())
        rows.append({"label": _label(path), "value": _value(item["value"], context)})
    return rows


def _is_element(path: str) -> bool:
    return path.rsplit(".", 1)[-1].isdigit()


def _check(check: Mapping[str, Any]) -> dict[str, str]:
    outcome = str(check["outcome"])
    mark, word = OUTCOME.get(outcome, ("?", outcome))
    zh, en = CHECK_LABELS.get(check["check"], (check["check"], check["check"]))
    return {"outcome": outcome, "mark": mark, "word": word, "zh": zh, "en": en,
            "message_zh": _text(check.get("message_zh")), "message_en": _text(check.get("message"))}


def share_page(result: dict[str, Any]) -> str:
    """A verification result (``Verification.to_dict()`` and the share) as the share page."""
    ctype = result.get("credential_type")
    kind = CredentialType(ctype) if ctype in {t.value for t in CredentialType} else None
    issuer = result.get("issuer") or {}
    checks = result.get("checks", [])
    return _render(
        "share.html",
        valid=bool(result.get("valid")),
        reasons=[{"zh": _text(c["message_zh"]), "en": _text(c["message"])}
                 for c in checks if c["outcome"] == "failed"],
        credential_type=f"{kind.label_zh} {kind.label_en}" if kind else "",
        issuer_name=str(issuer.get("name") or ""),
        issuer_id=str(issuer.get("id") or ""),
        issued_at=str(result.get("issued_at") or ""),
        anchored_at=str(result.get("anchored_at") or ""),
        claims=_claims(result.get("disclosed") or []),
        checks=[_check(c) for c in checks],
    )


# --- the error page ----------------------------------------------------------------------


def error_page(code: str, message_zh: str, message_en: str) -> str:
    return _render("error.html", code=code, message_zh=message_zh, message_en=message_en)


# --- the audit report ------------------------------------------------------------------


def _finding_summary(details: Any) -> str:
    """The line a finding shows folded: its reasons, when it lists them."""
    reasons = details.get("reasons") if isinstance(details, Mapping) else None
    return ", ".join(map(str, reasons)) if isinstance(reasons, list) else "…"


def _finding(finding: Mapping[str, Any]) -> dict[str, str]:
    kind = str(finding.get("kind"))
    zh, en, _ = FINDING_KINDS.get(kind, (kind, kind, ""))
    details = finding.get("details", {}) or {}
    return {"seq": _text(finding.get("seq")), "zh": zh, "en": en, "item": _text(finding.get("item")),
            "summary": _finding_summary(details),
            "details": json.dumps(details, ensure_ascii=False, indent=2, sort_keys=True)}


def audit_report_page(report: AuditReport) -> str:
    """A finished audit run's report as a readable, self-contained page: what the signed
    JSON report holds, with its hash, signature and anchor."""
    data = report.report
    chain = data.get("chain", {}) or {}
    scope = data.get("scope", {}) or {}
    summary = data.get("summary", {}) or {}
    auditor = data.get("auditor") or {}
    findings = list(data.get("findings", []))
    by_kind = summary.get("by_kind", {}) or {}
    anchor = report.anchor
    return _render(
        "audit_report.html",
        total=int(summary.get("findings", len(findings))),
        run_id=_text(data.get("run_id")),
        requested_by=_text(data.get("requested_by")),
        auditor_org=str(auditor.get("org_id") or ""),
        started_at=_text(data.get("started_at")),
        finished_at=_text(data.get("finished_at")),
        chain={key: _text(chain.get(key))
               for key in ("chain_id", "anchor_registry", "from_block", "head_block", "indexed_to_block")},
        scope={key: _text(scope.get(key))
               for key in ("batches", "anchored_leaves", "credentials", "chain_events")},
        report_hash=_text(report.report_hash),
        signature=_text(report.signature),
        public_key=_text(auditor.get("public_key")),
        anchor={key: _text(anchor.get(key)) for key in ("block_number", "tx_hash", "root")}
        if anchor else None,
        kinds=[{"zh": zh, "en": en, "meaning": meaning, "count": _text(by_kind.get(kind, 0))}
               for kind, (zh, en, meaning) in FINDING_KINDS.items()],
        findings=[_finding(f) for f in findings],
    )


# --- the proctor's check-in page ----------------------------------------------------------


def exam_proctor_page(*, exam_id: str, script_nonce: str) -> str:
    """The page a proctor's link opens (GET /exams/{id}/proctor#token=...). It holds nothing
    of the session: its script reads the token from the fragment (which no server ever
    sees), asks the API for the session with it (X-Proctor-Token), shows each check-in's
    QR code, waits for the wallet's answer and shows the verdict, the name and the photo;
    times in Beijing time."""
    return _render("exam_proctor.html", exam_id=exam_id, script_nonce=script_nonce)
