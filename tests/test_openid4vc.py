"""Standard wallets: an independent OpenID4VCI / OpenID4VP wallet (tests/js/wallet.mjs, the
@openid4vc and @sd-jwt npm packages) receives an eduledger credential and presents it; the
SD-JWT VC is also checked by generic SD-JWT VC verifiers (@sd-jwt/sd-jwt-vc and the `sd-jwt`
PyPI package)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from ledger.credentials import jose
from ledger.credentials.did import parse_key_id
from tests.credential_fixtures import Served, served_network
from wallet.qr import decode_qr_png

REPO = Path(__file__).resolve().parents[1]
NODE_MODULES = Path(os.environ.get("EDULEDGER_NODE_MODULES", REPO / ".tools" / "node_modules"))
_numbers = iter(range(1, 10_000))


def graduation() -> dict[str, Any]:
    n = next(_numbers)
    return {"holder_name": "张三", "student_id": f"S2026{n:04d}", "program": "计算机科学与技术",
            "education_level": "bachelor", "start_date": "2022-09-01", "graduation_date": "2026-06-30",
            "certificate_number": f"1000012026{n:08d}"}

needs_wallet = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "@openid4vc" / "openid4vci").is_dir(),
    reason="the OpenID4VC test wallet is not installed (scripts/test installs it: eduledger_openid4vc)")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("oid4vc")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "oid4vc passphrase")
        mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
        from ledger.keys import clear_keystore_cache

        clear_keystore_cache()
        with served_network(data / "data") as s:
            yield s


@pytest.fixture(scope="module")
def wallet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wallet script next to the npm packages (ES modules resolve from the script's place)."""
    where = tmp_path_factory.mktemp("wallet-js")
    shutil.copy(REPO / "tests" / "js" / "wallet.mjs", where / "wallet.mjs")
    (where / "node_modules").symlink_to(NODE_MODULES)
    return where


