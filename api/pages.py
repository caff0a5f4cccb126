"""The verification page an employer's phone opens from a QR code, in Chinese and English."""

from __future__ import annotations

from html import escape
from typing import Any

from ledger.audit.integrity import AuditReport
from ledger.audit.report import to_html
from ledger.credentials.types import CLAIM_LABELS, CredentialType

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


def _claim_rows(disclosed: list[dict[str, Any]]) -> list[str]:
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
        rows.append(f"<tr><th>{escape(_label(path))}</th>"
                    f"<td>{escape(_value(item['value'], context))}</td></tr>")
    return rows


def _is_element(path: str) -> bool:
    return path.rsplit(".", 1)[-1].isdigit()


def share_page(result: dict[str, Any]) -> str:
    valid = result.get("valid")
    ctype = result.get("credential_type")
    kind = CredentialType(ctype) if ctype in {t.value for t in CredentialType} else None
    title_zh, title_en = ("凭证有效", "Credential is valid") if valid else ("凭证无效", "Credential is NOT valid")
    issuer = result.get("issuer") or {}
    rows = _claim_rows(result.get("disclosed", []))
    checks = []
    for check in result.get("checks", []):
        mark, word = OUTCOME.get(check["outcome"], ("?", check["outcome"]))
        zh, en = CHECK_LABELS.get(check["check"], (check["check"], check["check"]))
        checks.append(
            f'<li class="{escape(check["outcome"])}"><span class="mark">{mark}</span> '
            f"<b>{escape(zh)} {escape(en)}</b> — {escape(word)}"
            + ("" if check["outcome"] == "passed" else
               f'<br><span lang="zh">{escape(check["message_zh"])}</span>'
               f'<br><span lang="en">{escape(check["message"])}</span>')
            + "</li>")
    kind_text = f"{kind.label_zh} {kind.label_en}" if kind else "—"
    failed = [c for c in result.get("checks", []) if c["outcome"] == "failed"]
    reasons = "".join(f'<p lang="zh">{escape(c["message_zh"])}</p><p lang="en">{escape(c["message"])}</p>'
                      for c in failed)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title_zh)} · {escape(title_en)} — eduledger</title>
<style>
body{{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;padding:1rem;max-width:44rem;margin:auto;color:#1a1a1a}}
.banner{{padding:1rem;border-radius:.5rem;color:#fff;background:{"#1e7d32" if valid else "#b71c1c"}}}
.banner h1{{margin:0;font-size:1.4rem}} .banner p{{margin:.3rem 0 0}} table{{border-collapse:collapse;width:100%;margin:1rem 0}}
th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}} th{{width:40%;font-weight:600}}
ul{{list-style:none;padding:0}} li{{padding:.5rem 0;border-bottom:1px solid #eee}}
li.failed{{color:#b71c1c}} li.skipped{{color:#777}} .mark{{font-weight:bold}} small{{color:#555}} .did{{word-break:break-all}}
</style></head><body>
<div class="banner"><h1>{escape(title_zh)} · {escape(title_en)}</h1>{reasons}</div>
<table>
<tr><th>凭证类型 Credential type</th><td>{escape(kind_text)}</td></tr>
<tr><th>签发机构 Issuer</th><td>{escape(str(issuer.get("name") or "—"))}<br><small class="did">{escape(str(issuer.get("id") or ""))}</small></td></tr>
<tr><th>签发时间 Issued</th><td>{escape(str(result.get("issued_at") or "—"))}</td></tr>
<tr><th>存证时间 Anchored</th><td>{escape(str(result.get("anchored_at") or "—"))}</td></tr>
</table>
<h2>出示的信息 Disclosed claims</h2>
<table>{"".join(rows) or "<tr><td>— 无 None</td></tr>"}</table>
<h2>核验项目 Checks</h2>
<ul>{"".join(checks)}</ul>
<p><small>核验依据区块链上的记录，不依赖任何单一机构的数据库。 Checked against the ledger, not against any one organisation's database.</small></p>
</body></html>"""


def error_page(code: str, message_zh: str, message_en: str) -> str:
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>eduledger</title></head>
<body style="font-family:system-ui,sans-serif;max-width:44rem;margin:auto;padding:1rem">
<h1>{escape(message_zh)}</h1><p>{escape(message_en)}</p><p><small>{escape(code)}</small></p></body></html>"""


def audit_report_page(report: AuditReport) -> str:
    """A finished audit run's report as a readable page."""
    return to_html(report.report, report_hash_hex=report.report_hash, signature_hex=report.signature,
                   anchor=report.anchor)
