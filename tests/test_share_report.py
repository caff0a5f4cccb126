"""What a share serves besides its page, through HTTP: the printable A4 report (read back with
pypdf, its QR code decoded with zxing-cpp), the shared presentation as a file the CLI checks
against the node's chain alone, the verification code typed at GET /verify, and nothing of
it once the holder withdraws it or it expires."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest
import zxingcpp
from PIL import Image
from sqlmodel import Session

from api.cli import main
from ledger.credentials.models import Share
from ledger.credentials.service import VERIFY_CODE_ALPHABET, normalise_verify_code
from ledger.errors import InvalidInput
from ledger.store.columns import utcnow
from tests.credential_fixtures import Served, served_network, transcript_row
from tests.test_pages_browser import _shared
from wallet.holder import Wallet

CODE = re.compile(f"[{VERIFY_CODE_ALPHABET}]{{4}}(-[{VERIFY_CODE_ALPHABET}]{{4}}){{3}}")


def _pdf(served: Served, share: dict[str, Any]) -> tuple[str, list[Image.Image], pypdf.PdfReader]:
    answer = served.http.get(share["url"] + "/report.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf" and answer.content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(answer.content))
    for page in reader.pages:  # A4 portrait, in points
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    text = "\n".join(page.extract_text() for page in reader.pages)
    images = [Image.open(io.BytesIO(image.data)) for page in reader.pages for image in page.images]
    return text, images, reader


def test_the_printable_report_says_the_verdict_in_both_languages_and_its_qr_code_leads_back(
        env: Path) -> None:
    with served_network(env / "data") as served:
        credential, share = _shared(served, Wallet.create(env / "wallet", scrypt_n=2**10))
        page = served.http.get(share["url"], params={"format": "json"}).json()
        text, images, reader = _pdf(served, share)
        assert "凭证有效" in text and "Credential is valid" in text
        assert "电子凭证在线验证报告" in text and "Online verification report" in text
        assert "示范区第一中学" in text and "District No. 1 Middle School" in text
        assert page["share"]["verify_code"] in text and credential["anchor"]["tx_hash"] in text
        assert "北京时间 (UTC+8)" in text and "必修 Required" in text and "选修 Elective" in text
        assert "eth_getTransactionReceipt" in text
        assert "■" not in text  # every character has its glyph
        fonts = {str(font.get_object().get("/BaseFont")) for p in reader.pages
                 for font in (p["/Resources"].get("/Font") or {}).values()}
        assert any("NotoSansCJK" in f for f in fonts), fonts  # the CJK face, embedded
        # The QR code on it, read by an independent decoder: the share page's URL.
        decoded = [b.text for image in images for b in zxingcpp.read_barcodes(image)]
        assert decoded == [share["url"]], decoded

        revoked = served.http.post(f"/v1/credentials/{credential['credential_id']}/status",
                                   json={"action": "revoke", "reason": 5}, headers=served.as_org("school-a"))
        assert revoked.status_code == 200
        time.sleep(1.1)  # past the status projection's max_age
        text, _, _ = _pdf(served, share)
        assert "凭证无效" in text and "Credential is NOT valid" in text
        assert "学业不端" in text and "academic misconduct" in text and "已撤销" in text


def test_the_shared_presentation_verifies_against_the_chain_alone(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_network(env / "data") as served:
        _, share = _shared(served, Wallet.create(env / "wallet", scrypt_n=2**10))
        answer = served.http.get(share["url"] + "/presentation.json")
        assert answer.status_code == 200 and answer.json()["format"] == "eduledger-credential/1"
        file = env / "shared.json"
        file.write_bytes(answer.content)
        capsys.readouterr()
        registry = answer.json()["anchor"]["contract"]
        assert main(["verify", str(file), "--rpc", served.base + "/rpc", "--registry", registry,
                     "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        outcomes = {c["check"]: c["outcome"] for c in result["checks"]}
        assert result["valid"] and outcomes["holder_binding"] == "passed"
        assert sorted(d["path"] for d in result["disclosed"] if d["path"].count(".") == 2) == [
            "credentialSubject.courses.0", "credentialSubject.courses.2"]


def test_a_verification_code_typed_at_verify_leads_to_its_share(env: Path) -> None:
    with served_network(env / "data") as served:
        wallet = Wallet.create(env / "wallet", scrypt_n=2**10)
        _, share = _shared(served, wallet)
        code = served.http.get(share["url"], params={"format": "json"}).json()["share"]["verify_code"]
        assert CODE.fullmatch(code), code
        for typed in (code, code.lower(), code.replace("-", " "), f"  {code.replace('-', '')}  ",
                      code.replace("-", "－")):  # a full-width dash from a Chinese keyboard
            found = served.http.get("/verify", params={"code": typed}, headers={"Accept": "application/json"})
            assert found.status_code == 200 and found.json()["share"]["id"] == share["share_id"], typed
        form = served.http.get("/verify")
        assert form.status_code == 200 and "验证码" in form.text and 'name="code"' in form.text
        unknown = served.http.get("/verify", params={"code": "2" * 16})
        assert unknown.status_code == 404 and "verify_code_not_found" in unknown.text
        assert "没有与此验证码对应的分享" in unknown.text
        bad = served.http.get("/verify", params={"code": "OOOO-1111"})
        assert bad.status_code == 422 and "bad_verify_code" in bad.text and "OOOO-1111" in bad.text
        # Every share its own code.
        codes = {code}
        for _ in range(4):
            _, other = _shared(served, Wallet.create(env / f"w{len(codes)}", scrypt_n=2**10))
            codes.add(served.http.get(other["url"], params={"format": "json"}).json()["share"]["verify_code"])
        assert len(codes) == 5


def test_normalising_a_code_refuses_lookalikes() -> None:
    assert normalise_verify_code("abcd efgh jkmn pqrs".replace("e", "2")) == "ABCD2FGHJKMNPQRS"
    for bad in ("", "ABCD", "ABCD-EFGH-JKMN-PQRO", "ABCD-EFGH-JKMN-PQR1", "ABCD-EFGH-JKMN-PQRSX"):
        with pytest.raises(InvalidInput) as caught:
            normalise_verify_code(bad)
        assert caught.value.code == "bad_verify_code"


def _gone(served: Served, share: dict[str, Any], code: str) -> None:
    """A share no longer shared serves no QR code, no file and no report: 404 with why."""
    for suffix in ("/qr.png", "/qr.svg", "/presentation.json", "/report.pdf"):
        answer = served.http.get(share["url"] + suffix)
        assert answer.status_code == 404 and answer.json()["code"] == code, (suffix, answer.text)
    page = served.http.get(share["url"], params={"format": "json"}).json()
    assert page["failures"] == [code] and page["share"]["verify_code"] is None and page["claims"] is None
    html = served.http.get(share["url"]).text
    assert "report.pdf" not in html and "presentation.json" not in html and 'id="verify-code"' not in html


def test_a_withdrawn_or_expired_share_serves_no_qr_code_file_or_report(env: Path) -> None:
    with served_network(env / "data") as served:
        wallet = Wallet.create(env / "wallet", scrypt_n=2**10)
        _, withdrawn = _shared(served, wallet)
        _, expired = _shared(served, Wallet.create(env / "w2", scrypt_n=2**10))
        for share in (withdrawn, expired):
            assert served.http.get(share["url"] + "/qr.png").content.startswith(b"\x89PNG")
        code = served.http.get(withdrawn["url"], params={"format": "json"}).json()["share"]["verify_code"]
        gone = served.http.delete(f"/v1/shares/{withdrawn['share_id']}",
                                  headers={"X-Withdraw-Token": withdrawn["withdraw_token"]})
        assert gone.status_code == 204
        _gone(served, withdrawn, "share_withdrawn")
        # Its code still finds it, and its page says it was withdrawn.
        assert served.http.get("/verify", params={"code": code, "format": "json"}).json()["failures"] == [
            "share_withdrawn"]
        with Session(served.node.engine) as session:
            row = session.get(Share, expired["share_id"])
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
            session.commit()
        _gone(served, expired, "share_expired")
        assert served.issue("school-a", "transcript", [transcript_row(5)]).status_code == 201