def run_wallet(where: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    proc = subprocess.run(["node", str(where / "wallet.mjs"), *args], capture_output=True, text=True,
                          timeout=120, cwd=where)
    out: dict[str, Any] = json.loads(proc.stdout) if proc.stdout.strip() else {"stderr": proc.stderr}
    assert (proc.returncode == 0) is ok, (proc.returncode, out, proc.stderr[-2000:])
    return out


def issue(served: Served, ctype: str = "graduation", row: dict[str, Any] | None = None) -> dict[str, Any]:
    r = served.issue("school-a", ctype, [row or graduation()])
    assert r.status_code == 201, r.text
    credential: dict[str, Any] = r.json()["credentials"][0]
    return credential


def offer_of(served: Served, credential_id: str) -> dict[str, Any]:
    r = served.http.get(f"/v1/credentials/{credential_id}/offer", headers=served.as_org("school-a"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def issuer_jwk(sd_jwt: str) -> dict[str, Any]:
    header, _, _, _ = jose.decode_jws_unverified(sd_jwt.split("~", 1)[0])
    _, raw = parse_key_id(header["kid"])
    return jose.ed25519_jwk(raw)


# -- the offer and metadata, read as a wallet reads them -------------------------------------


def test_offer_url_and_qr_carry_the_claim_code(served: Served) -> None:
    issued = issue(served)
    body = offer_of(served, issued["credential_id"])
    url = urlparse(body["offer_url"])
    assert url.scheme == "openid-credential-offer"
    offer = json.loads(parse_qs(url.query)["credential_offer"][0])
    assert offer == body["credential_offer"]
    assert offer["credential_issuer"] == served.base
    assert offer["credential_configuration_ids"] == ["graduation_dc+sd-jwt"]
    grant = offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    assert grant == {"pre-authorized_code": issued["claim_code"]}
    png = served.http.get(body["qr_png_url"], headers=served.as_org("school-a"))
    assert png.headers["content-type"] == "image/png"
    assert decode_qr_png(png.content) == [body["offer_url"]]
    # another school's credential is not found; one already claimed has no offer any more
    other = served.http.get(f"/v1/credentials/{issued['credential_id']}/offer",
                            headers=served.as_org("school-b"))
    assert other.status_code == 404 and other.json()["code"] == "credential_not_found"


def test_metadata(served: Served) -> None:
    meta = served.http.get("/.well-known/openid-credential-issuer").json()
    assert meta["credential_issuer"] == served.base
    assert meta["nonce_endpoint"] == served.base + "/oid4vci/nonce"
    config = meta["credential_configurations_supported"]["transcript_dc+sd-jwt"]
    assert config["format"] == "dc+sd-jwt" and config["vct"] == "urn:eduledger:credential:transcript"
    assert config["proof_types_supported"] == {"jwt": {"proof_signing_alg_values_supported": ["EdDSA"]}}
    assert {d["locale"]: d["name"] for d in config["credential_metadata"]["display"]} == {
        "zh-CN": "成绩单", "en": "Transcript"}
    auth = served.http.get("/.well-known/oauth-authorization-server").json()
    assert auth["token_endpoint"] == served.base + "/oid4vci/token"
    assert auth["pre-authorized_grant_anonymous_access_supported"] is True
    paths = served.http.get("/openapi.json").json()["paths"]
    assert "/v1/credentials/{credential_id}/offer" in paths
    assert not any(p.startswith(("/oid4vci", "/.well-known")) for p in paths)


# -- the independent wallet ----------------------------------------------------------------


@needs_wallet
def test_standard_wallet_receives_the_credential(served: Served, wallet_dir: Path) -> None:
    issued = issue(served)
    offer = offer_of(served, issued["credential_id"])
    got = run_wallet(wallet_dir, "receive", offer["offer_url"])
    assert got["configurationId"] == "graduation_dc+sd-jwt" and got["tokenType"] == "Bearer"
    sd_jwt = got["credential"]
    # bound to the wallet's key, and it verifies here as a redeemed credential does
    _, payload, _, _ = jose.decode_jws_unverified(sd_jwt.split("~", 1)[0])
    assert payload["cnf"]["jwk"] == {k: got["publicJwk"][k] for k in ("kty", "crv", "x")}
    verdict = served.http.post("/v1/verify", json={"sd_jwt": sd_jwt}).json()
    assert verdict["valid"], verdict
    assert verdict["claims"]["credentialSubject"]["holderName"] == "张三"
    # the code is used up: the token endpoint and the old redemption refuse it, the offer is gone
    code = issued["claim_code"]
    again = served.http.post("/oid4vci/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code", "pre-authorized_code": code})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert served.http.post("/v1/claims/redeem", json={"code": code, "holder_jwk": got["publicJwk"]}
                            ).json()["code"] == "claim_already_redeemed"
    gone = served.http.get(f"/v1/credentials/{issued['credential_id']}/offer",
                           headers=served.as_org("school-a"))
    assert gone.status_code == 409 and gone.json()["code"] == "claim_already_redeemed"
    # a generic SD-JWT VC verifier (@sd-jwt/sd-jwt-vc) accepts it with the issuer's key
    checked = run_wallet(wallet_dir, "check", sd_jwt, json.dumps(issuer_jwk(sd_jwt)))
    assert checked["header"]["typ"] == "dc+sd-jwt"
    assert checked["payload"]["vct"] == "urn:eduledger:credential:graduation"
    assert checked["payload"]["iss"] == verdict["issuer"]["id"]
    assert checked["payload"]["cnf"] == payload["cnf"]
    assert checked["payload"]["credentialSubject"]["holderName"] == "张三"
    # and so does the `sd-jwt` PyPI package's verifier, which finds the key by `iss`
    from jwcrypto.jwk import JWK
    from sd_jwt.verifier import SDJWTVerifier

    asked: list[str] = []

    def key_of(iss: str, header: dict[str, Any]) -> Any:
        asked.append(iss)
        return JWK.from_json(json.dumps(issuer_jwk(sd_jwt)))

    theirs = SDJWTVerifier(sd_jwt, key_of).get_verified_payload()
    assert asked == [verdict["issuer"]["id"]] and theirs["vct"] == "urn:eduledger:credential:graduation"
    assert theirs["credentialSubject"] == verdict["claims"]["credentialSubject"]


# -- the protocol's errors, each named as the specification names it ------------------------


def _token(served: Served, code: str) -> str:
    r = served.http.post("/oid4vci/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code", "pre-authorized_code": code})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _proof(key: Any, aud: str, nonce: str | None, *, typ: str = "openid4vci-proof+jwt",
           iat: int | None = None) -> str:
    payload: dict[str, Any] = {"aud": aud, "iat": int(time.time()) if iat is None else iat}
    if nonce is not None:
        payload["nonce"] = nonce
    header = {"alg": "EdDSA", "typ": typ, "jwk": jose.ed25519_jwk(key.public_key())}
    return jose.sign_jws(header, payload, key)


def test_token_and_credential_errors(served: Served) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
    tok = served.http.post
    assert tok("/oid4vci/token", data={"grant_type": "password"}).json()["error"] == "unsupported_grant_type"
    assert tok("/oid4vci/token", data={"grant_type": grant}).json()["error"] == "invalid_request"
    assert tok("/oid4vci/token", json={"grant_type": grant}).json()["error"] == "invalid_request"
    unknown = tok("/oid4vci/token", data={"grant_type": grant, "pre-authorized_code": "AAAA-BBBB-CCCC-DDDD"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"

    issued = issue(served)
    token = _token(served, issued["claim_code"])
    auth = {"Authorization": f"Bearer {token}"}
    key = Ed25519PrivateKey.generate()

    def credential(body: Any, headers: dict[str, str] | None = None) -> tuple[int, str]:
        r = served.http.post("/oid4vci/credential", json=body, headers=auth if headers is None else headers)
        return r.status_code, r.json()["error"]

    def nonce() -> str:
        value: str = served.http.post("/oid4vci/nonce").json()["c_nonce"]
        return value

    config = "graduation_dc+sd-jwt"
    good = {"credential_configuration_id": config}
    assert credential(good, {}) == (401, "invalid_token")
    assert credential(good, {"Authorization": "Bearer nope"}) == (401, "invalid_token")
    assert credential({"credential_configuration_id": "transcript_dc+sd-jwt", "proofs": {"jwt": [
        _proof(key, served.base, nonce())]}}) == (400, "unknown_credential_configuration")
    assert credential(good) == (400, "invalid_proof")
    assert credential({**good, "proofs": {"jwt": [_proof(key, served.base, nonce(), typ="JWT")]}}
                      ) == (400, "invalid_proof")
    assert credential({**good, "proofs": {"jwt": [_proof(key, "https://elsewhere.example", nonce())]}}
                      ) == (400, "invalid_proof")
    assert credential({**good, "proofs": {"jwt": [_proof(key, served.base, nonce(), iat=1)]}}
                      ) == (400, "invalid_proof")
    assert credential({**good, "proofs": {"jwt": [_proof(key, served.base, None)]}}) == (400, "invalid_nonce")
    assert credential({**good, "proofs": {"jwt": [_proof(key, served.base, "made-up")]}}
                      ) == (400, "invalid_nonce")
    signed = _proof(key, served.base, nonce())
    forged = signed[:-4] + ("AAAA" if not signed.endswith("AAAA") else "BBBB")
    assert credential({**good, "proofs": {"jwt": [forged]}}) == (400, "invalid_proof")
    # nothing was issued by the failures: the code still works, with the draft's `proof` form
    used = nonce()
    ok = served.http.post("/oid4vci/credential", headers=auth, json={
        **good, "proof": {"proof_type": "jwt", "jwt": _proof(key, served.base, used)}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["credentials"][0]["credential"].count("~") >= 2
    # the token is spent with the code, and a nonce is good once
    assert credential({**good, "proofs": {"jwt": [_proof(key, served.base, nonce())]}}
                      ) == (401, "invalid_token")
    other = _token(served, issue(served)["claim_code"])
    assert credential({**good, "proofs": {"jwt": [_proof(key, served.base, used)]}},
                      {"Authorization": f"Bearer {other}"}) == (400, "invalid_nonce")


# -- OpenID4VP: the same wallet presents to a member organisation ---------------------------


@pytest.fixture(scope="module")
def holder(served: Served, wallet_dir: Path) -> Path:
    """A credential received by the standard wallet, kept as the wallet keeps it."""
    if shutil.which("node") is None or not (NODE_MODULES / "@openid4vc").is_dir():
        pytest.skip("the OpenID4VC test wallet is not installed")
    got = run_wallet(wallet_dir, "receive", offer_of(served, issue(served)["credential_id"])["offer_url"])
    where = wallet_dir / "holder.json"
    where.write_text(json.dumps(got))
    return where


def ask(served: Served, org: str = "school-b", **body: Any) -> dict[str, Any]:
    r = served.http.post("/v1/presentation-requests", headers=served.as_org(org), json={
        "credential_type": "graduation", "claims": ["credentialSubject.holderName",
                                                    "credentialSubject.program"], **body})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def verdict_of(served: Served, request_id: str, org: str = "school-b") -> dict[str, Any]:
    r = served.http.get(f"/v1/presentation-requests/{request_id}", headers=served.as_org(org))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@needs_wallet
def test_standard_wallet_presents_and_the_verifier_reads_the_verdict(served: Served, wallet_dir: Path,
                                                                     holder: Path) -> None:
    asked = ask(served)
    assert asked["state"] == "waiting" and asked["verdict"] is None
    url = urlparse(asked["request_url"])
    assert url.scheme == "openid4vp"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params["client_id"] == asked["client_id"] == "redirect_uri:" + params["response_uri"]
    assert params["response_mode"] == "direct_post" and params["nonce"] == asked["nonce"]
    assert json.loads(params["dcql_query"]) == asked["dcql_query"] == {"credentials": [{
        "id": "credential", "format": "dc+sd-jwt",
        "meta": {"vct_values": ["urn:eduledger:credential:graduation"]},
        "claims": [{"path": ["credentialSubject", "holderName"]},
                   {"path": ["credentialSubject", "program"]}]}]}
    png = served.http.get(asked["qr_png_url"], headers=served.as_org("school-b"))
    assert decode_qr_png(png.content) == [asked["request_url"]]

    sent = run_wallet(wallet_dir, "present", asked["request_url"], str(holder))
    assert sent["status"] == 200, sent
    assert sent["clientId"] == asked["client_id"]
    done = verdict_of(served, asked["request_id"])
    assert done["state"] == "answered" and done["last_error"] is None
    verdict = done["verdict"]
    assert verdict["valid"] and verdict["missing_claims"] == [] and verdict["request_failures"] == []
    checks = {c["check"]: c["outcome"] for c in verdict["verification"]["checks"]}
    assert all(checks[name] == "passed" for name in (
        "anchor", "membership", "signing_key", "status", "holder_binding")), checks
    subject = verdict["verification"]["claims"]["credentialSubject"]
    assert subject["holderName"] == "张三" and subject["program"] == "计算机科学与技术"
    assert "studentId" not in subject  # not asked for, not disclosed

    # the same answer again is a replay; another organisation does not see the request
    replay = served.http.post(sent["responseUri"], data={"vp_token": json.dumps(sent["vpToken"])})
    assert replay.status_code == 400 and replay.json()["error"] == "response_replayed"
    other = served.http.get(f"/v1/presentation-requests/{asked['request_id']}",
                            headers=served.as_org("school-a"))
    assert other.status_code == 404 and other.json()["code"] == "presentation_request_not_found"


@needs_wallet
@pytest.mark.parametrize(("tamper", "error"), [("nonce", "nonce_mismatch"),
                                               ("audience", "audience_mismatch")])
def test_wrong_nonce_or_audience_is_refused(served: Served, wallet_dir: Path, holder: Path,
                                            tamper: str, error: str) -> None:
    asked = ask(served)
    sent = run_wallet(wallet_dir, "present", asked["request_url"], str(holder), tamper)
    assert sent["status"] == 400 and sent["body"]["error"] == error, sent
    waiting = verdict_of(served, asked["request_id"])
    assert waiting["state"] == "waiting" and waiting["last_error"] == error and waiting["verdict"] is None
    # the wallet may still answer properly
    assert run_wallet(wallet_dir, "present", asked["request_url"], str(holder))["status"] == 200
    assert verdict_of(served, asked["request_id"])["verdict"]["valid"]


@needs_wallet
def test_expired_request_and_a_revoked_credential(served: Served, wallet_dir: Path, holder: Path) -> None:
    from sqlalchemy import update

    from ledger.credentials.models import PresentationRequest
    from ledger.store import session_scope

    asked = ask(served, expires_in=60)
    with session_scope(served.node.engine) as session:
        session.execute(update(PresentationRequest).where(PresentationRequest.id == asked["request_id"])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    sent = run_wallet(wallet_dir, "present", asked["request_url"], str(holder))
    assert sent["status"] == 400 and sent["body"]["error"] == "request_expired"
    assert verdict_of(served, asked["request_id"])["state"] == "expired"

    # a request for claims the credential lacks, and for another type: answered, not valid
    missing = ask(served, claims=["credentialSubject.nickname"])
    assert run_wallet(wallet_dir, "present", missing["request_url"], str(holder))["status"] == 200
    verdict = verdict_of(served, missing["request_id"])["verdict"]
    assert not verdict["valid"] and verdict["missing_claims"] == ["credentialSubject.nickname"]

    # once the school revokes it, the same wallet's answer verifies as revoked
    stored = json.loads(holder.read_text())
    _, payload, _, _ = jose.decode_jws_unverified(stored["credential"].split("~", 1)[0])
    revoked = served.http.post(f"/v1/credentials/{stored['credential_id']}/status", headers=served.as_org(
        "school-a"), json={"action": "revoke", "reason": 1})
    assert revoked.status_code == 200, revoked.text
    asked = ask(served)
    assert run_wallet(wallet_dir, "present", asked["request_url"], str(holder))["status"] == 200
    verdict = verdict_of(served, asked["request_id"])["verdict"]
    assert not verdict["valid"] and "revoked" in verdict["verification"]["failures"]
    assert payload["vct"] == "urn:eduledger:credential:graduation"


def test_presentation_request_errors(served: Served) -> None:
    post = served.http.post
    bad = post("/v1/presentation-requests", headers=served.as_org("school-b"),
               json={"credential_type": "graduation", "claims": ["credentialSubject..x"]})
    assert bad.status_code == 422 and bad.json()["code"] == "bad_claim"
    asked = ask(served)
    uri = asked["client_id"].removeprefix("redirect_uri:")
    for where, body in [(uri, {}), (uri, {"vp_token": "{}"}),
                        (uri, {"vp_token": json.dumps({"credential": ["x~"]})}),
                        (served.base + "/oid4vp/responses/nope", {"vp_token": "{}"})]:
        r = post(where, data=body)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", (body, r.text)
    assert post(uri, json={"vp_token": "{}"}).json()["error"] == "invalid_request"
    assert verdict_of(served, asked["request_id"])["last_error"] == "invalid_request"
