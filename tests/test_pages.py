"""The HTML pages (api/templates/, rendered by api/pages.py): escaped and inert whatever the
input, the same layout for all, and the audit report showing all it must."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from api import pages
from api.pages import (
    audit_report_page,
    error_page,
    share_page,
    sso_error_page,
    sso_sign_in_page,
    verify_form_page,
)
from ledger.audit.integrity import AuditReport
from ledger.audit.report import FINDING_KINDS, canonical_report, report_hash

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "api" / "templates"

# Breaks out of text, of a double- or single-quoted attribute, and tries Jinja2 syntax.
HOSTILE = ("<script>alert(1)</script>\" onmouseover=\"alert(2)\" ' onfocus='alert(3)' "
           "<img src=x onerror=alert(4)> & {{ 6007 * 7 }} {% if true %}EVALUATED{% endif %} "
           "{# hidden #} {{ config }} </td></tr></table>")


class _Page(HTMLParser):
    """The elements, attributes and text of a page, as a browser would read them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def attributes(self) -> set[str]:
        return {name for _, attrs in self.tags for name in attrs}


def _assert_inert(html: str, *, expected_copies: int) -> None:
    page = _Page(html)
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "img" not in tags
    assert not {a for a in page.attributes() if a.startswith("on")}, page.attributes()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&#34;" in html and "&#39;" in html
    # The Jinja2 syntax in the data is shown as it is, never evaluated.
    assert "EVALUATED" not in page.text.replace("{% if true %}EVALUATED{% endif %}", "")
    assert "42049" not in html and "{# hidden #}" in page.text
    # What was given is what a reader sees: the hostile text, whole, in text or attributes.
    seen = page.text + "".join(v or "" for _, attrs in page.tags for v in attrs.values())
    assert seen.count(HOSTILE) >= expected_copies, seen.count(HOSTILE)


def _layout(html: str) -> _Page:
    """Every page: the base layout, and nothing fetched from elsewhere."""
    assert html.startswith("<!doctype html>\n<html lang=\"zh-CN\">")
    page = _Page(html)
    tags = [tag for tag, _ in page.tags]
    assert tags[:5] == ["html", "head", "meta", "meta", "title"] and "style" in tags
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in page.tags
    assert "link" not in tags and "script" not in tags and "//" not in "".join(
        v or "" for _, attrs in page.tags for v in attrs.values())
    return page


def _check(name: str, outcome: str, text: str = "") -> dict[str, Any]:
    return {"check": name, "outcome": outcome, "code": name, "message": f"{text} {name} en",
            "message_zh": f"{text} {name} 中"}


def _share_result(value: Any, *, valid: bool = True) -> dict[str, Any]:
    courses = [{"code": "CS101", "name": value, "grade": "90"},
               {"code": "CS104", "name": "数据库", "grade": "88"}]
    checks = [_check("format", "passed"), _check("status", "skipped")]
    if not valid:
        checks += [_check("signature", "failed", value), _check(value, value, value),
                   {**_check("status", "failed", value), "code": "revoked",
                    "details": {"reason_code": value, "since": value}}]
    return {
        "valid": valid, "credential_type": "transcript",
        "issuer": {"name": value, "id": "did:web:" + value, "name_en": value}, "issued_at": value,
        "anchored_at": value,
        "anchor": {"tx_hash": value, "block_number": value, "contract": value, "chain_id": value,
                   "root": value, "leaf": value},
        "share": {"id": value, "expires_at": value, "verify_code": value},
        "disclosed": [
            {"path": "credentialSubject.holderName", "value": value},
            {"path": "credentialSubject.courses", "value": courses},
            {"path": "credentialSubject.courses.0", "value": courses[0]},
            {"path": "credentialSubject.courses.0.name", "value": value},
            {"path": "credentialSubject." + value, "value": {value: [value, {"x": value}]}},
        ],
        "checks": checks,
    }


