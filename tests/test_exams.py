"""Exam check-in through HTTP: an organiser's session of candidates by card, its proctor
links, and candidates checked in by their wallets (the real `eduledger wallet present`),
with the verdicts a proctor sees; and the proctor's page in Debian's chromium.

The portrait photo the wallet sends is checked against the portrait commitment on chain; the
QR code the page shows is read back with zxing (not the library that drew it)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update
from sqlmodel import select

from ledger.audit.accesslog import AccessLog
from ledger.credentials import jose
from ledger.identity.models import ExamCheckIn, ExamProctorLink, ExamSession, IdentityChallenge
from ledger.store import session_scope
from tests.browser import another_device, browser_page
from tests.credential_fixtures import Served, served_network
from tests.identity_fixtures import photo, present, roster_zip, student

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str:
    """The node's store: SQLite in its data directory, or a fresh PostgreSQL database."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("postgres_db_url"))


@dataclass
class Holder:
    key: Ed25519PrivateKey
    card: dict[str, Any]


def _issue(served: Served, count: int) -> list[dict[str, Any]]:
    """`count` student cards of school-a; the card at position n has photo(n)."""
    r = served.http.post("/v1/identity/cards", params={"kind": "student"},
                         content=roster_zip([student(n) for n in range(count)]),
                         headers={**served.as_org("school-a"), "Content-Type": "application/zip"})
    assert r.status_code == 201, r.text
    cards: list[dict[str, Any]] = r.json()["cards"]
    return cards


def _claim(served: Served, code: str) -> Holder:
    key = Ed25519PrivateKey.generate()
    r = served.http.post("/v1/identity/claims/redeem",
                         json={"code": code, "holder_jwk": jose.ed25519_jwk(key.public_key())})
    assert r.status_code == 200, r.text
    return Holder(key, r.json())


