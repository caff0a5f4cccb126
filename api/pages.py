"""The HTML pages, in Chinese and English, rendered from the Jinja2 templates in
``api/templates/``: the verification page an employer's phone opens from a QR code, the
error page, the page a verification code is typed into, the integrity audit report, the
page that signs a person in to another platform with their education identity card (single
sign-on), the proctor's check-in page of an exam session, and the holder's wallet.

Each function here only prepares plain data (texts, label lookups, formatting); the
templates lay it out. Autoescaping is on and undefined names are errors, so every value
reaches the page escaped, and a template asking for something not prepared fails loudly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.share_report import CHECK_LABELS, OUTCOME, beijing_time, share_report, shown_time
from api.share_report import shown_text as _text
from ledger.audit.integrity import AuditReport
from ledger.audit.report import FINDING_KINDS
from ledger.credentials.messages import message
from ledger.credentials.types import CLAIM_LABELS, VALUE_LABELS, CredentialType
from ledger.identity.types import CardKind
from wallet.qr import qr_png

__all__ = ["CARD_CLAIM_LABELS", "CHECK_LABELS", "OUTCOME", "SSO_ERRORS", "WALLET_ERRORS", "audit_report_page",
           "beijing_time", "environment", "error_page", "exam_proctor_page", "share_page", "shown_time",
           "sso_error_page", "sso_sign_in_page", "verify_form_page", "wallet_page"]

environment = Environment(
    loader=PackageLoader("api", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)


def _render(template: str, **data: Any) -> str:
    return environment.get_template(template).render(**data)


# --- the share page and the manual-entry page --------------------------------------------


def share_page(result: dict[str, Any], *, base: str = "") -> str:
    """A verification result (``Verification.to_dict()`` and the share) as the share page;
    ``base``: this service's URL, for the commands that check it without this page."""
    return _render("share.html", report=share_report(result, base=base))


def verify_form_page(*, code: str = "", error_code: str = "") -> str:
    """GET /verify: the form a person types a share's verification code into (the code they
    typed, and why it found nothing, when it did not)."""
    error = message(error_code) if error_code else None
    return _render("verify_form.html", code=code, error_code=error_code,
                   error_en=error[0] if error else "", error_zh=error[1] if error else "")


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
        started_at=shown_time(data.get("started_at")),
        finished_at=shown_time(data.get("finished_at")),
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


# --- the single sign-on page -------------------------------------------------------------

SSO_CLAIM_LABELS = {"name": ("姓名", "Name"), "school": ("学校", "School"),
                    "cardKind": ("卡类型", "Card kind")}
# What a browser is told when a sign-in cannot go on (zh, en).
SSO_ERRORS = {
    "invalid_request": ("登录请求无效，无法返回该平台。",
                        "The sign-in request is not valid and cannot be sent back."),
    "invalid_client": ("未知的平台（客户端未注册或已停用）。",
                       "Unknown platform (the client is not registered or is disabled)."),
    "sign_in_not_found": ("没有这个登录请求。", "No such sign-in."),
    "sign_in_other_browser": ("这个登录是在另一个浏览器中开始的，请在原浏览器中继续。",
                              "This sign-in was started in another browser: continue it there."),
    "sign_in_finished": ("这个登录已经结束，请回到平台重新登录。",
                         "This sign-in is finished: go back to the platform and sign in again."),
}


def sso_error_page(code: str, detail: str = "") -> str:
    """Why a sign-in cannot go on, in both languages; `detail` (English) says more."""
    zh, en = SSO_ERRORS.get(code, ("无法登录。", "Cannot sign in."))
    return error_page(code, zh, f"{en} ({detail})" if detail else en)


def sso_sign_in_page(*, client_name: str, org_name: str, claims: list[str], challenge_id: str,
                     challenge_url: str, api_url: str, expires_at: datetime, status_url: str,
                     continue_url: str, script_nonce: str) -> str:
    """The page a platform sends a person to: the challenge as a QR code and as the wallet
    command, polled until the wallet has answered, then on to the platform."""
    png = base64.b64encode(qr_png(challenge_url, box_size=6)).decode()
    return _render(
        "sso_sign_in.html", client_name=client_name, org_name=org_name,
        claims=[{"zh": SSO_CLAIM_LABELS.get(c, (c, c))[0], "en": SSO_CLAIM_LABELS.get(c, (c, c))[1]}
                for c in claims],
        challenge_id=challenge_id, challenge_url=challenge_url, qr_data_uri=f"data:image/png;base64,{png}",
        command=f"eduledger wallet present <卡号 CARD> --challenge {challenge_id} --api {api_url}",
        expires_at=beijing_time(expires_at), status_url=status_url, continue_url=continue_url,
        script_nonce=script_nonce)


