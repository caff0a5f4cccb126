"""The pages people read, opened in a real browser (Debian's chromium, tests/browser.py):
an employer's phone on a share's verification page, the same page once the credential is
revoked, the page a verification code is typed into, a link that leads nowhere, and an
auditor's report. Each is asserted on what the
browser shows (rendered text, not the HTML source) and kept as a screenshot."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.credentials.types import CHINA_TZ
from tests.browser import Seen, browser_page
from tests.credential_fixtures import Served, served_network, transcript_row
from wallet.holder import Wallet

BEIJING = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 北京时间 \(UTC\+8\)")


def _shared(served: Served, wallet: Wallet) -> tuple[dict[str, Any], dict[str, Any]]:
    """A school issues a transcript; its graduate shares the name and two courses (a required
    and an elective one, the first and the third)."""
    row = transcript_row(3, courses=4)
    row["courses"][0]["kind"], row["courses"][2]["kind"] = "required", "elective"
    issued = served.issue("school-a", "transcript", [row])
    assert issued.status_code == 201, issued.text
    [credential] = issued.json()["credentials"]
    redeemed = served.http.post("/v1/claims/redeem", json={"code": credential["claim_code"],
                                                           "holder_jwk": wallet.holder_jwk}).json()
    wallet.add_credential(redeemed["sd_jwt"], credential_id=redeemed["credential_id"],
                          type=redeemed["type"], issuer=redeemed["issuer"])
    presentation = wallet.present(redeemed["credential_id"], [
        "credentialSubject.holderName", "credentialSubject.courses.2", "credentialSubject.courses.0"],
        aud=served.base)
    share = served.http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 7})
    assert share.status_code == 201, share.text
    return credential, share.json()


def _assert_the_evidence(seen: Seen, served: Served, credential: dict[str, Any]) -> None:
    """The chain's evidence, and how to check it against a node without this page."""
    anchor = credential["anchor"]
    evidence = seen.text("#evidence")
    for value in (anchor["tx_hash"], str(anchor["block_number"]), anchor["contract"], str(anchor["chain_id"]),
                  anchor["root"], anchor["leaf"]):
        assert value in evidence, (value, evidence)
    assert BEIJING.search(evidence)  # the block's time
    commands = seen.text("#commands")
    assert f"eduledger verify shared.json --rpc {served.base}/rpc --registry {anchor['contract']}" in commands
    assert "eth_getTransactionReceipt" in commands and anchor["tx_hash"] in commands
    assert "Accept: application/json" in commands


