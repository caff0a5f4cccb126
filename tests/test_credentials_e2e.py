"""The whole story through HTTP: a school issues, a graduate shares by QR, an employer checks."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.anchoring.proof import AnchorProof
from ledger.credentials.jose import b64url, b64url_decode
from ledger.credentials.types import CHINA_TZ
from tests.credential_fixtures import served_network, transcript_row
from wallet.holder import Wallet
from wallet.qr import decode_qr_png


def redeem_into(wallet: Wallet, served, code: str) -> dict:  # type: ignore[no-untyped-def]
    r = served.http.post("/v1/claims/redeem", json={"code": code, "holder_jwk": wallet.holder_jwk})
    assert r.status_code == 200, r.text
    body = r.json()
    wallet.add_credential(body["sd_jwt"], credential_id=body["credential_id"], type=body["type"],
                          issuer=body["issuer"])
    return body


def test_issue_share_verify_story(env: Path) -> None:
    with served_network(env / "data") as served:
        # A school issues 1,000 transcripts in one request: one anchor transaction.
        head = served.node.client.block_number()
        r = served.issue("school-a", "transcript", [transcript_row(n) for n in range(1000)],
                         **{"Idempotency-Key": "class-of-2026"})
        assert r.status_code == 201, r.text
        batch = r.json()
        assert batch["count"] == 1000 and batch["status"] == "anchored"
        assert served.node.client.block_number() == head + 1
        again = served.issue("school-a", "transcript", [transcript_row(n) for n in range(1000)],
                             **{"Idempotency-Key": "class-of-2026"}).json()
        assert again["batch_id"] == batch["batch_id"]
        codes = [c["claim_code"] for c in batch["credentials"]]
        assert [c["claim_code"] for c in again["credentials"]] == codes

        # A graduate redeems one credential into a wallet; the code works once.
        wallet = Wallet.create(env / "wallet", scrypt_n=2**10)
        first = batch["credentials"][7]
        redeemed = redeem_into(wallet, served, first["claim_code"])
        reused = served.http.post("/v1/claims/redeem", json={"code": first["claim_code"],
                                                              "holder_jwk": wallet.holder_jwk})
        assert reused.status_code == 409 and reused.json()["code"] == "claim_already_redeemed"

        # They share their name and 3 of the 10 transcript lines for 30 days.
        chosen = ["credentialSubject.holderName", "credentialSubject.courses.1",
                  "credentialSubject.courses.4", "credentialSubject.courses.8"]
        presentation = wallet.present(redeemed["credential_id"], chosen, aud=served.base)
        share = served.http.post("/v1/shares", json={"presentation": presentation,
                                                      "expires_in_days": 30})
        assert share.status_code == 201, share.text
        share_body = share.json()

        # The employer's phone reads the QR code and opens the page.
        png = served.http.get(share_body["qr_png_url"])
        assert png.headers["content-type"] == "image/png"
        assert decode_qr_png(png.content) == [share_body["url"]]
        page = served.http.get(share_body["url"], headers={"Accept": "text/html"})
        assert page.status_code == 200 and "凭证有效" in page.text and "Credential is valid" in page.text
        result = served.http.get(share_body["url"], headers={"Accept": "application/json"}).json()
        assert result["valid"] is True, result["failures"]
        courses = result["claims"]["credentialSubject"]["courses"]
        assert [c["code"] for c in courses] == ["CS101", "CS104", "CS108"]
        assert result["claims"]["credentialSubject"]["holderName"] == "学生0007"
        assert "studentId" not in result["claims"]["credentialSubject"]
        assert {c["check"]: c["outcome"] for c in result["checks"]}["holder_binding"] == "passed"

        # A tampered copy: a grade raised inside one disclosure (well-formed, but altered).
        parts = presentation.split("~")
        index = next(i for i, p in enumerate(parts[1:-1], 1) if b'"grade"' in b64url_decode(p))
        decoded = b64url_decode(parts[index])
        grade = json.loads(decoded)[-1]
        parts[index] = b64url(decoded.replace(f'"{grade}"'.encode(), b'"100"', 1))
        verdict = served.http.post("/v1/verify", json={"credential": "~".join(parts)}).json()
        assert verdict["valid"] is False and verdict["failures"] == ["claim_tampered"], verdict
        # And one byte of the issuer's JWT changed: the signature no longer holds.
        jwt = presentation.split("~")[0]
        header, body, signature = jwt.split(".")
        payload = b64url_decode(body).replace(b"Transcript", b"Transcripu", 1)
        forged = ".".join([header, b64url(payload), signature]) + presentation[len(jwt):]
        verdict = served.http.post("/v1/verify", json={"credential": forged}).json()
        assert verdict["failures"] == ["signature_invalid"], verdict

        # A revoked one: the school revokes another graduate's credential.
        other = batch["credentials"][8]
        wallet2 = Wallet.create(env / "wallet2", scrypt_n=2**10)
        redeemed2 = redeem_into(wallet2, served, other["claim_code"])
        envelope = {"format": "eduledger-credential/1", "sd_jwt": redeemed2["sd_jwt"],
                    "anchor": redeemed2["anchor"]}
        assert served.http.post("/v1/verify", json={"credential": envelope}).json()["valid"] is True
        revoke = served.http.post(f"/v1/credentials/{other['credential_id']}/status",
                                  json={"action": "revoke", "reason": 3, "note": "issued in error"},
                                  headers=served.as_org("school-a"))
        assert revoke.status_code == 200, revoke.text
        verdict = served.http.post("/v1/verify", json={"credential": envelope}).json()
        assert verdict["valid"] is False and verdict["failures"] == ["revoked"]
        status_check = next(c for c in verdict["checks"] if c["check"] == "status")
        assert status_check["details"]["reason_code"] == 3 and status_check["details"]["since"]

        # An expired one: valid until the end of today, checked as of the day after tomorrow.
        # (Validity days are dates in China: "today" is China's today, whatever the UTC date.)
        today = datetime.now(CHINA_TZ).date()
        expired = served.issue("school-a", "transcript",
                               [transcript_row(5000, valid_until=today.isoformat())]).json()
        wallet3 = Wallet.create(env / "wallet3", scrypt_n=2**10)
        redeemed3 = redeem_into(wallet3, served, expired["credentials"][0]["claim_code"])
        file3 = {"sd_jwt": redeemed3["sd_jwt"], "anchor": redeemed3["anchor"]}
        assert served.http.post("/v1/verify", json={"credential": file3}).json()["valid"] is True
        later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        verdict = served.http.post("/v1/verify", json={"credential": file3, "at": later}).json()
        assert verdict["failures"] == ["expired"]

        # A withdrawn share.
        gone = served.http.delete(f"/v1/shares/{share_body['share_id']}",
                                  headers={"X-Withdraw-Token": share_body["withdraw_token"]})
        assert gone.status_code == 204
        result = served.http.get(share_body["url"], headers={"Accept": "application/json"}).json()
        assert result["valid"] is False and result["failures"] == ["share_withdrawn"]
        assert result["claims"] is None and result["disclosed"] == []  # none of the holder's data
        withdrawn_page = served.http.get(share_body["url"]).text
        assert "已撤回" in withdrawn_page and "学生0007" not in withdrawn_page


def test_bad_input_gets_a_clear_4xx(env: Path) -> None:
    with served_network(env / "data") as served:
        http = served.http
        # No or wrong API key.
        assert http.post("/v1/credentials", json={}).status_code == 401
        bad_key = http.post("/v1/credentials", json={}, headers={"Authorization": "Bearer nope"})
        assert bad_key.status_code == 401 and bad_key.json()["code"] == "bad_api_key"
        # A partner may not issue transcripts; an auditor may not issue at all.
        denied = served.issue("partner", "transcript", [transcript_row(1)])
        assert denied.status_code == 403 and denied.json()["code"] == "role_not_allowed"
        assert served.issue("auditor", "training", [{}]).status_code == 403
        # Malformed JSON, unknown type, bad rows (reported by row and field), a wrong date.
        malformed = http.post("/v1/credentials", content=b"{not json",
                              headers={**served.as_org("school-a"), "Content-Type": "application/json"})
        assert malformed.status_code == 422 and malformed.json()["code"] == "malformed_roster"
        assert served.issue("school-a", "diploma", [transcript_row(1)]).json()["code"] == "unknown_type"
        rows = [transcript_row(1), transcript_row(2, valid_until="2026-13-40"), {"holder_name": "x"}]
        bad_rows = served.issue("school-a", "transcript", rows)
        assert bad_rows.status_code == 422
        errors = bad_rows.json()["details"]["errors"]
        assert {e["row"] for e in errors} == {2, 3}
        assert any(e["row"] == 2 and "valid_until" in e["field"] for e in errors)
        # Nothing was issued or anchored by any of it.
        head = served.node.client.block_number()
        assert served.issue("school-a", "transcript", [{"oops": 1}]).status_code == 422
        assert served.node.client.block_number() == head
        # Claim codes, shares, verification.
        unknown = http.post("/v1/claims/redeem", json={"code": "AAAA-BBBB-CCCC-DDDD",
                                                        "holder_jwk": {"kty": "OKP", "crv": "Ed25519",
                                                                       "x": "A" * 43}})
        assert unknown.status_code == 404 and unknown.json()["code"] == "claim_not_found"
        missing = http.get("/s/doesnotexist", headers={"Accept": "application/json"})
        assert missing.status_code == 404 and missing.json()["code"] == "share_not_found"
        # An empty id (a trailing slash) is a 404 too, not a redirect.
        for path in ("/v1/credentials/", "/s/", "/v1/verify/"):
            empty = http.get(path, follow_redirects=False)
            assert empty.status_code == 404 and empty.json()["code"] == "not_found", path
        too_long = http.post("/v1/shares", json={"presentation": "x" * 20, "expires_in_days": 181})
        assert too_long.status_code == 422
        garbage = http.post("/v1/verify", content=b"not a credential", headers={"Content-Type": "text/plain"})
        assert garbage.status_code == 200 and garbage.json()["failures"] == ["malformed"]
        assert http.post("/v1/verify/batch", json={"credentials": []}).status_code == 422


def test_text_no_database_can_hold_is_refused_before_anything_happens(env: Path, db_url: str) -> None:
    """NUL characters and over-long keys: PostgreSQL refuses them where SQLite stores them.
    Both refuse them here the same way, as bad input, before anything reaches the chain."""
    with served_network(env / "data", db_url) as served:
        http, school = served.http, served.as_org("school-a")
        issued = served.issue("school-a", "transcript", [transcript_row(1, courses=2)]).json()
        cid = issued["credentials"][0]["credential_id"]
        head = served.node.client.block_number()

        bad_note = http.post(f"/v1/credentials/{cid}/status", headers=school,
                             json={"action": "revoke", "note": "bad\u0000note"})
        assert bad_note.status_code == 422 and bad_note.json()["code"] == "bad_note"
        correction = http.post(f"/v1/credentials/{cid}/correct", headers=school,
                               json={"credential": transcript_row(1, courses=3), "note": "bell\u0007"})
        assert correction.status_code == 422 and correction.json()["code"] == "bad_note"
        for key in (b"k" * 81, "caf\xe9".encode("latin-1")):
            headers = [(k.encode(), v.encode()) for k, v in school.items()] + [(b"Idempotency-Key", key)]
            refused = http.post("/v1/credentials", headers=headers,
                                json={"type": "transcript", "credentials": [transcript_row(2)]})
            assert refused.status_code == 422 and refused.json()["code"] == "bad_idempotency_key"
        assert served.node.client.block_number() == head  # nothing was sent to the chain
        record = http.get(f"/v1/credentials/{cid}", params={"purpose": "test"}, headers=school).json()
        assert record["status"] == "valid"

        nul_id = http.get("/v1/credentials/urn:uuid:%00", params={"purpose": "test"}, headers=school)
        assert nul_id.status_code == 422 and nul_id.json()["code"] == "nul_in_text"
        for share_id in ("%00", "x" * 16, "x" * 300):
            page = http.get(f"/s/{share_id}", headers={"Accept": "text/html"})
            assert page.status_code == 404 and "分享链接不存在" in page.text
            answer = http.get(f"/s/{share_id}", headers={"Accept": "application/json"})
            assert answer.status_code == 404 and answer.json()["code"] == "share_not_found"
            assert http.get(f"/s/{share_id}/qr.png").status_code == 404


def test_a_revocation_made_elsewhere_reaches_this_nodes_rows(env: Path) -> None:
    """The bureau revokes through its own node (here: straight on the contract); the
    background pass of this node writes it into the credential row that the API shows."""
    with served_network(env / "data", background=True) as served:
        batch = served.issue("school-a", "transcript", [transcript_row(1, courses=2)]).json()
        issued = batch["credentials"][0]
        anchor = AnchorProof.from_dict(issued["anchor"])
        services = served.app.state.services
        services.credentials.registry.revoke(services.keys_for("bureau").account, anchor.leaf,
                                             anchor.root, anchor.proof_bytes(), 5)
        deadline = time.monotonic() + 60
        while True:
            record = served.http.get(f"/v1/credentials/{issued['credential_id']}", params={"purpose": "test"},
                                     headers=served.as_org("school-a")).json()
            if record["status"] != "valid" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (record["status"], record["status_reason"], record["status_note"]) == ("revoked", 5, None)


def test_presentation_with_foreign_disclosure_fails(env: Path) -> None:
    with served_network(env / "data") as served:
        batch = served.issue("school-a", "transcript", [transcript_row(1), transcript_row(2)]).json()
        wallet = Wallet.create(env / "w", scrypt_n=2**10)
        a = redeem_into(wallet, served, batch["credentials"][0]["claim_code"])
        b = redeem_into(wallet, served, batch["credentials"][1]["claim_code"])
        foreign = b["sd_jwt"].split("~")[1]
        mixed = a["sd_jwt"] + foreign + "~"
        verdict = served.http.post("/v1/verify", json={"credential": mixed}).json()
        assert "claim_tampered" in verdict["failures"]
        # Plain JSON all the way down: it survives a round trip unchanged.
        assert json.loads(json.dumps(verdict)) == verdict == copy.deepcopy(verdict)


def test_deeply_nested_json_is_refused_not_a_crash(env: Path) -> None:
    with served_network(env / "data") as served:
        deep = b"[" * 100_000
        for path, headers in [("/v1/credentials", served.as_org("school-a")),
                              ("/v1/claims/redeem", {}), ("/v1/verify", {}), ("/v1/shares", {})]:
            r = served.http.post(path, content=deep, headers={**headers, "Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
        assert served.http.get("/health").json()["status"] == "ok"


def test_issuer_did_resolves_to_a_document_from_the_chain(env: Path) -> None:
    with served_network(env / "data") as served:
        deployment = served.node.deployment
        assert deployment is not None
        school = deployment.organisations["school-a"]
        did = f"did:eduledger:{deployment.chain_id}:{deployment.consortium.lower()}:{school['member_id']}"
        doc = served.http.get(f"/v1/dids/{did}").json()
        assert doc["id"] == did and doc["role"] == "school" and doc["status"] == "active"
        [method] = doc["verificationMethod"]
        assert method["id"] == f"{did}#ed25519-{school['signing_key']}"
        assert method["publicKeyJwk"]["crv"] == "Ed25519" and method["validUntilBlock"] is None
        assert doc["assertionMethod"] == [method["id"]]
        # The kid in an issued credential is exactly this verification method.
        batch = served.issue("school-a", "transcript", [transcript_row(1, courses=1)]).json()
        from ledger.credentials import sdjwt
        from ledger.node import NodeServices

        record = NodeServices(served.node).credentials.get(batch["credentials"][0]["credential_id"])
        assert sdjwt.parse(record.sd_jwt).header["kid"] == method["id"]
        other = f"did:eduledger:{deployment.chain_id}:{deployment.consortium.lower()}:99"
        assert served.http.get(f"/v1/dids/{other}").status_code == 404
        bad = served.http.get("/v1/dids/did:web:example.com")
        assert bad.status_code == 422 and bad.json()["code"] == "bad_did"


def test_an_oversized_roster_is_refused_whole(env: Path) -> None:
    with served_network(env / "data") as served:
        head = served.node.client.block_number()
        big = b"holder_name,student_id\n" + b"x" * (21 * 2**20)
        r = served.http.post("/v1/credentials?type=transcript", content=big,
                             headers={**served.as_org("school-a"), "Content-Type": "text/csv"})
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        assert served.node.client.block_number() == head