def _when(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _exam(cards: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": "2026年春季学业水平考试 数学", "room": "第3考场 (教学楼 201)",
            "starts_at": _when(1), "ends_at": _when(3),
            "candidates": [{"card_id": c, "candidate_number": f"2026031{i:04d}", "seat": str(i + 1)}
                           for i, c in enumerate(cards)], **extra}


def _status(served: Served, card_id: str, action: str) -> None:
    r = served.http.post(f"/v1/identity/cards/{card_id}/status", headers=served.as_org("school-a"),
                         json={"action": action})
    assert r.status_code == 200, r.text


def _proctor(token: str) -> dict[str, str]:
    return {"X-Proctor-Token": token}


def _answer(served: Served, holder: Holder, challenge_id: str, picture: bytes | None,
            audience: str | None = None) -> None:
    """What a wallet sends, by HTTP: the card key-bound to the challenge, and a photo."""
    challenge = served.http.get(f"/v1/identity/challenges/{challenge_id}").json()
    if audience is not None:
        challenge = {**challenge, "audience": audience}
    body: dict[str, Any] = {"presentation": present(holder.card["sd_jwt"], holder.key, challenge,
                                                    {"name", "school", "portrait"})}
    if picture is not None:
        body["photo_base64"] = base64.b64encode(picture).decode()
    r = served.http.post(f"/v1/identity/challenges/{challenge_id}/answer", json=body)
    assert r.status_code == 204, r.text


class Desk:
    """A proctor's desk at one session, through its link's token."""

    def __init__(self, served: Served, exam_id: str, token: str) -> None:
        self.served, self.exam_id, self.headers = served, exam_id, _proctor(token)

    def start(self) -> dict[str, Any]:
        r = self.served.http.post(f"/v1/exams/{self.exam_id}/check-ins", headers=self.headers)
        assert r.status_code == 201, r.text
        started: dict[str, Any] = r.json()
        return started

    def state(self, check_in_id: str) -> dict[str, Any]:
        r = self.served.http.get(f"/v1/exams/{self.exam_id}/check-ins/{check_in_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
        state: dict[str, Any] = r.json()
        return state


def test_creating_a_session_and_every_bad_input(env: Path, database: str) -> None:
    with served_network(env / "data", database) as served:
        cards = _issue(served, 5)
        ids = [c["card_id"] for c in cards]
        _status(served, ids[2], "suspend")
        _status(served, ids[3], "revoke")
        partner, http = served.as_org("partner"), served.http
        made = http.post("/v1/exams", headers=partner, json=_exam(ids[:3]))
        assert made.status_code == 201, made.text
        exam = made.json()
        assert exam["organiser_org"] == "partner" and exam["candidate_count"] == 3
        assert [c["card_id"] for c in exam["candidates"]] == ids[:3]
        # A suspended card may be reinstated before the exam: accepted, and said.
        assert [(w["card_id"], w["code"]) for w in exam["warnings"]] == [(ids[2], "card_suspended")]
        link = exam["proctor_link"]
        assert link["url"] == f"{served.base}/exams/{exam['exam_id']}/proctor#token={link['token']}"
        assert made.headers["cache-control"] == "no-store"
        seen = http.get(f"/v1/exams/{exam['exam_id']}", headers=partner).json()
        assert seen["checked_in_count"] == 0 and seen["check_ins"] == []
        assert not any(c["checked_in"] for c in seen["candidates"])
        # Only the organiser's members see it; others cannot even tell it exists.
        assert http.get(f"/v1/exams/{exam['exam_id']}", headers=served.as_org("school-a")).status_code == 404
        assert http.get(f"/v1/exams/{exam['exam_id']}", headers=served.as_org("bureau")).status_code == 403
        assert http.get(f"/v1/exams/{exam['exam_id']}").status_code == 401
        assert http.get("/v1/exams/not-an-id", headers=partner).status_code == 404
        # A school organises exams too (its own), a bureau or an auditor does not.
        school_b = served.as_org("school-b")
        assert http.post("/v1/exams", headers=school_b, json=_exam(ids[:1])).status_code == 201
        for org in ("bureau", "auditor"):
            refused = http.post("/v1/exams", headers=served.as_org(org), json=_exam(ids[:1]))
            assert refused.status_code == 403 and refused.json()["code"] == "role_not_allowed"

        unknown = "0x" + "ab" * 32
        twice = _exam(ids[:2])
        twice["candidates"][1]["card_id"] = ids[0]
        same_number = _exam(ids[:2])
        same_number["candidates"][1]["candidate_number"] = same_number["candidates"][0]["candidate_number"]
        same_seat = _exam(ids[:2])
        same_seat["candidates"][1]["seat"] = "1"
        bad: list[tuple[dict[str, Any], str, str | None]] = [
            (_exam([ids[0], unknown]), "unknown_card", "candidates.1.card_id"),
            (twice, "duplicate_candidate", "candidates.1.card_id"),
            (same_number, "duplicate_candidate", "candidates.1.candidate_number"),
            (same_seat, "duplicate_candidate", "candidates.1.seat"),
            (_exam([ids[0], ids[3]]), "card_not_live", "candidates.1.card_id"),  # revoked for good
            (_exam(ids[:1], starts_at=_when(3), ends_at=_when(1)), "bad_exam_times", None),
            (_exam(ids[:1], starts_at=_when(-3), ends_at=_when(-1)), "bad_exam_times", None),
            (_exam(ids[:1], ends_at=_when(30)), "bad_exam_times", None),
            (_exam(ids[:1], starts_at="2030-01-01T09:00:00", ends_at="2030-01-01T11:00:00"),
             "bad_exam_times", None),  # no zone: which 9 o'clock?
            (_exam([]), "invalid_input", "body.candidates"),
            (_exam(["0x1234"]), "invalid_input", "body.candidates.0.card_id"),
            (_exam(ids[:1], name="数学\n考试"), "invalid_input", "name"),
            (_exam(ids[:1], unknown_field=1), "invalid_input", "body.unknown_field"),
        ]
        for body, code, field in bad:
            r = http.post("/v1/exams", headers=partner, json=body)
            assert r.status_code == 422 and r.json()["code"] == code, (code, r.text)
            if field is not None:
                assert field in [p["field"] for p in r.json()["details"]["problems"]], r.json()
        assert http.post("/v1/exams", json=_exam(ids[:1])).status_code == 401
        with session_scope(served.node.engine) as db:  # nothing of the refused ones was kept
            assert len(db.exec(select(ExamSession)).all()) == 2

        # Another proctor link: shown once; only its hash is kept, anywhere.
        second = http.post(f"/v1/exams/{exam['exam_id']}/proctor-links", headers=partner)
        assert second.status_code == 201
        tokens = [link["token"], second.json()["token"]]
        assert http.post(f"/v1/exams/{exam['exam_id']}/proctor-links",
                         headers=served.as_org("school-b")).status_code == 404
        with session_scope(served.node.engine) as db:
            stored = {row.token_hash for row in db.exec(select(ExamProctorLink)).all()}
        assert {hashlib.sha256(t.encode()).hexdigest() for t in tokens} <= stored
        for path in (env / "data").rglob("*"):  # the SQLite store, its WAL, and every other file
            if path.is_file():
                content = path.read_bytes()
                assert not any(t.encode() in content for t in tokens), path


def test_candidates_check_in_by_wallet(env: Path, database: str, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main as eduledger

    with served_network(env / "data", database) as served:
        http, partner = served.http, served.as_org("partner")
        cards = _issue(served, 5)
        ids = [c["card_id"] for c in cards]
        wallet = ["--wallet-dir", str(env / "wallet"), "--api", served.base]
        assert eduledger(["wallet", "create", *wallet[:2]]) == 0
        assert eduledger(["wallet", "claim-card", cards[0]["claim_code"], *wallet]) == 0
        mismatched, suspended, stranger = (_claim(served, cards[n]["claim_code"]) for n in (1, 2, 4))
        exam = http.post("/v1/exams", headers=partner, json=_exam(ids[:3])).json()
        exam_id, token = exam["exam_id"], exam["proctor_link"]["token"]
        desk = Desk(served, exam_id, token)
        shown = http.get(f"/v1/exams/{exam_id}/proctor", headers=desk.headers).json()
        assert shown["name"] == "2026年春季学业水平考试 数学" and shown["candidate_count"] == 3
        assert "card_id" not in shown["candidates"][0]  # the desk needs no card ids

        # The candidate's wallet reads the desk's challenge and answers it, with its photo.
        started = desk.start()
        challenge = http.get(f"/v1/identity/challenges/{started['challenge_id']}").json()
        assert challenge["audience"] == f"urn:eduledger:exam:{exam_id}" and challenge["photo"] is True
        assert set(challenge["claims"]) == {"name", "school"}
        assert f"--challenge {started['challenge_id']} --api {served.base}" in started["command"]
        from wallet.qr import decode_qr_png

        assert decode_qr_png(base64.b64decode(started["qr_png_base64"])) == [started["challenge_url"]]
        assert desk.state(started["check_in_id"])["state"] == "waiting"
        capsys.readouterr()
        presents = ["wallet", "present", ids[0][:12], "--challenge"]
        assert eduledger([*presents, started["challenge_id"], *wallet]) == 0
        assert "portrait photo" in capsys.readouterr().out
        done = desk.state(started["check_in_id"])
        assert done["state"] == "decided" and done["verdict"]["code"] == "checked_in", done
        assert (done["verdict"]["message_zh"], done["verdict"]["message"]) == ("签到成功", "Checked in")
        assert done["person"]["name"] == "学生0000" and done["person"]["photo_type"] == "image/jpeg"
        assert base64.b64decode(done["person"]["photo_base64"]) == photo(0)  # what the wallet sent
        assert done["candidate"]["candidate_number"] == "20260310000" and done["candidate"]["seat"] == "1"
        first_time = done["candidate"]["checked_in_at"]
        assert desk.state(started["check_in_id"]) == done  # asked again: the same, decided once
        rows = AccessLog(served.node.engine).entries(0, 1000, resource_kind="exam_check_in")
        assert rows and all(r.purpose == "exam check-in" and r.actor == "partner" and r.resource_id == ids[0]
                            for r in rows)

        def check(holder: Holder | None, picture: bytes | None, **kw: Any) -> dict[str, Any]:
            started = desk.start()
            if holder is None:  # the wallet
                assert eduledger([*presents, started["challenge_id"], *wallet]) == 0
            else:
                _answer(served, holder, started["challenge_id"], picture, kw.get("audience"))
            return desk.state(started["check_in_id"])

        again = check(None, None)
        assert again["verdict"]["code"] == "already_checked_in", again
        assert again["candidate"]["checked_in_at"] == first_time and again["person"]["name"] == "学生0000"
        nobody = check(stranger, photo(4))
        assert nobody["verdict"]["code"] == "not_a_candidate" and nobody["verdict"]["message"] == (
            "Not a candidate of this session")
        assert nobody["person"] is None and nobody["candidate"] is None  # nothing of them is shown
        _status(served, ids[2], "suspend")
        paused = check(suspended, photo(2))
        assert paused["verdict"]["code"] == "card_suspended" and "card_suspended" in paused["failures"]
        wrong = check(mismatched, photo(8))
        assert wrong["verdict"]["code"] == "photo_mismatch" and wrong["failures"] == ["portrait_mismatch"]
        assert wrong["verdict"]["message_zh"] == "照片与身份卡登记的人像不符"
        assert base64.b64decode(wrong["person"]["photo_base64"]) == photo(8)  # what was sent, shown once
        missing = check(mismatched, None)
        assert missing["verdict"]["code"] == "photo_missing"
        elsewhere = check(mismatched, photo(1), audience="urn:eduledger:exam:another")
        assert elsewhere["verdict"]["code"] == "answer_invalid" and elsewhere["person"] is None
        right = check(mismatched, photo(1))
        assert right["verdict"]["code"] == "checked_in" and right["person"]["name"] == "学生0001"
        assert desk.state(wrong["check_in_id"])["person"] is None  # refused: not kept
        assert desk.state(right["check_in_id"])["person"]["name"] == "学生0001"  # kept, for the exam

        # The organiser's record: every attempt, who, when, which challenge, the verdict.
        record = http.get(f"/v1/exams/{exam_id}", headers=partner).json()
        assert record["checked_in_count"] == 2
        assert [c["checked_in"] for c in record["candidates"]] == [True, True, False]
        verdicts = [(r["card_id"], r["verdict"]) for r in record["check_ins"]]
        assert verdicts == [(ids[0], "checked_in"), (ids[0], "already_checked_in"),
                            (ids[4], "not_a_candidate"), (ids[2], "card_suspended"),
                            (ids[1], "photo_mismatch"), (ids[1], "photo_missing"),
                            (None, "answer_invalid"), (ids[1], "checked_in")]
        assert all(r["challenge_id"] and r["decided_at"] for r in record["check_ins"])

        # The photos at rest: sealed; what wallets sent with answers is gone once checked.
        with session_scope(served.node.engine) as db:
            kept = [r.sealed_view for r in db.exec(select(ExamCheckIn)).all() if r.sealed_view]
            answers = db.exec(select(IdentityChallenge).where(IdentityChallenge.wants_photo)).all()
        assert len(kept) == 2 and not any(photo(0) in v or "学生0000".encode() in v for v in kept)
        assert all(c.answer_photo is None for c in answers)

        # A photo the challenge did not ask for is not taken.
        plain = http.post("/v1/identity/challenges", headers=partner, json={"audience": "urn:x"}).json()
        r = http.post(f"/v1/identity/challenges/{plain['challenge_id']}/answer",
                      json={"presentation": "x" * 20, "photo_base64": base64.b64encode(photo(1)).decode()})
        assert r.status_code == 422 and r.json()["code"] == "photo_not_asked"

        # The proctor's token: none, wrong, another session's, expired.
        other = http.post("/v1/exams", headers=partner, json=_exam(ids[:1])).json()
        path = f"/v1/exams/{exam_id}/check-ins"
        for headers, status, code in [({}, 401, "proctor_token_required"),
                                      (_proctor("ept_" + "A" * 43), 401, "bad_proctor_token"),
                                      (_proctor("not a token"), 401, "bad_proctor_token"),
                                      (_proctor(other["proctor_link"]["token"]), 401, "bad_proctor_token")]:
            r = http.post(path, headers=headers)
            assert (r.status_code, r.json()["code"]) == (status, code)
        past = datetime.now(UTC) - timedelta(minutes=1)
        with session_scope(served.node.engine, write=True) as db:  # the session is over
            db.execute(update(ExamSession).where(ExamSession.id == exam_id).values(
                starts_at=past - timedelta(hours=2), ends_at=past))
            db.execute(update(ExamProctorLink).where(ExamProctorLink.exam_id == exam_id)
                       .values(expires_at=past))
        for method, url in [("POST", path), ("GET", f"{path}/{right['check_in_id']}"),
                            ("GET", f"/v1/exams/{exam_id}/proctor")]:
            r = http.request(method, url, headers=desk.headers)
            assert (r.status_code, r.json()["code"]) == (403, "proctor_link_expired")
        assert http.post(f"/v1/exams/{exam_id}/proctor-links", headers=partner).status_code == 409
        # ... and what the proctor was shown of the candidates is erased.
        assert served.app.state.services.exams.purge() == 2
        with session_scope(served.node.engine) as db:
            assert not any(r.sealed_view for r in db.exec(select(ExamCheckIn)).all())


def test_the_proctor_page_in_a_real_browser(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The proctor opens the link in chromium, shows the next candidate's QR code, the
    candidate answers with `eduledger wallet present`, and the page shows the verdict, the
    name and the photo the wallet sent, in Chinese and English, times in Beijing time."""
    from api.cli import main as eduledger
    from wallet.qr import decode_qr_png

    with served_network(env / "data") as served, browser_page(width=720, height=1400) as seen:
        cards = _issue(served, 2)
        wallet = ["--wallet-dir", str(env / "wallet"), "--api", served.base]
        assert eduledger(["wallet", "create", *wallet[:2]]) == 0
        assert eduledger(["wallet", "claim-card", cards[1]["claim_code"], *wallet]) == 0
        exam = served.http.post("/v1/exams", headers=served.as_org("partner"),
                                json=_exam([c["card_id"] for c in cards])).json()
        link = exam["proctor_link"]["url"]
        page = seen.page
        answer = page.goto(link)
        assert answer is not None and answer.headers["referrer-policy"] == "no-referrer"
        assert "script-src 'nonce-" in answer.headers["content-security-policy"]
        page.wait_for_selector("#session:not([hidden])")
        assert page.title().startswith("考场签到")
        assert "#token" not in page.url  # dropped from the address bar (kept in this tab only)
        assert page.inner_text("#exam-name") == "2026年春季学业水平考试 数学"
        assert "北京时间 (UTC+8)" in page.inner_text("#exam-time")
        assert page.inner_text("#exam-count") == "0 / 2"

        def next_candidate() -> str:
            page.click("#next")
            page.wait_for_selector("#desk:not([hidden])")
            challenge_id = page.inner_text("#challenge")
            qr = page.get_attribute("#qr", "src") or ""
            read = decode_qr_png(base64.b64decode(qr.removeprefix("data:image/png;base64,")))
            assert read == [f"{served.base}/v1/identity/challenges/{challenge_id}"]  # what zxing reads
            assert f"--challenge {challenge_id} --api {served.base}" in page.inner_text("#command")
            return challenge_id

        challenge_id = next_candidate()
        seen.screenshot("exam-check-in-qr")
        # The candidate runs the command the page shows, with their card.
        assert eduledger(["wallet", "present", cards[1]["card_id"][:12], "--challenge", challenge_id,
                          *wallet]) == 0
        page.wait_for_selector("#verdict:not([hidden])", timeout=30_000)
        verdict = page.inner_text("#verdict")
        assert "签到成功" in verdict and "Checked in" in verdict, verdict
        assert page.get_attribute("#verdict", "data-verdict") == "checked_in"
        assert page.inner_text("#person-name") == "学生0001"
        assert page.inner_text("#candidate-number") == "20260310001"
        assert page.inner_text("#candidate-seat") == "2"
        assert page.inner_text("#checked-in-at").endswith("北京时间 (UTC+8)")
        assert page.locator("#photo").evaluate("img => img.naturalWidth") == 96  # photo(1), as sent
        page.wait_for_function("document.getElementById('exam-count').textContent === '1 / 2'")
        assert "已签到 Checked in" in page.inner_text("#roster")
        seen.screenshot("exam-checked-in")

        # The same card again: said so, in both languages.
        challenge_id = next_candidate()
        assert eduledger(["wallet", "present", cards[1]["card_id"][:12], "--challenge", challenge_id,
                          *wallet]) == 0
        page.wait_for_selector("#verdict[data-verdict='already_checked_in']:not([hidden])", timeout=30_000)
        verdict = page.inner_text("#verdict")
        assert "该考生已经签到过" in verdict and "Already checked in" in verdict, verdict
        seen.screenshot("exam-already-checked-in")
        seen.assert_clean()  # the CSP let the page's one script run, and nothing failed

        # A link whose token is wrong says so, in both languages (its API call is the 401).
        other = another_device(seen)
        other.page.goto(link.split("#")[0] + "#token=ept_wrong")
        other.page.wait_for_selector("#problem:not([hidden])")
        problem = other.text("#problem")
        assert "监考链接无效" in problem and "not valid" in problem, problem
        other.screenshot("exam-wrong-link")
        assert [p.split()[0] for p in other.problems] == ["401"], other.problems
    capsys.readouterr()
