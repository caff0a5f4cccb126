"""Identity cards through HTTP: a school issues 200 student cards with photos, a student
claims one, an exam system checks the student in by challenge and photo, the student
graduates and the same key presents the graduate card, and the history lists every step."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.credentials import jose, sdjwt
from tests.credential_fixtures import served_network
from tests.identity_fixtures import photo, present, roster_zip, student, teacher

EXAM = "https://exam.example.edu.cn/check-in"



def test_student_cards_from_issue_to_graduation(env: Path) -> None:
    with served_network(env / "data") as served:
        school, exam = served.as_org("school-a"), served.as_org("partner")
        zipped = roster_zip([student(n) for n in range(200)])
        keyed = {**school, "Content-Type": "application/zip", "Idempotency-Key": "grade-7"}
        r = served.http.post("/v1/identity/cards", params={"kind": "student"}, content=zipped,
                             headers=keyed)
        assert r.status_code == 201, r.text
        issued = r.json()
        assert issued["count"] == 200 and len({c["card_id"] for c in issued["cards"]}) == 200
        again = served.http.post("/v1/identity/cards", params={"kind": "student"}, content=zipped,
                                 headers=keyed)
        assert again.status_code == 201 and again.json() == issued  # the same roster, once
        twice = served.http.post("/v1/identity/cards", params={"kind": "student"},
                                 content=roster_zip([student(5)]),
                                 headers={**school, "Content-Type": "application/zip"})
        assert twice.status_code == 409 and twice.json()["code"] == "card_exists"  # one live card a person

        # Nothing on chain names the student: the registry holds an opaque id and commitments.
        mine = issued["cards"][7]
        card_id = mine["card_id"]
        assert "G" not in card_id and json.dumps(student(7)["student_number"])[1:-1] not in card_id

        # The student claims the card into a wallet key.
        holder = Ed25519PrivateKey.generate()
        jwk = jose.ed25519_jwk(holder.public_key())
        redeem = {"code": mine["claim_code"], "holder_jwk": jwk}
        claimed = served.http.post("/v1/identity/claims/redeem", json=redeem)
        assert claimed.status_code == 200, claimed.text
        card = claimed.json()
        assert card["card_id"] == card_id and base64.b64decode(card["photo_base64"]) == photo(7)
        reused = served.http.post("/v1/identity/claims/redeem", json=redeem)
        assert reused.status_code == 404  # the code is spent
        claims = dict(sdjwt.disclosure_paths(card["sd_jwt"]))
        assert ("holder", "name") in claims and ("holder", "nationalId") not in claims

        # The exam system checks the student in: challenge, key-bound answer, photo.
        def challenge() -> dict[str, Any]:
            made = served.http.post("/v1/identity/challenges", headers=exam,
                                    json={"audience": EXAM, "claims": ["name", "className"],
                                          "expires_in_seconds": 120})
            assert made.status_code == 201, made.text
            return made.json()

        asked = challenge()
        public = served.http.get(f"/v1/identity/challenges/{asked['challenge_id']}").json()
        assert public["nonce"] == asked["nonce"] and public["answered"] is False
        answer = present(card["sd_jwt"], holder, asked, {"name", "className", "portrait"})
        checked = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": asked["challenge_id"], "presentation": answer,
            "photo_base64": base64.b64encode(photo(7)).decode()})
        assert checked.status_code == 200, checked.text
        verdict = checked.json()
        assert verdict["valid"] is True and verdict["photo_matches"] is True, verdict
        assert verdict["claims"]["name"] == "学生0007" and verdict["card"]["status"] == "active"
        # A replay, another audience, another photo, an answer missing a claim: each fails by name.
        replay = served.http.post("/v1/identity/verify", headers=exam,
                                  json={"challenge_id": asked["challenge_id"], "presentation": answer}).json()
        assert replay["failures"] == ["challenge_used"]
        other = challenge()
        elsewhere = present(card["sd_jwt"], holder, {**other, "audience": "https://other.example"}, {"name"})
        assert "holder_binding_invalid" in served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": other["challenge_id"], "presentation": elsewhere}).json()["failures"]
        third = challenge()
        wrong_photo = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": third["challenge_id"],
            "presentation": present(card["sd_jwt"], holder, third, {"name", "className", "portrait"}),
            "photo_base64": base64.b64encode(photo(8)).decode()}).json()
        assert wrong_photo["failures"] == ["portrait_mismatch"] and wrong_photo["photo_matches"] is False
        fourth = challenge()
        short = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": fourth["challenge_id"],
            "presentation": present(card["sd_jwt"], holder, fourth, {"name"})})
        assert short.json()["failures"] == ["claims_missing"]
        # Signed by another key than the card's: refused.
        stranger = Ed25519PrivateKey.generate()
        fifth = challenge()
        forged = sdjwt.select(card["sd_jwt"], lambda p, _v: True)
        kb = jose.sign_jws({"alg": "EdDSA", "typ": "kb+jwt"}, {"iat": int(__import__("time").time()),
                           "aud": EXAM, "nonce": fifth["nonce"], "sd_hash": sdjwt.sd_hash(forged)}, stranger)
        assert "holder_binding_invalid" in served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": fifth["challenge_id"], "presentation": forged + kb}).json()["failures"]

        # A suspended card fails; reinstated, it passes again.
        status = f"/v1/identity/cards/{card_id}/status"
        suspend = served.http.post(status, headers=school, json={"action": "suspend", "reason": 3})
        assert suspend.status_code == 200
        sixth = challenge()
        suspended = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": sixth["challenge_id"],
            "presentation": present(card["sd_jwt"], holder, sixth, {"name", "className"})}).json()
        assert suspended["failures"] == ["card_suspended"]
        assert served.http.post(status, headers=school, json={"action": "reinstate"}).status_code == 200
        # Another school cannot touch the card, nor learn that it exists.
        foreign = served.http.post(status, headers=served.as_org("school-b"), json={"action": "revoke"})
        assert foreign.status_code == 404

        # Graduation: a graduate card continues the student card, for the same key.
        graduated = served.http.post(f"/v1/identity/cards/{card_id}/graduate", headers=school,
                                     json={"graduation_date": "2028-06-30"})
        assert graduated.status_code == 201, graduated.text
        grad = graduated.json()["cards"][0]
        grad_card = served.http.post("/v1/identity/claims/redeem",
                                     json={"code": grad["claim_code"], "holder_jwk": jwk}).json()
        assert grad_card["kind"] == "graduate"
        seventh = challenge()
        as_graduate = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": seventh["challenge_id"],
            "presentation": present(grad_card["sd_jwt"], holder, seventh, {"name", "className"})}).json()
        assert as_graduate["valid"] is True and as_graduate["card"]["kind"] == "graduate", as_graduate
        assert as_graduate["card"]["predecessor"] == card_id
        eighth = challenge()
        old_card = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": eighth["challenge_id"],
            "presentation": present(card["sd_jwt"], holder, eighth, {"name", "className"})}).json()
        assert old_card["failures"] == ["card_ended"]

        # The trace: every step with its block, confirmed on chain.
        history = served.http.get(f"/v1/identity/cards/{card_id}/history", headers=served.as_org("auditor"),
                                  params={"check": "chain"})
        assert history.status_code == 200, history.text
        trace = history.json()
        assert [e["action"] for e in trace["history"]] == [
            "issued", "key_bound", "status_changed", "status_changed", "status_changed"]
        assert [e["status"] for e in trace["history"][2:]] == ["suspended", "active", "ended"]
        assert all(e["chain"] == "confirmed" and e["block_number"] > 0 for e in trace["history"])
        assert trace["successor"] == grad["card_id"]

        # Personal data is read with a purpose, and the read is logged.
        view = served.http.get(f"/v1/identity/cards/{card_id}", headers=school,
                               params={"purpose": "exam registration", "personal": "true"}).json()
        assert view["fields"]["studentNumber"] == student(7)["student_number"]
        from ledger.audit.accesslog import AccessLog

        rows = AccessLog(served.node.engine).entries(0, 1000, resource_kind="identity_card")
        assert any(r.purpose == "exam registration" for r in rows)


def test_key_rotation_makes_the_old_key_fail(env: Path) -> None:
    with served_network(env / "data") as served:
        school, exam = served.as_org("school-a"), served.as_org("partner")
        issued = served.http.post("/v1/identity/cards", params={"kind": "teacher"},
                                  content=roster_zip([teacher(1)]),
                                  headers={**school, "Content-Type": "application/zip"}).json()
        [mine] = issued["cards"]
        old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        first = served.http.post("/v1/identity/claims/redeem", json={
            "code": mine["claim_code"], "holder_jwk": jose.ed25519_jwk(old.public_key())}).json()
        code = served.http.post(f"/v1/identity/cards/{mine['card_id']}/claim-code", headers=school).json()
        second = served.http.post("/v1/identity/claims/redeem", json={
            "code": code["claim_code"], "holder_jwk": jose.ed25519_jwk(new.public_key())}).json()

        def answer(sd: str, key: Ed25519PrivateKey) -> dict[str, Any]:
            asked = served.http.post("/v1/identity/challenges", headers=exam,
                                     json={"audience": EXAM, "claims": ["name"]}).json()
            return served.http.post("/v1/identity/verify", headers=exam, json={
                "challenge_id": asked["challenge_id"],
                "presentation": present(sd, key, asked, {"name"})}).json()

        assert answer(second["sd_jwt"], new)["valid"] is True
        assert answer(first["sd_jwt"], old)["failures"] == ["holder_key_rotated"]


def test_a_teacher_who_moves_school_keeps_one_identity(env: Path) -> None:
    """The old school ends the card, the new school issues one for the same person (known by
    the keyed hash of the national id, not the number), and the trace links the two."""
    with served_network(env / "data") as served:
        school_a, school_b = served.as_org("school-a"), served.as_org("school-b")
        exam = served.as_org("partner")
        zipped = {"Content-Type": "application/zip"}

        def issue(school: dict[str, str], staff_number: str) -> Any:
            return served.http.post("/v1/identity/cards", params={"kind": "teacher"},
                                    content=roster_zip([teacher(4, staff_number=staff_number)]),
                                    headers={**school, **zipped})

        [first] = issue(school_a, "A-0004").json()["cards"]
        holder = Ed25519PrivateKey.generate()
        served.http.post("/v1/identity/claims/redeem", json={
            "code": first["claim_code"], "holder_jwk": jose.ed25519_jwk(holder.public_key())})
        early = issue(school_b, "B-0104")  # still teaching at school A: one live card a person
        assert early.status_code == 409 and early.json()["code"] == "card_exists"
        assert "another school" in early.json()["message"]
        # School A's card ids are not school B's to see.
        assert early.json().get("details", {}).get("cards", []) == []
        ended = served.http.post(f"/v1/identity/cards/{first['card_id']}/status", headers=school_a,
                                 json={"action": "end"})
        assert ended.status_code == 200 and ended.json()["status"] == "ended", ended.text
        moved = issue(school_b, "B-0104")
        assert moved.status_code == 201, moved.text
        [second] = moved.json()["cards"]
        assert second["card_id"] != first["card_id"]
        # The teacher claims the new card with the same wallet key and is recognised as
        # school B's teacher; the old card no longer is anyone.
        card = served.http.post("/v1/identity/claims/redeem", json={
            "code": second["claim_code"], "holder_jwk": jose.ed25519_jwk(holder.public_key())}).json()
        asked = served.http.post("/v1/identity/challenges", headers=exam,
                                 json={"audience": EXAM, "claims": ["name", "school"]}).json()
        seen = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": asked["challenge_id"],
            "presentation": present(card["sd_jwt"], holder, asked, {"name", "school"})}).json()
        assert seen["valid"] is True, seen
        assert seen["card"]["predecessor"] == first["card_id"] and seen["card"]["kind"] == "teacher"
        assert seen["claims"] == {"name": "教师004", "school": "示范区实验小学"}  # school B's teacher now

        # The trace, from either end: school A's card is continued by school B's.
        auditor = served.as_org("auditor")
        old = served.http.get(f"/v1/identity/cards/{first['card_id']}/history", headers=auditor,
                              params={"check": "chain"}).json()
        new = served.http.get(f"/v1/identity/cards/{second['card_id']}/history", headers=auditor,
                              params={"check": "chain"}).json()
        assert old["successor"] == second["card_id"] and new["predecessor"] == first["card_id"]
        assert old["issuer_org"] == "school-a" and new["issuer_org"] == "school-b"
        assert [e["action"] for e in old["history"]] == ["issued", "key_bound", "status_changed"]
        assert old["history"][-1]["status"] == "ended" and old["history"][-1]["actor"] == "school-a"
        assert [e["action"] for e in new["history"]] == ["issued", "key_bound"]
        assert new["history"][0]["actor"] == "school-b"
        assert new["history"][0]["block_number"] > old["history"][-1]["block_number"]
        assert all(e["chain"] == "confirmed" for e in old["history"] + new["history"])


def test_the_wallet_claims_a_card_and_answers_a_challenge_by_qr(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main as eduledger
    from wallet.holder import Wallet
    from wallet.qr import decode_qr_png

    monkeypatch.setenv("EDULEDGER_WALLET_PASSPHRASE", "wallet passphrase")
    monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", str(2**10))
    with served_network(env / "data") as served:
        school, exam = served.as_org("school-a"), served.as_org("partner")
        # (the roster's photos are photo(row): photo(0) for its one row)
        [mine] = served.http.post("/v1/identity/cards", params={"kind": "student"},
                                  content=roster_zip([student(3)]),
                                  headers={**school, "Content-Type": "application/zip"}).json()["cards"]
        wallet_dir = str(env / "wallet")
        assert eduledger(["wallet", "create", "--wallet-dir", wallet_dir]) == 0
        assert eduledger(["wallet", "claim-card", mine["claim_code"], "--wallet-dir", wallet_dir,
                          "--api", served.base]) == 0
        assert Wallet.open(wallet_dir).portrait(mine["card_id"]) == photo(0)
        asked = served.http.post("/v1/identity/challenges", headers=exam,
                                 json={"audience": EXAM, "claims": ["name", "grade"]}).json()
        # The student's wallet reads the exam's challenge (from its QR code) and answers online;
        # the proctor's system asks for the verdict.
        assert eduledger(["wallet", "present", mine["card_id"][:12], "--challenge", asked["challenge_id"],
                          "--wallet-dir", wallet_dir, "--api", served.base]) == 0
        verdict = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": asked["challenge_id"],
            "photo_base64": base64.b64encode(photo(0)).decode()}).json()
        assert verdict["valid"] is True and verdict["photo_matches"] is True, verdict
        assert verdict["claims"]["name"] == "学生0003" and verdict["claims"]["grade"] == "七年级"
        again = served.http.post(f"/v1/identity/challenges/{asked['challenge_id']}/answer",
                                 json={"presentation": "x" * 20})
        assert again.status_code == 409 and again.json()["code"] == "challenge_used"
        # Offline, by QR code: a card asked for one claim fits one; what is read verifies.
        one = served.http.post("/v1/identity/challenges", headers=exam,
                               json={"audience": EXAM, "claims": ["name"]}).json()
        qr = env / "answer.png"
        assert eduledger(["wallet", "present", mine["card_id"][:12], "--challenge", one["challenge_id"],
                          "--wallet-dir", wallet_dir, "--api", served.base, "--qr-png", str(qr)]) == 0
        [scanned] = decode_qr_png(qr.read_bytes())  # what the proctor's camera reads
        offline = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": one["challenge_id"], "presentation": scanned}).json()
        assert offline["valid"] is True, offline
        capsys.readouterr()