def _report(findings: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    by_kind: dict[str, int] = {}
    for finding in findings:
        by_kind[finding["kind"]] = by_kind.get(finding["kind"], 0) + 1
    return {"type": "eduledger-integrity-audit-report", "run_id": "run-1", "requested_by": "auditor",
            "auditor": {"org_id": "auditor", "public_key": "0x" + "ab" * 32},
            "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:01:00Z",
            "chain": {"chain_id": 1337, "anchor_registry": "0x" + "11" * 20, "from_block": 0,
                      "head_block": 99, "indexed_to_block": 98},
            "scope": {"batches": 4, "anchored_leaves": 40, "credentials": 39, "chain_events": 12},
            "summary": {"findings": len(findings), "by_kind": by_kind}, "findings": findings, **extra}


def _audit(report: dict[str, Any], *, signature: str | None = "0x" + "5e" * 64,
           anchor: dict[str, Any] | None = None) -> AuditReport:
    data = canonical_report(report)
    return AuditReport(str(report["run_id"]), data, "0x" + report_hash(data).hex(), signature, anchor)


# --- the environment -----------------------------------------------------------------------


def test_the_environment_escapes_and_refuses_undefined_names() -> None:
    env = pages.environment
    assert isinstance(env.loader, jinja2.PackageLoader)
    assert isinstance(env.undefined, type) and issubclass(env.undefined, jinja2.StrictUndefined)
    assert callable(env.autoescape) and env.autoescape("share.html") is True
    assert set(env.list_templates()) == {p.name for p in TEMPLATES.glob("*.html")} == {
        "base.html", "share.html", "error.html", "audit_report.html", "sso_sign_in.html",
        "exam_proctor.html", "wallet.html", "verify_form.html"}
    for name in ("share.html", "error.html", "audit_report.html", "sso_sign_in.html", "exam_proctor.html",
                 "wallet.html", "verify_form.html"):
        with pytest.raises(jinja2.UndefinedError):
            env.get_template(name).render()  # a value the page needs and was not given


def test_the_templates_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    for path in TEMPLATES.iterdir():
        assert any(fnmatch.fnmatch(f"templates/{path.name}", p) for p in patterns), path.name


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize("valid", [True, False])
def test_the_share_page_escapes_everything(valid: bool) -> None:
    html = share_page(_share_result(HOSTILE, valid=valid), base=HOSTILE)
    page = _layout(html)
    _assert_inert(html, expected_copies=20)
    assert ("凭证有效" if valid else "凭证无效") in page.text
    # The claim named by hostile text keeps its name as its label, its value in its cell.
    cells = [t for t in page.texts if HOSTILE in t]
    assert any(t.startswith(HOSTILE) for t in cells)
    if not valid:  # the failed checks' messages, in the banner and in the list
        assert page.text.count(f"{HOSTILE} signature 中") == 2
        assert page.text.count(f"{HOSTILE} {HOSTILE} en") == 1
        assert any(attrs.get("class") == HOSTILE for tag, attrs in page.tags if tag == "li")


def test_the_error_page_escapes_everything() -> None:
    html = error_page(HOSTILE, HOSTILE + " 中", HOSTILE + " en")
    page = _layout(html)
    _assert_inert(html, expected_copies=3)
    assert [tag for tag, _ in page.tags if tag in ("h1", "p", "small")] == ["h1", "p", "p", "small"]


def test_the_audit_report_page_escapes_everything() -> None:
    findings = [{"seq": 1, "kind": "item_missing", "item": HOSTILE, "details": {"note": HOSTILE}},
                {"seq": 2, "kind": HOSTILE, "item": "x", "details": {"reasons": [HOSTILE]}}]
    report = _report(findings, run_id=HOSTILE, requested_by=HOSTILE,
                     auditor={"org_id": HOSTILE, "public_key": HOSTILE})
    html = audit_report_page(_audit(report, signature=HOSTILE,
                                    anchor={"block_number": HOSTILE, "tx_hash": HOSTILE, "root": HOSTILE}))
    _layout(html)
    _assert_inert(html, expected_copies=11)


def test_the_proctor_page_escapes_its_one_value_and_runs_only_its_own_script() -> None:
    html = pages.exam_proctor_page(exam_id=HOSTILE, script_nonce="n0nce")
    assert html.startswith("<!doctype html>\n<html lang=\"zh-CN\">")
    page = _Page(html)
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"nonce": "n0nce"}]  # the one script, allowed by the CSP's nonce
    assert not {a for a in page.attributes() if a.startswith("on")}, page.attributes()
    assert [attrs["data-exam-id"] for tag, attrs in page.tags if tag == "main"] == [HOSTILE]
    assert "<script>alert(1)" not in html and "42049" not in html
    # Nothing of a session is in the page: its script fills it in, as text, never as HTML.
    assert "innerHTML" not in html and "textContent" in html
    assert all("src" not in attrs for tag, attrs in page.tags if tag == "img")
    assert "考场签到" in page.text and "Exam check-in" in page.text