def test_an_employer_reads_a_share_page_then_sees_it_revoked(env: Path) -> None:
    with served_network(env / "data") as served:
        wallet = Wallet.create(env / "wallet", scrypt_n=2**10)
        credential, share = _shared(served, wallet)
        with browser_page() as seen:
            answer = seen.page.goto(share["url"])
            assert answer is not None and answer.status == 200
            banner = seen.text(".banner")
            assert "凭证有效" in banner and "Credential is valid" in banner
            assert seen.page.title().startswith("凭证有效 · Credential is valid")
            shown = seen.text()
            assert "学生0003" in shown  # the disclosed name
            assert "studentId" not in shown and "S2026" not in shown  # nothing the holder withheld
            # Issued, anchored, checked, the link's expiry and the block: Beijing time, the zone
            # said (the browser is in London).
            assert len(BEIJING.findall(seen.text(".facts"))) == 4, shown
            expires = datetime.fromisoformat(share["expires_at"].replace("Z", "+00:00")).astimezone(CHINA_TZ)
            assert seen.text("#expires") == expires.strftime("%Y-%m-%d %H:%M:%S") + " 北京时间 (UTC+8)"
            assert not re.search(r"\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", shown)  # no raw UTC stamp left
            # The issuer in both languages.
            assert seen.text("#issuer").split("\n")[:2] == ["示范区第一中学", "District No. 1 Middle School"]
            # The courses as a table, sorted, values in words, no position of a hidden line.
            lines = seen.page.locator("#lines tr")
            assert lines.count() == 3  # the header and the two courses shared
            header = lines.nth(0).inner_text()
            for column in ("学期", "Term", "课程代码", "课程名称", "学分", "Credits", "成绩", "Grade",
                           "课程性质"):
                assert column in header, header
            first, second = (lines.nth(i).locator("td").all_inner_texts() for i in (1, 2))
            assert first == ["2025-2026-1", "CS100", "课程0", "3", "70", "必修 Required"], first
            assert second == ["2025-2026-1", "CS102", "课程2", "3", "72", "选修 Elective"], second
            assert "#1" not in shown and "#3" not in shown and "required" not in shown
            _assert_the_evidence(seen, served, credential)
            code = seen.text("#verify-code")
            assert re.fullmatch(r"[2-9A-HJKMNP-TV-Z]{4}(-[2-9A-HJKMNP-TV-Z]{4}){3}", code), code
            assert seen.page.get_attribute("#report-pdf", "href") == f"/s/{share['share_id']}/report.pdf"
            marks = seen.page.locator("li.passed").count()
            assert marks >= 4 and seen.page.locator("li.failed").count() == 0
            # The banner is green: a person sees the verdict before reading it.
            colour = seen.page.eval_on_selector(".banner", "e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(30, 125, 50)", colour
            seen.screenshot("share-valid")

            revoked = served.http.post(f"/v1/credentials/{credential['credential_id']}/status",
                                       json={"action": "revoke", "reason": 3, "note": "issued in error"},
                                       headers=served.as_org("school-a"))
            assert revoked.status_code == 200, revoked.text
            time.sleep(1.1)  # past the status projection's max_age
            seen.page.reload()
            banner = seen.text(".banner")
            assert "凭证无效" in banner and "Credential is NOT valid" in banner
            assert "撤销" in banner and "revoked" in banner.lower()  # why, in both languages
            # The reason in words and the date, in China.
            status = seen.text("#status")
            assert "已撤销" in status and "Revoked" in status
            assert seen.text("#status-reason") == "签发错误 issued in error"
            changed = datetime.fromisoformat(revoked.json()["status_changed_at"].replace("Z", "+00:00"))
            assert seen.text("#status-date") == changed.astimezone(CHINA_TZ).strftime("%Y-%m-%d")
            assert "签发错误" in banner and "issued in error" in banner
            assert seen.page.locator("li.failed").count() == 1
            colour = seen.page.eval_on_selector(".banner", "e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(183, 28, 28)", colour
            seen.screenshot("share-revoked")
            seen.assert_clean()


def test_a_typed_verification_code_finds_the_same_verification(env: Path) -> None:
    with served_network(env / "data") as served:
        _, share = _shared(served, Wallet.create(env / "wallet", scrypt_n=2**10))
        with browser_page() as seen:
            seen.page.goto(share["url"])
            code = seen.text("#verify-code")
            verdict = seen.text(".banner")
            answer = seen.page.goto(f"{served.base}/verify")
            assert answer is not None and answer.status == 200
            shown = seen.text()
            assert "在线验证" in shown and "Online verification" in shown and "验证码" in shown
            seen.screenshot("verify-form")
            # A mistyped code: the form again, saying why, in both languages.
            seen.page.fill("#code", code[:-1] + ("2" if code[-1] != "2" else "3"))
            with seen.page.expect_navigation():
                seen.page.click("button[type=submit]")
            error = seen.text("#error")
            assert "没有与此验证码对应的分享" in error and "No share has this verification code" in error
            seen.problems[:] = [p for p in seen.problems if not p.startswith("404 ")]  # asked for
            seen.screenshot("verify-form-not-found")
            # Typed as a person would: lower case, spaces for the dashes.
            seen.page.fill("#code", code.lower().replace("-", " "))
            with seen.page.expect_navigation():
                seen.page.click("button[type=submit]")
            assert seen.page.url.startswith(f"{served.base}/verify?code=")
            assert seen.text(".banner") == verdict and "凭证有效" in verdict
            assert seen.text("#verify-code") == code
            seen.screenshot("verify-form-found")
            seen.assert_clean()


def test_a_link_that_leads_nowhere_says_so_in_both_languages(env: Path) -> None:
    with served_network(env / "data") as served, browser_page() as seen:
        url = f"{served.base}/s/nosuchshare000000"
        answer = seen.page.goto(url)
        assert answer is not None and answer.status == 404
        seen.problems.remove(f"404 {url}")  # the one failure this test asks for
        shown = seen.text()
        assert re.search(r"[\u4e00-\u9fff]{2,}", shown), shown  # Chinese
        assert re.search(r"[A-Za-z]{4,} [A-Za-z]{2,}", shown), shown  # and English
        assert "Traceback" not in shown and "{" not in shown  # a page, not a dump
        seen.screenshot("share-not-found")
        seen.assert_clean()


def test_an_auditor_reads_the_report_page(env: Path) -> None:
    with served_network(env / "data") as served:
        _shared(served, Wallet.create(env / "wallet", scrypt_n=2**10))
        auditor = served.as_org("auditor")
        run = served.http.post("/v1/audit/runs", headers=auditor)
        assert run.status_code == 202, run.text
        path = f"/v1/audit/runs/{run.json()['run_id']}"
        deadline = time.monotonic() + 120
        while served.http.get(path, headers=auditor).json()["status"] != "done":
            assert time.monotonic() < deadline, "the audit did not finish"
            time.sleep(0.2)
        with browser_page(width=1024) as seen:
            seen.page.set_extra_http_headers(auditor)
            answer = seen.page.goto(f"{served.base}{path}?format=html")
            assert answer is not None and answer.status == 200
            shown = seen.text()
            assert "未发现问题 No findings" in shown
            assert len(BEIJING.findall(shown)) >= 2, shown  # started and finished, Beijing time
            assert "签名 Signature (Ed25519)" in shown
            seen.screenshot("audit-report")
            seen.assert_clean()
