"""The pages people read, opened in a real browser (Debian's chromium, tests/browser.py):
an employer's phone on a share's verification page, the same page once the credential is
revoked, a link that leads nowhere, and an auditor's report. Each is asserted on what the
browser shows (rendered text, not the HTML source) and kept as a screenshot."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.browser import browser_page
from tests.credential_fixtures import Served, served_network, transcript_row
from wallet.holder import Wallet

BEIJING = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 北京时间 \(UTC\+8\)")


def _shared(served: Served, wallet: Wallet) -> tuple[dict[str, Any], dict[str, Any]]:
    """A school issues a transcript; its graduate shares the name and two courses."""
    issued = served.issue("school-a", "transcript", [transcript_row(3, courses=4)])
    assert issued.status_code == 201, issued.text
    [credential] = issued.json()["credentials"]
    redeemed = served.http.post("/v1/claims/redeem", json={"code": credential["claim_code"],
                                                           "holder_jwk": wallet.holder_jwk}).json()
    wallet.add_credential(redeemed["sd_jwt"], credential_id=redeemed["credential_id"],
                          type=redeemed["type"], issuer=redeemed["issuer"])
    presentation = wallet.present(redeemed["credential_id"], [
        "credentialSubject.holderName", "credentialSubject.courses.0", "credentialSubject.courses.2"],
        aud=served.base)
    share = served.http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 7})
    assert share.status_code == 201, share.text
    return credential, share.json()


def test_an_employer_reads_a_share_page_then_sees_it_revoked(node_env: Path) -> None:
    with served_network(node_env / "data") as served:
        wallet = Wallet.create(node_env / "wallet", scrypt_n=2**10)
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
            # Issued and anchored: Beijing time, the zone said (the browser is in London).
            times = BEIJING.findall(shown)
            assert len(times) == 2, shown
            assert "Z" not in seen.text("table")  # no raw UTC stamp left for a person to convert
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
            assert seen.page.locator("li.failed").count() == 1
            colour = seen.page.eval_on_selector(".banner", "e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(183, 28, 28)", colour
            seen.screenshot("share-revoked")
            seen.assert_clean()


def test_a_link_that_leads_nowhere_says_so_in_both_languages(node_env: Path) -> None:
    with served_network(node_env / "data") as served, browser_page() as seen:
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


def test_an_auditor_reads_the_report_page(node_env: Path) -> None:
    with served_network(node_env / "data") as served:
        _shared(served, Wallet.create(node_env / "wallet", scrypt_n=2**10))
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
