"""Signatures and seals through HTTP: a teacher signs a grade sheet PDF in the wallet and the
school's node timestamps it; it verifies, and after the card is revoked a grade sheet signed
later fails while the first still verifies, with its time evidence. A school seals a PDF,
seals a CSV with a detached JWS and with SM2; every signature is also checked by another
implementation than the one that made it (pypdf + cryptography for PDFs, joserfc for the
JWS, snowland-smx for SM2)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from joserfc import jws as rfc_jws
from joserfc.jwk import OKPKey

from ledger.credentials import jose
from tests.credential_fixtures import served_network
from tests.signature_fixtures import grade_sheet, independent_pdf_check, marks_csv, teacher_wallet


def _verify(
    served: Any, document: bytes, signature: str | None = None, name: str = "file.pdf"
) -> dict[str, Any]:
    data = {"signature": signature} if signature is not None else None
    r = served.http.post("/v1/signatures/verify", files={"document": (name, document)}, data=data)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _certificate(served: Any, wallet: Any, card_id: str) -> dict[str, Any]:
    signer = wallet.card_signer(card_id)
    r = served.http.post(
        "/v1/signatures/certificates",
        json={
            "card_id": card_id,
            "holder_jwk": wallet.holder_jwk,
            "key_salt": signer["key_salt"],
            "proof": wallet.signing_proof(card_id),
        },
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_a_teacher_signs_a_grade_sheet_and_revocation_stops_later_signatures(env: Path) -> None:
    with served_network(env / "data") as served:
        wallet, card_id = teacher_wallet(served, env / "wallet")
        cert = _certificate(served, wallet, card_id)
        assert "教师" not in cert["certificate_pem"]  # the subject is the opaque card id, no name
        signed = wallet.sign_pdf(card_id, grade_sheet(), cert["certificate_pem"], cert["chain_pem"])
        recorded = served.http.post(
            "/v1/signatures/holder", content=signed, headers={"Content-Type": "application/pdf"}
        )
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["recorded"][0]["valid"] is True
        again = served.http.post(
            "/v1/signatures/holder", content=signed, headers={"Content-Type": "application/pdf"}
        )
        assert again.status_code == 422 and again.json()["code"] == "no_holder_signature"  # once

        first = _verify(served, signed)
        assert first["valid"] is True and first["count"] == 1, first
        verdict = first["signatures"][0]
        assert verdict["signer"]["type"] == "card" and verdict["signer"]["card_id"] == card_id
        assert verdict["signer"]["role"] == "teacher" and verdict["signer"]["role_zh"] == "教师"
        assert verdict["signer"]["school"]["name_zh"] == "示范区第一中学"
        assert verdict["timestamp"]["status"] == "anchored" and verdict["timestamp"][
            "block_time_beijing"
        ].endswith("+08:00")
        assert verdict["at_signing"]["card_status"] == "active"
        # Another implementation agrees: pypdf + asn1crypto + cryptography.
        [checked] = independent_pdf_check(signed)
        assert checked["covers_file"] and card_id[2:] in checked["subject"]

        # The school revokes the card; the teacher signs another grade sheet with the same
        # certificate (a new one is refused now).
        revoke = served.http.post(
            f"/v1/identity/cards/{card_id}/status",
            headers=served.as_org("school-a"),
            json={"action": "revoke", "reason": 2},
        )
        assert revoke.status_code == 200, revoke.text
        refused = served.http.post(
            "/v1/signatures/certificates",
            json={
                "card_id": card_id,
                "holder_jwk": wallet.holder_jwk,
                "key_salt": wallet.card_signer(card_id)["key_salt"],
                "proof": wallet.signing_proof(card_id),
            },
        )
        assert refused.status_code == 409 and refused.json()["code"] == "card_not_active"
        later = wallet.sign_pdf(
            card_id, grade_sheet("2025-2026学年第二学期"), cert["certificate_pem"], cert["chain_pem"]
        )
        late = served.http.post(
            "/v1/signatures/holder", content=later, headers={"Content-Type": "application/pdf"}
        )
        assert late.status_code == 200, late.text
        assert late.json()["recorded"][0]["failures"] == ["card_not_active_at_signing"]
        after = _verify(served, later)
        assert after["valid"] is False and after["failures"] == ["card_not_active_at_signing"]
        assert after["signatures"][0]["at_signing"]["card_status"] == "revoked"
        # The first still verifies: signed (anchored) before the revocation, which it reports.
        still = _verify(served, signed)
        assert still["valid"] is True, still
        view = still["signatures"][0]
        assert view["now"]["card_status"] == "revoked" and view["at_signing"]["card_status"] == "active"
        assert view["now"]["last_change_block"] > view["timestamp"]["block_number"]

        # The school seals the signed grade sheet too: both signatures verify.
        sealed = served.http.post(
            "/v1/signatures",
            content=signed,
            headers={**served.as_org("school-a"), "Content-Type": "application/pdf"},
        )
        assert sealed.status_code == 201, sealed.text
        both = base64.b64decode(sealed.json()["signed_pdf_base64"])
        twice = _verify(served, both)
        assert twice["valid"] is True and twice["count"] == 2, twice
        assert [s["signer"]["type"] for s in twice["signatures"]] == ["card", "member"]
        seal = twice["signatures"][1]["signer"]
        assert seal["role"] == "school" and seal["name_zh"] == "示范区第一中学"
        assert len(independent_pdf_check(both)) == 2

        # One byte changed inside the signed range: altered.
        at = both.index(b"/Contents", 0) - 40
        tampered = both[:at] + bytes([both[at] ^ 0x01]) + both[at + 1 :]
        assert "document_altered" in _verify(served, tampered)["failures"]


def test_detached_signatures_of_a_csv_jws_and_sm2(env: Path) -> None:
    from pysmx.SM2 import Verify as smx_verify

    with served_network(env / "data") as served:
        school = {**served.as_org("school-a"), "Content-Type": "text/csv"}
        made = served.http.post(
            "/v1/signatures",
            params={"format": "jws", "name": "marks.csv"},
            content=marks_csv(),
            headers=school,
        )
        assert made.status_code == 201, made.text
        token = made.json()["signature"]
        verdict = _verify(served, marks_csv(), token, "marks.csv")
        assert verdict["valid"] is True and verdict["signatures"][0]["signer"]["org_id"] == "school-a"
        # joserfc verifies the JWS with the member's key from its DID document.
        did = verdict["signatures"][0]["signer"]["did"]
        document = served.http.get(f"/v1/dids/{did}").json()
        jwk = document["verificationMethod"][0]["publicKeyJwk"]
        opened = rfc_jws.deserialize_compact(token, OKPKey.import_key(jwk), algorithms=["EdDSA"])
        assert json.loads(opened.payload)["document"]["name"] == "marks.csv"
        altered = _verify(served, marks_csv() + b"x", token, "marks.csv")
        assert altered["failures"] == ["document_altered"]

        sm2 = served.http.post(
            "/v1/signatures", params={"format": "sm2"}, content=marks_csv(), headers=school
        )
        assert sm2.status_code == 201, sm2.text
        sealed = sm2.json()["signature"]
        ok = _verify(served, marks_csv(), sealed, "marks.csv")
        assert ok["valid"] is True and ok["signatures"][0]["format"] == "sm2", ok
        # snowland-smx, another SM2 implementation, verifies the seal: e = SM3(Z_A || M).
        header_b64, payload_b64, sig_b64 = sealed.split(".")
        header = json.loads(jose.b64url_decode(header_b64))
        signature = jose.b64url_decode(sig_b64)
        message = f"{header_b64}.{payload_b64}".encode()
        public = header["sm2"]["public_key"]
        assert smx_verify(signature.hex(), message, public, 64, uid=header["sm2"]["uid"]) is True
        assert smx_verify(signature.hex(), message + b"x", public, 64, uid=header["sm2"]["uid"]) is False
