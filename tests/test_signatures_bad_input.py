"""Every bad input gets its named reason: a signature made after the card was suspended, a
key rotated away, a signer the network does not know, no anchor (absent, and pending),
garbage, a file without its signature, a broken PDF, an unsigned PDF; and the refusals of
recording and sealing (4xx with a code, nothing changed)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.contracts.bindings import AnchorKind
from ledger.signatures.detached import document_manifest, parse_detached, sign_detached
from ledger.signatures.models import SignatureRecord
from ledger.signatures.service import _Record, signature_leaf
from tests.credential_fixtures import served_network
from tests.signature_fixtures import grade_sheet, marks_csv, teacher_wallet
from wallet.holder import Wallet


def _verify(
    served: Any, document: bytes, signature: str | None = None, *, expect: int = 200
) -> dict[str, Any]:
    r = served.http.post(
        "/v1/signatures/verify",
        files={"document": ("f", document)},
        data={"signature": signature} if signature is not None else None,
    )
    assert r.status_code == expect, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _record(served: Any, token: str, expect: int = 200) -> dict[str, Any]:
    r = served.http.post("/v1/signatures/holder", json={"signature": token})
    assert r.status_code == expect, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_each_bad_input_has_its_named_reason(env: Path) -> None:
    with served_network(env / "data") as served:
        school = served.as_org("school-a")
        wallet, card_id = teacher_wallet(served, env / "wallet")
        csv = marks_csv()

        # Signed before the suspension: valid. Signed after: card_not_active_at_signing.
        before = wallet.sign_detached(card_id, csv, name="marks.csv")
        assert _record(served, before)["recorded"][0]["valid"] is True
        served.http.post(f"/v1/identity/cards/{card_id}/status", headers=school, json={"action": "suspend"})
        after = wallet.sign_detached(card_id, csv + b"\n", name="marks.csv")
        verdict = _record(served, after)["recorded"][0]
        assert verdict["failures"] == ["card_not_active_at_signing"]
        assert verdict["at_signing"]["card_status"] == "suspended"
        assert _verify(served, csv, before)["valid"] is True
        served.http.post(f"/v1/identity/cards/{card_id}/status", headers=school, json={"action": "reinstate"})
        # Reinstated later: the signature made while suspended still fails (judged at its anchor).
        assert _verify(served, csv + b"\n", after)["failures"] == ["card_not_active_at_signing"]

        # Tampered document.
        assert _verify(served, csv + b"x", before)["failures"] == ["document_altered"]

        # Not anchored: a signature the node never recorded; pending: recorded, chain not yet.
        unrecorded = wallet.sign_detached(card_id, b"never recorded")
        assert _verify(served, b"never recorded", unrecorded)["failures"] == ["not_anchored"]
        waiting = wallet.sign_detached(card_id, b"waiting")
        services = served.app.state.services
        leaf = signature_leaf(parse_detached(waiting).signature)
        services.anchoring.accept(
            "school-a",
            AnchorKind.SIGNATURE,
            [leaf],
            records=_Record(
                SignatureRecord(
                    leaf_hash="0x" + leaf.hex(),
                    format="jws",
                    signer_kind="card",
                    signer=card_id,
                    member_org="school-a",
                    document_sha256="0" * 64,
                    batch_id="",
                )
            ),
        )
        assert _verify(served, b"waiting", waiting)["failures"] == ["anchor_pending"]

        # The key rotated: a new claim code redeemed into a new wallet. The old key's signature
        # made before still verifies; one made after is refused for recording and fails.
        code = served.http.post(f"/v1/identity/cards/{card_id}/claim-code", headers=school).json()[
            "claim_code"
        ]
        new_wallet = Wallet.create(env / "new-wallet", "new passphrase", scrypt_n=2**10)
        new_wallet.add_card(
            served.http.post(
                "/v1/identity/claims/redeem", json={"code": code, "holder_jwk": new_wallet.holder_jwk}
            ).json()
        )
        stale = wallet.sign_detached(card_id, b"old key")
        assert _record(served, stale, expect=403)["code"] == "holder_key_mismatch"
        assert set(_verify(served, b"old key", stale)["failures"]) == {
            "not_anchored",
            "holder_key_not_current",
        }
        assert _verify(served, csv, before)["valid"] is True
        fresh = new_wallet.sign_detached(card_id, b"new key")
        assert _record(served, fresh)["recorded"][0]["valid"] is True

        # An unknown signer: a key that is no member's, naming school-a's DID.
        did = served.http.post(
            "/v1/signatures", params={"format": "jws"}, content=csv, headers=school
        ).json()["signer"]["did"]
        stranger = Ed25519PrivateKey.generate()
        forged = sign_detached(
            document_manifest(csv),
            {"type": "member", "did": did},
            kid=f"{did}#ed25519-{stranger.public_key().public_bytes_raw().hex()}",
            key=stranger,
        )
        assert _verify(served, csv, forged)["failures"] == ["not_anchored", "signer_unknown"]

        # Malformed signatures, missing signatures, broken and unsigned PDFs.
        assert _verify(served, csv, "not.a.signature", expect=422)["code"] == "malformed_signature"
        assert _verify(served, csv, expect=422)["code"] == "signature_missing"
        assert _verify(served, b"%PDF-1.7\n garbage", expect=422)["code"] == "malformed_pdf"
        unsigned = _verify(served, grade_sheet())
        assert unsigned["valid"] is False and unsigned["failures"] == ["not_signed"]
        pdf_seal = served.http.post("/v1/signatures", content=grade_sheet(), headers=school).json()
        sealed_pdf = base64.b64decode(pdf_seal["signed_pdf_base64"])
        cut = sealed_pdf.replace(b"/Reason", b"/Reasom", 1)  # inside the signed range
        assert _verify(served, cut)["failures"] == ["document_altered"]

        # Refusals that change nothing.
        for token, status, code in [
            ("x" * 20, 422, "malformed_signature"),
            (
                served.http.post(
                    "/v1/signatures", params={"format": "jws"}, content=csv, headers=school
                ).json()["signature"],
                422,
                "not_a_holder_signature",
            ),
        ]:
            assert _record(served, token, expect=status)["code"] == code
        assert (
            served.http.post(
                "/v1/signatures/holder", content=grade_sheet(), headers={"Content-Type": "application/pdf"}
            ).json()["code"]
            == "no_holder_signature"
        )
        assert (
            served.http.post(
                "/v1/signatures/holder", content=b"x", headers={"Content-Type": "text/plain"}
            ).json()["code"]
            == "bad_format"
        )
        for params, body, code in [
            ({"format": "pdf"}, csv, "not_a_pdf"),
            ({}, b"", "empty_document"),
            ({"format": "rsa"}, csv, "invalid_input"),
        ]:
            r = served.http.post("/v1/signatures", params=params, content=body, headers=school)
            assert r.status_code == 422 and r.json()["code"] == code, r.text
        auditor = served.http.post("/v1/signatures", content=csv, headers=served.as_org("auditor"))
        assert auditor.status_code == 403