# --- what the pages show -------------------------------------------------------------------


def test_the_share_page_shows_a_listed_course_once_in_its_table_without_its_position() -> None:
    html = share_page(_share_result("算法"))
    page = _Page(html)
    table = html[html.index('id="lines"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 2 and "CS101" in table and "CS104" not in table  # the one line shared
    body = _Page(html[html.index("<body>"):]).text
    assert "#1" not in body and "— 无 None" not in page.text
    assert "— 无 None" in _Page(share_page({"valid": False})).text


def test_the_share_page_sorts_lines_by_content_and_says_coded_values_in_words() -> None:
    lines = [{"term": "2025-2026-2", "code": "CS200", "name": "编译原理", "credits": "2", "grade": "81",
              "kind": "elective"},
             {"term": "2025-2026-1", "code": "CS105", "name": "操作系统", "credits": "4", "grade": "90",
              "kind": "required"}]
    result = {"valid": True, "disclosed": [
        {"path": "credentialSubject.courses.7", "value": lines[0]},
        {"path": "credentialSubject.courses.3", "value": lines[1]},
        {"path": "credentialSubject.courses.5.grade", "value": "77"},
        {"path": "credentialSubject.educationLevel", "value": "bachelor"}]}
    html = share_page(result)
    table = html[html.index('id="lines"'):html.index("</table>", html.index('id="lines"'))]
    rows = [[t for t in _Page(row).texts if t.strip()] for row in table.split("<tr>")[2:]]
    assert rows == [["2025-2026-1", "CS105", "操作系统", "4", "90", "必修 Required"],
                    ["2025-2026-2", "CS200", "编译原理", "2", "81", "选修 Elective"],
                    ["—", "—", "—", "—", "77", "—"]], rows  # by term and code; a line of one grade last
    text = _Page(html[html.index("<body>"):]).text
    assert not re.search(r"#\d", text) and "课程0" not in text
    assert "本科 Bachelor" in text and "bachelor" not in text


def test_the_verify_form_escapes_the_code_typed() -> None:
    html = verify_form_page(code=HOSTILE, error_code="verify_code_not_found")
    page = _layout(html)
    assert [(tag, attrs.get("action"), attrs.get("method")) for tag, attrs in page.tags if tag == "form"] == [
        ("form", "/verify", "get")]
    seen = page.text + "".join(v or "" for _, attrs in page.tags for v in attrs.values())
    assert seen.count(HOSTILE) == 1 and "<script" not in html
    assert "没有与此验证码对应的分享" in page.text and "No share has this verification code" in page.text
    assert "id=\"error\"" not in verify_form_page()


def test_the_audit_report_page_shows_every_finding_the_hash_the_signature_and_the_anchor() -> None:
    findings = [{"seq": seq, "kind": kind, "item": f"0x{seq:064x}",
                 "details": {"reasons": [f"reason-{seq}"], "position": seq}}
                for seq, kind in enumerate(list(FINDING_KINDS) * 2, 1)]
    findings.append({"seq": len(findings) + 1, "kind": "item_missing", "item": "0xlast", "details": {}})
    anchor = {"batch_id": 9, "root": "0x" + "7a" * 32, "tx_hash": "0x" + "7b" * 32, "block_number": 4242,
              "status": "anchored"}
    report = _audit(_report(findings), anchor=anchor)
    html = audit_report_page(report)
    page = _layout(html)
    text = page.text

    assert "完整性审计报告" in text and "Integrity audit report" in text
    assert f"发现 {len(findings)} 项问题 {len(findings)} finding(s)" in text
    rows = [t for t in html.split("<tr>") if 'class="mono"' in t]
    assert len(rows) == len(findings)
    for finding, row in zip(findings, rows, strict=True):
        zh, en, _ = FINDING_KINDS[finding["kind"]]
        assert f"<td>{finding['seq']}</td>" in row and finding["item"] in row and zh in row and en in row
    for seq in range(1, len(findings)):
        assert f"reason-{seq}" in text
    assert report.report_hash in text and report.signature and report.signature in text
    assert "0x" + "ab" * 32 in text  # the signing key
    assert "区块 block 4242" in text and anchor["tx_hash"] in text and anchor["root"] in text
    for kind, (zh, en, meaning) in FINDING_KINDS.items():
        count = sum(1 for f in findings if f["kind"] == kind)
        assert f"<td>{zh}<br><span class=\"en\">{en}</span></td><td>{count}</td><td>{meaning}</td>" in html


def test_a_clean_audit_report_page() -> None:
    report = _audit(_report([]), signature=None, anchor=None)
    page = _Page(audit_report_page(report))
    assert "未发现问题 No findings" in page.text and "无 None" in page.text
    assert "签名 Signature (Ed25519)" not in page.text and "上链存证 Anchored" not in page.text
    assert report.report_hash in page.text


def test_the_sso_sign_in_page_escapes_everything_and_runs_only_its_own_script() -> None:
    from datetime import UTC, datetime

    html = sso_sign_in_page(client_name=HOSTILE, org_name=HOSTILE, claims=["name", HOSTILE],
                            challenge_id=HOSTILE, challenge_url=HOSTILE, api_url=HOSTILE,
                            expires_at=datetime(2026, 9, 1, 4, 0, tzinfo=UTC), status_url=HOSTILE,
                            continue_url=HOSTILE, script_nonce="n0nce")
    page = _Page(html)
    assert html.startswith("<!doctype html>\n<html lang=\"zh-CN\">")
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"nonce": "n0nce"}] and html.count("<script") == 1  # the page's own, by nonce
    assert [attrs["src"][:22] for tag, attrs in page.tags if tag == "img"] == ["data:image/png;base64,"]
    assert not {a for a in page.attributes() if a.startswith("on")}
    assert "<img src=x" not in html and "&lt;script&gt;" in html
    assert "42049" not in html  # the hostile template text was not evaluated
    assert "EVALUATED" not in page.text.replace("{% if true %}EVALUATED{% endif %}", "")
    seen = page.text + "".join(v or "" for _, attrs in page.tags for v in attrs.values())
    assert seen.count(HOSTILE) >= 8, seen.count(HOSTILE)
    assert "2026-09-01 12:00:00 北京时间 (UTC+8)" in page.text  # Beijing time, the zone said
    assert "姓名 · Name" in page.text


def test_the_sso_error_page_says_why_in_both_languages() -> None:
    page = _Page(sso_error_page("sign_in_other_browser"))
    assert "另一个浏览器" in page.text and "another browser" in page.text
    shown = _Page(sso_error_page("invalid_request", HOSTILE))
    _assert_inert(sso_error_page("invalid_request", HOSTILE), expected_copies=1)
    assert "登录请求无效" in shown.text
