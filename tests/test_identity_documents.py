"""Documents encrypted to a card's holder, and the holder's own access (holder proofs).

The node makes the JWEs with joserfc; here they are opened with jwcrypto, an independent
JOSE implementation, and a JWE jwcrypto makes to the wallet's key is opened by the wallet.
The holder's X25519 key in the HTTP test is made by jwcrypto too, and its RFC 7638
thumbprint (the JWEs' kid) computed by jwcrypto."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwcrypto import jwe as jw_jwe
from jwcrypto import jwk as jw_jwk
from jwcrypto.common import JWException
from sqlalchemy import func
from sqlmodel import select

from ledger.audit.models import AccessLogRow
from ledger.credentials import jose, sdjwt
from ledger.identity.holder_auth import make_proof
from ledger.identity.models import IdentityCard, IdentityDocument, IdentityHolderProof
from ledger.store import session_scope
from tests.credential_fixtures import served_network
from tests.identity_fixtures import roster_zip, student

CARDS = "/v1/identity/cards"
PDF = b"%PDF-1.7\n% grade sheet MARKER-7f3a9c for the holder only\n%%EOF\n"
NAME = "成绩单-学生0001.pdf"



def _x25519() -> jw_jwk.JWK:
    return jw_jwk.JWK.generate(kty="OKP", crv="X25519")


def _public(key: jw_jwk.JWK) -> dict[str, Any]:
    public: dict[str, Any] = key.export_public(as_dict=True)
    return public


def _open(token: str, key: jw_jwk.JWK) -> tuple[bytes, dict[str, Any]]:
    """jwcrypto opens a node-made JWE (only ECDH-ES+A256KW with A256GCM allowed)."""
    opened = jw_jwe.JWE(algs=["ECDH-ES+A256KW", "A256GCM"])
    opened.deserialize(token, key=key)
    return opened.payload, json.loads(opened.objects["protected"])


def _count(served: Any, table: type) -> int:
    with session_scope(served.node.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _as_holder(key: Ed25519PrivateKey, card_id: str, path: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"HolderProof {make_proof(key, card_id, 'GET', path, **kwargs)}"}


def _signed(key: Ed25519PrivateKey, header: dict[str, Any] | None, card_id: str, path: str,
            **changes: Any) -> dict[str, str]:
    """A holder proof with its header or payload fields changed (`None` drops a field)."""
    payload = {"sub": card_id, "htm": "GET", "htu": path, "iat": int(time.time()), "jti": "j" * 22, **changes}
    payload = {k: v for k, v in payload.items() if v is not None}
    header = header or {"alg": "EdDSA", "typ": "holder-proof+jwt"}
    if header["alg"] == "none":  # unsigned: what sign_jws refuses to make
        text = jose.b64url(jose.json_dumps(header)) + "." + jose.b64url(jose.json_dumps(payload)) + ".AA"
    else:
        text = jose.sign_jws(header, payload, key)
    return {"Authorization": f"HolderProof {text}"}


def _issue(served: Any, rows: list[dict[str, object]]) -> list[dict[str, Any]]:
    r = served.http.post(CARDS, params={"kind": "student"}, content=roster_zip(rows),
                         headers={**served.as_org("school-a"), "Content-Type": "application/zip"})
    assert r.status_code == 201, r.text
    cards: list[dict[str, Any]] = r.json()["cards"]
    return cards


def _claim(served: Any, code: str,
           encryption: dict[str, Any] | None) -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    holder = Ed25519PrivateKey.generate()
    body: dict[str, Any] = {"code": code, "holder_jwk": jose.ed25519_jwk(holder.public_key())}
    if encryption is not None:
        body["encryption_jwk"] = encryption
    r = served.http.post("/v1/identity/claims/redeem", json=body)
    assert r.status_code == 200, r.text
    return holder, r.json()


def test_a_document_to_the_holder_opens_only_with_their_key(env: Path) -> None:
    with served_network(env / "data") as served:
        school, bureau = served.as_org("school-a"), served.as_org("bureau")
        a, b, c = _issue(served, [student(1), student(2), student(3)])

        # A bad encryption key is refused by name, and the claim code stays usable.
        redeem = "/v1/identity/claims/redeem"
        ed = jose.ed25519_jwk(Ed25519PrivateKey.generate().public_key())
        enc_a = _x25519()
        for bad, code in [({"kty": "RSA", "n": "x", "e": "AQAB"}, "bad_encryption_jwk"),
                          ({**ed}, "bad_encryption_jwk"),  # an Ed25519 key: it signs, it does not encrypt
                          ({"kty": "OKP", "crv": "X25519", "x": "AAAA"}, "bad_encryption_jwk"),
                          ({**_public(enc_a), "use": "sig"}, "bad_encryption_jwk"),
                          (enc_a.export_private(as_dict=True), "encryption_jwk_private")]:
            r = served.http.post(redeem, json={"code": a["claim_code"], "holder_jwk": ed,
                                               "encryption_jwk": bad})
            assert r.status_code == 422 and r.json()["code"] == code, (bad, r.text)
        holder_a, card_a = _claim(served, a["claim_code"], _public(enc_a))
        enc_b = _x25519()
        holder_b, _ = _claim(served, b["claim_code"], _public(enc_b))
        _claim(served, c["claim_code"], None)  # a wallet that sent no encryption key

        # The card lists the key, and the card itself (signed by the school) binds its thumbprint.
        kid = enc_a.thumbprint()  # RFC 7638, by jwcrypto
        view = served.http.get(f"{CARDS}/{a['card_id']}", params={"purpose": "send a document"},
                               headers=school).json()
        assert view["encryption_jwk"] == _public(enc_a) and view["encryption_kid"] == kid
        assert sdjwt.parse(card_a["sd_jwt"]).payload["encryptionKeyThumbprint"] == kid

        # The school sends a PDF (raw body); the bureau sends a note (JSON with base64).
        docs = f"{CARDS}/{a['card_id']}/documents"
        sent = served.http.post(docs, params={"filename": NAME}, content=PDF,
                                headers={**school, "Content-Type": "application/pdf"})
        assert sent.status_code == 201, sent.text
        pdf = sent.json()
        assert (pdf["kid"], pdf["alg"], pdf["enc"], pdf["size"], pdf["media_type"], pdf["sender_org"]) == (
            kid, "ECDH-ES+A256KW", "A256GCM", len(PDF), "application/pdf", "school-a")
        note = served.http.post(docs, headers=bureau, json={
            "content_base64": base64.b64encode("请于周五前确认。".encode()).decode(), "filename": "通知.txt",
            "media_type": "text/plain; charset=utf-8"})
        assert note.status_code == 201, note.text
        # Only ciphertext is kept: neither the document nor its name is in the database.
        with session_scope(served.node.engine) as session:
            rows = session.exec(select(IdentityDocument)).all()
        stored = json.dumps([row.model_dump(mode="json") for row in rows], ensure_ascii=False)
        assert len(rows) == 2 and "MARKER-7f3a9c" not in stored and NAME not in stored
        database = Path(served.node.engine.url.database or "")
        assert database.is_file()  # SQLite: the file itself (and its WAL) holds neither
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert b"MARKER-7f3a9c" not in raw and NAME.encode() not in raw

        # The holder lists and fetches them with proofs made by the card's key.
        listed = served.http.get(docs, headers=_as_holder(holder_a, a["card_id"], docs))
        assert listed.status_code == 200, listed.text
        assert [d["document_id"] for d in listed.json()["documents"]] == [pdf["document_id"],
                                                                           note.json()["document_id"]]
        assert all("jwe" not in d for d in listed.json()["documents"])
        one = f"{docs}/{pdf['document_id']}"
        fetched = served.http.get(one, headers=_as_holder(holder_a, a["card_id"], one)).json()
        plaintext, header = _open(fetched["jwe"], enc_a)  # jwcrypto opens joserfc's JWE
        assert plaintext == PDF
        assert (header["alg"], header["enc"], header["kid"], header["cty"]) == (
            "ECDH-ES+A256KW", "A256GCM", kid, "application/pdf")
        assert header["epk"]["crv"] == "X25519"
        assert _open(fetched["name_jwe"], enc_a)[0].decode() == NAME
        second = f"{docs}/{note.json()['document_id']}"
        text = served.http.get(second, headers=_as_holder(holder_a, a["card_id"], second)).json()
        assert _open(text["jwe"], enc_a)[0].decode() == "请于周五前确认。"

        # Another card's key does not open it; altered ciphertext opens with no key.
        with pytest.raises(JWException):
            _open(fetched["jwe"], enc_b)
        parts = fetched["jwe"].split(".")
        parts[3] = ("B" if parts[3][0] == "A" else "A") + parts[3][1:]
        with pytest.raises(JWException):
            _open(".".join(parts), enc_a)
        from ledger.errors import InvalidInput
        from ledger.identity.documents import decrypt

        with pytest.raises(InvalidInput) as altered:
            decrypt(".".join(parts), enc_a.export_private(as_dict=True))
        assert altered.value.code == "document_unreadable"

        # Holder proofs that do not hold: each a named 401, and nothing is written.
        proofs, log, documents = (_count(served, IdentityHolderProof), _count(served, AccessLogRow),
                                  _count(served, IdentityDocument))
        reused = _as_holder(holder_a, a["card_id"], one)
        assert served.http.get(one, headers=reused).status_code == 200
        proofs, log = proofs + 1, log + 1
        now = int(time.time())
        refused = [
            ({}, "unauthenticated"),
            ({"Authorization": "HolderProof"}, "unauthenticated"),
            ({"Authorization": "HolderProof not.a.jws"}, "malformed_holder_proof"),
            (_as_holder(holder_b, a["card_id"], one), "holder_key_not_current"),  # another card's key
            (_as_holder(Ed25519PrivateKey.generate(), a["card_id"], one), "holder_key_not_current"),
            (_as_holder(holder_a, a["card_id"], docs), "holder_proof_mismatch"),  # made for another path
            (_as_holder(holder_a, b["card_id"], one), "holder_proof_mismatch"),  # for another card
            ({"Authorization": "HolderProof " + make_proof(holder_a, a["card_id"], "POST", one)},
             "holder_proof_mismatch"),
            (_as_holder(holder_a, a["card_id"], one, now=now - 121), "holder_proof_expired"),
            (_as_holder(holder_a, a["card_id"], one, now=now + 300), "holder_proof_expired"),
            (reused, "holder_proof_replayed"),
            (school, "unauthenticated"),  # an API key is not the holder
            (_signed(holder_a, {"alg": "none", "typ": "holder-proof+jwt"}, a["card_id"], one),
             "holder_key_not_current"),
            (_signed(holder_a, {"alg": "EdDSA", "typ": "JWT"}, a["card_id"], one), "malformed_holder_proof"),
            (_signed(holder_a, None, a["card_id"], one, iat=float(now)), "holder_proof_expired"),
            (_signed(holder_a, None, a["card_id"], one, iat=True), "holder_proof_expired"),
            (_signed(holder_a, None, a["card_id"], one, jti=None), "malformed_holder_proof"),
            (_signed(holder_a, None, a["card_id"], one, jti="short"), "malformed_holder_proof"),
        ]
        for headers, code in refused:
            r = served.http.get(one, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == code, (code, r.text)
        assert (_count(served, IdentityHolderProof), _count(served, AccessLogRow)) == (proofs, log)
        # A proof of card A for card B's documents: B's key did not sign it.
        b_docs = f"{CARDS}/{b['card_id']}/documents"
        assert served.http.get(b_docs, headers=_as_holder(holder_a, b["card_id"], b_docs)).json()[
            "code"] == "holder_key_not_current"
        assert served.http.get(f"{CARDS}/0x{'0' * 64}/documents",
                               headers=_as_holder(holder_a, "0x" + "0" * 64, docs)).status_code == 404
        missing = f"{docs}/{'A' * 22}"
        assert served.http.get(missing, headers=_as_holder(holder_a, a["card_id"], missing)).json()[
            "code"] == "document_not_found"
        # B's document list is B's alone.
        assert served.http.get(b_docs, headers=_as_holder(holder_b, b["card_id"], b_docs)).json()[
            "documents"] == []

        # Sending is refused by name, and writes nothing.
        documents = _count(served, IdentityDocument)
        octets = {**school, "Content-Type": "application/octet-stream"}
        refusals = [
            (f"{CARDS}/0x{'0' * 64}/documents", {"content": PDF, "headers": octets}, 404, "card_not_found"),
            (docs, {"content": PDF, "headers": {**served.as_org("school-b"), "Content-Type": "text/plain"}},
             404, "card_not_found"),  # another school's card: as if unknown
            (docs, {"content": PDF, "headers": {**served.as_org("partner"), "Content-Type": "text/plain"}},
             403, "role_not_allowed"),
            (docs, {"content": PDF, "headers": {"Content-Type": "text/plain"}}, 401, "unauthenticated"),
            (f"{CARDS}/{c['card_id']}/documents", {"content": PDF, "headers": octets}, 409,
             "no_encryption_key"),
            (docs, {"content": b"", "headers": octets}, 422, "empty_document"),
            (docs, {"content": b"x" * (8 * 2**20 + 1), "headers": octets}, 413, "document_too_large"),
            (docs, {"content": b"x" * (12 * 2**20 + 1), "headers": octets}, 413, "too_large"),
            (docs, {"content": PDF, "headers": octets, "params": {"filename": "../etc/passwd"}}, 422,
             "bad_filename"),
            (docs, {"content": PDF, "headers": {**school, "Content-Type": "not a type"}}, 422,
             "bad_media_type"),
            (docs, {"json": {"content_base64": "not base64!"}, "headers": school}, 422, "invalid_input"),
            (docs, {"json": {"content_base64": "QQ==", "extra": 1}, "headers": school}, 422, "invalid_input"),
        ]
        for path, kwargs, status, code in refusals:
            r = served.http.post(path, **kwargs)
            assert r.status_code == status and r.json()["code"] == code, (code, r.status_code, r.text[:300])
        status = f"{CARDS}/{b['card_id']}/status"
        assert served.http.post(status, headers=school, json={"action": "suspend"}).status_code == 200
        r = served.http.post(b_docs, content=PDF, headers=octets)
        assert r.status_code == 409 and r.json()["code"] == "card_not_active"
        assert _count(served, IdentityDocument) == documents

        # The holder reads their own card's history with a proof; the read is logged with a purpose.
        history = f"{CARDS}/{a['card_id']}/history"
        trace = served.http.get(history, headers=_as_holder(holder_a, a["card_id"], history),
                                params={"check": "chain"})
        assert trace.status_code == 200, trace.text
        assert [e["action"] for e in trace.json()["history"]] == ["issued", "key_bound"]
        assert all(e["chain"] == "confirmed" for e in trace.json()["history"])
        from ledger.audit.accesslog import AccessLog

        logged = AccessLog(served.node.engine).entries(0, 1000, resource_kind="identity_history")
        assert [(e.actor_role, e.resource_id) for e in logged] == [("holder", a["card_id"])]
        assert logged[0].purpose == "the holder reads their own card's history"
        b_history = f"{CARDS}/{b['card_id']}/history"
        assert served.http.get(b_history, headers=_as_holder(holder_a, b["card_id"], b_history)).json()[
            "code"] == "holder_key_not_current"  # not their card
        assert served.http.get(history, headers=served.as_org("auditor")).status_code == 200

        # Key rotation: a new claim code, redeemed with a new wallet's keys. A document sent
        # after it opens with the new encryption key only; the old holder key proves nothing.
        code = served.http.post(f"{CARDS}/{a['card_id']}/claim-code", headers=school).json()["claim_code"]
        enc_new = _x25519()
        holder_new, card_new = _claim(served, code, _public(enc_new))
        assert sdjwt.parse(card_new["sd_jwt"]).payload["encryptionKeyThumbprint"] == enc_new.thumbprint()
        after = served.http.post(docs, content=b"after the rotation", headers=octets).json()
        assert after["kid"] == enc_new.thumbprint()
        path = f"{docs}/{after['document_id']}"
        assert served.http.get(path, headers=_as_holder(holder_a, a["card_id"], path)).json()[
            "code"] == "holder_key_not_current"
        token = served.http.get(path, headers=_as_holder(holder_new, a["card_id"], path)).json()["jwe"]
        assert _open(token, enc_new)[0] == b"after the rotation"
        with pytest.raises(JWException):
            _open(token, enc_a)
        assert served.http.get(history, headers=_as_holder(holder_a, a["card_id"], history)).json()[
            "code"] == "holder_key_not_current"
        assert [e["action"] for e in served.http.get(
            history, headers=_as_holder(holder_new, a["card_id"], history)).json()["history"]] == [
            "issued", "key_bound", "key_rotated"]
        # A rotation whose wallet sends no encryption key leaves the card without one.
        code = served.http.post(f"{CARDS}/{a['card_id']}/claim-code", headers=school).json()["claim_code"]
        _claim(served, code, None)
        with session_scope(served.node.engine) as session:
            assert session.get(IdentityCard, a["card_id"]).encryption_jwk is None  # type: ignore[union-attr]
        assert served.http.post(docs, content=PDF, headers=octets).json()["code"] == "no_encryption_key"


def test_the_wallet_receives_and_opens_documents_through_the_cli(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import main as eduledger
    from wallet.holder import Wallet, WalletError

    with served_network(env / "data") as served:
        school = served.as_org("school-a")
        [mine] = _issue(served, [student(4)])
        wallet_dir = str(env / "wallet")
        assert eduledger(["wallet", "create", "--wallet-dir", wallet_dir]) == 0
        assert eduledger(["wallet", "claim-card", mine["claim_code"], "--wallet-dir", wallet_dir,
                          "--api", served.base]) == 0
        wallet = Wallet.open(wallet_dir)
        view = served.http.get(f"{CARDS}/{mine['card_id']}", params={"purpose": "send"},
                               headers=school).json()
        kid = view["encryption_kid"]
        key_file = next((Path(wallet_dir) / "encryption-keys").glob("*.json")).read_text()
        assert '"d"' not in key_file and '"kid": "' + kid in key_file  # the private part is sealed
        # The public key the wallet sent is X25519 (jwcrypto reads it and agrees on its thumbprint).
        assert jw_jwk.JWK(**view["encryption_jwk"]).thumbprint() == kid

        # The school sends a PDF with `eduledger identity send-document` (its API key from the environment).
        grades = env / NAME
        grades.write_bytes(PDF)
        send = ["identity", "send-document", mine["card_id"], str(grades), "--api", served.base]
        assert eduledger(send) == 2
        assert "EDULEDGER_API_KEY" in capsys.readouterr().err
        monkeypatch.setenv("EDULEDGER_API_KEY", served.api_keys["school-a"])
        unknown = ["identity", "send-document", "0x" + "0" * 64, str(grades), "--api", served.base]
        assert eduledger(unknown) == 2
        assert "no card" in capsys.readouterr().err
        assert eduledger(send) == 0
        said = capsys.readouterr().out
        assert "application/pdf" in said and kid in said
        with session_scope(served.node.engine) as session:
            [stored] = session.exec(select(IdentityDocument)).all()
        sent = {"document_id": stored.id}
        assert stored.media_type == "application/pdf" and stored.sender_org == "school-a"
        capsys.readouterr()
        assert eduledger(["wallet", "documents", mine["card_id"][:12], "--wallet-dir", wallet_dir,
                          "--api", served.base]) == 0
        listing = capsys.readouterr().out
        assert sent["document_id"] in listing and NAME in listing and "北京时间" in listing
        out = env / "opened.pdf"
        assert eduledger(["wallet", "open-document", mine["card_id"][:12], sent["document_id"],
                          "--wallet-dir", wallet_dir, "--api", served.base, "--out", str(out)]) == 0
        assert out.read_bytes() == PDF and (out.stat().st_mode & 0o777) == 0o600
        assert eduledger(["wallet", "open-document", mine["card_id"][:12], sent["document_id"],
                          "--wallet-dir", wallet_dir, "--api", served.base, "--out", str(out)]) == 2
        assert "exists already" in capsys.readouterr().err  # never overwrites

        # Vice versa: a JWE jwcrypto makes to the card's key opens in the wallet (joserfc).
        made = jw_jwe.JWE(b"made by jwcrypto", json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
                                                           "kid": kid}))
        made.add_recipient(jw_jwk.JWK(**view["encryption_jwk"]))
        plaintext, header = wallet.open_document(made.serialize(compact=True))
        assert plaintext == b"made by jwcrypto" and header["kid"] == kid
        # Another wallet holds no key for it.
        other = Wallet.create(env / "other")
        with pytest.raises(WalletError) as no_key:
            other.open_document(made.serialize(compact=True))
        assert no_key.value.code == "no_encryption_key"

        # The holder's own card history, through the CLI.
        capsys.readouterr()
        assert eduledger(["wallet", "card-history", mine["card_id"][:12], "--check-chain",
                          "--wallet-dir", wallet_dir, "--api", served.base]) == 0
        printed = capsys.readouterr().out
        assert "issued" in printed and "key_bound" in printed and "confirmed" in printed
        assert "北京时间" in printed