# --- the proctor's check-in page ----------------------------------------------------------


def exam_proctor_page(*, exam_id: str, script_nonce: str) -> str:
    """The page a proctor's link opens (GET /exams/{id}/proctor#token=...). It holds nothing
    of the session: its script reads the token from the fragment (which no server ever
    sees), asks the API for the session with it (X-Proctor-Token), shows each check-in's
    QR code, waits for the wallet's answer and shows the verdict, the name and the photo;
    times in Beijing time."""
    return _render("exam_proctor.html", exam_id=exam_id, script_nonce=script_nonce)


# --- the holder's wallet ------------------------------------------------------------------

CARD_CLAIM_LABELS = {
    "name": ("姓名", "Name"), "school": ("学校", "School"), "grade": ("年级", "Grade"),
    "className": ("班级", "Class"), "enrolmentDate": ("入学日期", "Enrolled"),
    "studentNumber": ("学籍号", "Student number"), "schoolNumber": ("学号", "School number"),
    "staffNumber": ("教职工号", "Staff number"), "subjects": ("任教学科", "Subjects"),
    "teacherCertificate": ("教师资格证号", "Teacher certificate"),
    "portrait": ("照片指纹", "Photo fingerprint"), "validUntil": ("有效期至", "Valid until"),
    "graduationDate": ("毕业日期", "Graduated"),
}
# What the wallet tells its holder when something is refused (zh, en), by machine code.
WALLET_ERRORS = {
    "claim_not_found": ("没有这个领取码，或它已被使用。请核对，或确认领取的类别。",
                        "No such claim code, or it was used already: check it, and what it is for."),
    "claim_already_redeemed": ("这个领取码已被使用。", "This claim code has been used already."),
    "card_not_live": ("这张身份卡已撤销或终止。", "This identity card is revoked or ended."),
    "not_bound_to_wallet": ("收到的凭证没有绑定本钱包的密钥。",
                            "What came back is not bound to this wallet's key."),
    "share_not_found": ("没有这个分享。", "No such share."),
    "bad_withdraw_token": ("撤回凭据不对。", "The withdraw token is wrong."),
    "challenge_not_found": ("没有这个验证请求。", "No such challenge."),
    "challenge_expired": ("验证请求已过期，请对方重新发起。",
                          "The challenge has expired: ask for a new one."),
    "challenge_used": ("这个验证请求已被回答过。", "This challenge has been answered already."),
    "bad_challenge": ("这不是验证请求的链接或编号。", "That is not a challenge's link or id."),
    "other_node": ("这个验证请求来自另一个节点，请用该节点的钱包回答。",
                   "This challenge is from another node: answer it with that node's wallet."),
    "rate_limited": ("请求太频繁，请稍后再试。", "Too many requests: try again in a moment."),
    "chain_unavailable": ("区块链节点暂时无法访问，请稍后再试。",
                          "The ledger is not reachable just now: try again later."),
    "invalid_input": ("输入无效。", "The input is not valid."),
    "network": ("无法连接服务器（离线？）。已保存的凭证和二维码仍可查看。",
                "Cannot reach the server (offline?). What the wallet holds still shows."),
    "no_code": ("请输入领取码。", "Enter the claim code."),
    "no_claims": ("请至少选择一项要出示的信息。", "Choose at least one thing to show."),
    "unsupported": ("这个浏览器不支持钱包所需的功能（Ed25519 密钥、IndexedDB），请更新浏览器。",
                    "This browser lacks what the wallet needs (Ed25519 keys, IndexedDB): update it."),
}


def wallet_labels() -> dict[str, Any]:
    """Everything the wallet's script shows as text beyond its skeleton: labels of claims,
    claim values, credential types and card kinds, and its messages."""
    return {"claims": CLAIM_LABELS, "values": VALUE_LABELS,
            "types": {t.value: (t.label_zh, t.label_en) for t in CredentialType},
            "card_claims": CARD_CLAIM_LABELS,
            "card_kinds": {k.value: (k.label_zh, f"{k.value.capitalize()} card") for k in CardKind},
            "errors": WALLET_ERRORS}


def wallet_page(*, api_url: str, script_nonce: str) -> str:
    """The holder's wallet page: a skeleton of its views and the data its script reads."""
    return _render("wallet.html", api=api_url, script_nonce=script_nonce,
                   labels=json.dumps(wallet_labels(), ensure_ascii=False, separators=(",", ":")))
