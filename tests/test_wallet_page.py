"""The holder's wallet on a phone (GET /wallet), end to end in Debian's chromium at a phone's
size (tests/browser.py): a graduate redeems a transcript's claim code, shares two claims for
7 days as a QR code that an independent decoder (zxing-cpp) reads to a share that verifies
with exactly those claims, withdraws it, and still sees the wallet with the node gone; a
student redeems an identity card and answers an exam desk's challenge with it. The browser's
presentation is checked by the reference SD-JWT implementation (PyPI sd-jwt) too."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from jwcrypto.jwk import JWK

from tests.browser import Seen, another_device, browser_page
from tests.credential_fixtures import Served, served_network, transcript_row
from tests.identity_fixtures import photo, roster_zip, student
from wallet.qr import decode_qr_png

PHONE = {"width": 390, "height": 844}
EXAM = "https://exam.example.edu.cn/check-in"
# A record the wallet keeps in IndexedDB, read in the page: (store, key) -> the record.
_KEPT = """async ([store, key]) => {
  const ask = (r) => new Promise((ok, no) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => no(r.error);
  });
  const db = await ask(indexedDB.open("eduledger-wallet"));
  return ask(db.transaction(store).objectStore(store).get(key));
}"""
STORED_KEY = """async (kept) => {
  const key = await kept(["keys", "holder"]);
  let exported = "exported";
  try { await crypto.subtle.exportKey("jwk", key.privateKey); } catch (e) { exported = e.name; }
  return {extractable: key.privateKey.extractable, type: key.privateKey.type,
          algorithm: key.privateKey.algorithm.name, usages: key.privateKey.usages, exported,
          isCryptoKey: key.privateKey instanceof CryptoKey, x: key.jwk.x};
}"""
KEPT_PHOTO = """async ([kept, id]) => {
  const bytes = new Uint8Array(await (await kept(["credentials", id])).photo.arrayBuffer());
  return btoa(String.fromCharCode(...bytes));
}"""


def _in_page(seen: Seen, script: str, *args: Any) -> Any:
    """`script` run in the page, given the IndexedDB reader (and `args`)."""
    return seen.page.evaluate(f"async (args) => ({script})(args.length ? [({_KEPT}), ...args] : ({_KEPT}))",
                              list(args))


def _open_wallet(seen: Seen, base: str) -> None:
    answer = seen.page.goto(f"{base}/wallet")
    assert answer is not None and answer.status == 200
    seen.page.wait_for_selector("#wallet[data-ready='true']")


def _posted(seen: Seen) -> dict[str, list[dict[str, Any]]]:
    """The JSON bodies the page posts, by path (what the node receives from the wallet)."""
    bodies: dict[str, list[dict[str, Any]]] = {}

    def record(request: Any) -> None:
        if request.method == "POST" and request.post_data:
            bodies.setdefault(urlparse(request.url).path, []).append(json.loads(request.post_data))

    seen.page.on("request", record)
    return bodies


def _redeem(seen: Seen, code: str, kind: str) -> None:
    seen.page.click("#show-redeem")
    seen.page.fill("#code", code)
    seen.page.check(f"input[name=kind][value={kind}]")
    seen.screenshot(f"wallet-redeem-{kind}")
    seen.page.click("#redeem-button")


def _qr_on_screen(seen: Seen) -> str:
    """What the QR code the page shows says, read from the screen by zxing-cpp."""
    seen.page.wait_for_function("() => document.getElementById('qr').naturalWidth > 0")
    [text] = decode_qr_png(seen.page.locator("#qr").screenshot())
    return text


def _reference_check(served: Served, presentation: str) -> dict[str, Any]:
    """The browser's presentation through the reference implementation (PyPI sd-jwt): issuer
    signature, disclosures and key binding (sd_hash, audience, nonce, holder signature)."""
    from sd_jwt.verifier import SDJWTVerifier

    def segment(part: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))

    jwt, kb = presentation.split("~")[0], presentation.rsplit("~", 1)[1]
    header, payload = segment(jwt.split(".")[0]), segment(jwt.split(".")[1])
    kb_header, kb_payload = segment(kb.split(".")[0]), segment(kb.split(".")[1])
    assert kb_header == {"alg": "EdDSA", "typ": "kb+jwt"}
    assert set(kb_payload) == {"iat", "aud", "nonce", "sd_hash"} and kb_payload["aud"] == served.base
    document = served.http.get(f"/v1/dids/{payload['iss'] if 'iss' in payload else payload['issuer']['id']}")
    assert document.status_code == 200, document.text
    [method] = [m for m in document.json()["verificationMethod"] if m["id"] == header["kid"]]
    issuer_key = JWK.from_json(json.dumps(method["publicKeyJwk"]))
    verifier = SDJWTVerifier(presentation, lambda _iss, _header: issuer_key)
    # Its constructor checks key binding for ES256 only; the same check, for EdDSA.
    verifier._verify_key_binding_jwt(served.base, kb_payload["nonce"], sign_alg="EdDSA")
    return dict(verifier.get_verified_payload())


def test_a_graduate_redeems_shares_and_withdraws_on_a_phone(env: Path) -> None:
    with browser_page(**PHONE) as seen:
        with served_network(env / "data") as served:
            issued = served.issue("school-a", "transcript", [transcript_row(5, courses=4)])
            assert issued.status_code == 201, issued.text
            [credential] = issued.json()["credentials"]
            posted = _posted(seen)
            _open_wallet(seen, served.base)
            assert "还没有凭证" in seen.text("#home") and "Nothing here yet" in seen.text("#home")
            seen.screenshot("wallet-empty")

            # A mistyped code is refused, in both languages, and nothing is kept.
            _redeem(seen, "AAAA-BBBB-CCCC-DDDD", "credential")
            seen.page.wait_for_selector("#message.error")
            refused = seen.text("#message")
            assert "没有这个领取码" in refused and "No such claim code" in refused, refused
            seen.problems.remove(f"404 {served.base}/v1/claims/redeem")  # the one refusal asked for
            seen.screenshot("wallet-redeem-refused")
            seen.page.click("#redeem button.back")
            assert seen.page.locator("#credentials li").count() == 0
            posted.clear()

            # Redeem: the node receives a public JWK only, and binds the credential to it.
            _redeem(seen, credential["claim_code"], "credential")
            seen.page.wait_for_selector("#credential:not([hidden])")
            [redeem] = posted["/v1/claims/redeem"]
            assert set(redeem) == {"code", "holder_jwk"}
            assert set(redeem["holder_jwk"]) == {"kty", "crv", "x"}  # no "d": no private part
            assert redeem["holder_jwk"]["kty"] == "OKP" and redeem["holder_jwk"]["crv"] == "Ed25519"
            key = _in_page(seen, STORED_KEY)
            assert key == {"extractable": False, "type": "private", "algorithm": "Ed25519",
                           "usages": ["sign"], "exported": "InvalidAccessError", "isCryptoKey": True,
                           "x": redeem["holder_jwk"]["x"]}, key
            assert "成绩单" in seen.text("#credential-title")
            seen.screenshot("wallet-credential")
            seen.page.click("#credential button.back")
            listed = seen.text("#credentials")
            assert "成绩单" in listed and "北京时间 (UTC+8)" in listed, listed
            seen.screenshot("wallet-list")

            # Pick two claims (the name and the third course), 7 days, share.
            seen.page.click("#credentials li")
            chosen = ["credentialSubject.holderName", "credentialSubject.courses.2"]
            for path in chosen:
                seen.page.check(f"#claims input[value='{path}']")
            seen.page.select_option("#days", "7")
            seen.screenshot("wallet-choose")
            seen.page.click("#share-button")
            seen.page.wait_for_selector("#share:not([hidden])")
            url = _qr_on_screen(seen)
            share_id = urlparse(url).path.rsplit("/", 1)[1]
            assert url == f"{served.base}/s/{share_id}" and url == seen.text("#share-url")
            shown = seen.text("#share")
            assert "学生0005" in shown and "课程2" in shown and "课程1" not in shown, shown
            assert "北京时间 (UTC+8)" in seen.text("#share-expires")
            seen.screenshot("wallet-share-qr")

            [made] = posted["/v1/shares"]
            assert made["expires_in_days"] == 7
            theirs = _reference_check(served, made["presentation"])
            assert theirs["credentialSubject"]["holderName"] == "学生0005"
            assert [c["name"] for c in theirs["credentialSubject"]["courses"]] == ["课程2"]
            assert set(theirs["credentialSubject"]) == {"holderName", "courses"}

            verified = served.http.get(url, headers={"Accept": "application/json"}).json()
            assert verified["valid"] is True, verified
            checks = {c["check"]: c["outcome"] for c in verified["checks"]}
            assert checks["holder_binding"] == "passed" and checks["share"] == "passed", checks
            paths = {d["path"] for d in verified["disclosed"]}
            assert {"credentialSubject.holderName", "credentialSubject.courses.2"} <= paths
            course = "credentialSubject.courses.2"
            allowed = ("credentialSubject.holderName", "credentialSubject.courses", course)
            outside = {p for p in paths if p not in allowed and not p.startswith(course + ".")}
            assert not outside, outside  # exactly the two claims (and the list the course is in)

            # Withdraw: the share is gone, for the wallet and for anyone holding the link.
            seen.page.click("#withdraw")
            seen.page.click("#withdraw-yes")
            seen.page.wait_for_selector("#credential:not([hidden])")
            assert "已撤回" in seen.text("#message")
            assert seen.page.locator("#shares li").count() == 0
            gone = served.http.get(url, headers={"Accept": "application/json"}).json()
            assert gone["valid"] is False and "share_withdrawn" in gone["failures"], gone
            assert gone["disclosed"] == []
            seen.screenshot("wallet-withdrawn")

            # A second share, to be shown with no network.
            seen.page.check("#claims input[value='credentialSubject.holderName']")
            seen.page.click("#share-button")
            seen.page.wait_for_selector("#share:not([hidden])")
            kept_url = _qr_on_screen(seen)
            assert served.http.get(kept_url, headers={"Accept": "application/json"}).json()["valid"] is True
            seen.page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            # Online, the service worker passes the page through from the node (current copy).
            reloaded = seen.page.reload()
            assert reloaded is not None and reloaded.status == 200 and reloaded.from_service_worker
            seen.page.wait_for_selector("#wallet[data-ready='true']")
            base = served.base

        # The node is gone and the phone offline: the wallet still opens, with what it holds.
        seen.page.context.set_offline(True)
        offline = seen.page.goto(f"{base}/wallet")
        assert offline is not None and offline.from_service_worker
        seen.page.wait_for_selector("#wallet[data-ready='true']")
        assert "成绩单" in seen.text("#credentials")
        assert seen.page.evaluate("navigator.onLine") is False and "离线" in seen.text("#network")
        seen.screenshot("wallet-offline-list")
        seen.page.click("#credentials li")
        seen.page.click("#shares li")
        assert _qr_on_screen(seen) == kept_url
        seen.screenshot("wallet-offline-qr")
        seen.assert_clean()


def test_a_student_shows_an_identity_card_and_answers_a_challenge(env: Path) -> None:
    with served_network(env / "data") as served, browser_page(**PHONE) as seen:
        school, exam = served.as_org("school-a"), served.as_org("partner")
        issued = served.http.post("/v1/identity/cards", params={"kind": "student"},
                                  content=roster_zip([student(n) for n in range(3)]),
                                  headers={**school, "Content-Type": "application/zip"})
        assert issued.status_code == 201, issued.text
        mine = issued.json()["cards"][1]
        posted = _posted(seen)
        _open_wallet(seen, served.base)
        _redeem(seen, mine["claim_code"], "card")
        seen.page.wait_for_selector("#card:not([hidden])")
        [redeem] = posted["/v1/identity/claims/redeem"]
        assert set(redeem["holder_jwk"]) == {"kty", "crv", "x"}
        assert seen.text("#card-name") == "学生0001" and seen.text("#card-kind") == "学生卡 Student card"
        assert seen.text("#card-school")  # the school's name, from the card
        # The photo shows, and it is the school's photo file byte for byte.
        seen.page.wait_for_function("() => document.getElementById('card-photo').naturalWidth === 96")
        assert seen.page.get_attribute("#card-photo", "src").startswith("blob:")  # kept on the phone
        kept_photo = _in_page(seen, KEPT_PHOTO, mine["card_id"])
        assert base64.b64decode(kept_photo) == photo(1)
        seen.screenshot("wallet-card")

        # The exam desk asks (through HTTP); the student pastes the challenge's link.
        asked = served.http.post("/v1/identity/challenges", headers=exam,
                                 json={"audience": EXAM, "claims": ["name", "className"],
                                       "expires_in_seconds": 300})
        assert asked.status_code == 201, asked.text
        challenge = asked.json()
        link = f"{served.base}/v1/identity/challenges/{challenge['challenge_id']}"
        seen.page.fill("#challenge-input", link)
        seen.page.click("#read-challenge")
        seen.page.wait_for_selector("#challenge:not([hidden])")
        assert seen.text("#challenge-audience") == EXAM
        asks = seen.text("#challenge-claims")
        assert "姓名 Name" in asks and "班级 Class" in asks and "照片指纹" in asks, asks
        seen.screenshot("wallet-challenge")
        seen.page.click("#answer")
        seen.page.wait_for_selector("#answered:not([hidden])")
        assert EXAM in seen.text("#answered")
        seen.screenshot("wallet-challenge-answered")

        verdict = served.http.post("/v1/identity/verify", headers=exam, json={
            "challenge_id": challenge["challenge_id"], "photo_base64": base64.b64encode(photo(1)).decode()})
        assert verdict.status_code == 200, verdict.text
        result = verdict.json()
        assert result["valid"] is True and result["photo_matches"] is True, result
        assert result["claims"]["name"] == "学生0001" and result["card"]["card_id"] == mine["card_id"]
        seen.assert_clean()

        # The phone is lost: the school checks who asks and hands over a new claim code; the new
        # phone makes its own key, the card moves to it on chain, and the old phone's key fails.
        code = served.http.post(f"/v1/identity/cards/{mine['card_id']}/claim-code", headers=school)
        assert code.status_code == 200, code.text
        new_phone = another_device(seen)
        _open_wallet(new_phone, served.base)
        _redeem(new_phone, code.json()["claim_code"], "card")
        new_phone.page.wait_for_selector("#card:not([hidden])")
        assert new_phone.text("#card-name") == "学生0001"
        assert _in_page(new_phone, STORED_KEY)["x"] != redeem["holder_jwk"]["x"]
        for phone, outcome in ((new_phone, []), (seen, ["holder_key_rotated"])):
            again = served.http.post("/v1/identity/challenges", headers=exam,
                                     json={"audience": EXAM, "claims": ["name"]}).json()
            phone.page.fill("#challenge-input", again["challenge_id"])  # the bare id will do
            phone.page.click("#read-challenge")
            phone.page.click("#answer")
            phone.page.wait_for_selector("#answered:not([hidden])")
            checked = served.http.post("/v1/identity/verify", headers=exam,
                                       json={"challenge_id": again["challenge_id"]}).json()
            assert checked["failures"] == outcome, checked
        new_phone.screenshot("wallet-card-new-phone")
        new_phone.assert_clean()


def test_the_wallet_is_served_as_an_installable_app_with_a_strict_policy(env: Path) -> None:
    with served_network(env / "data") as served:
        page = served.http.get("/wallet")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
        assert f'nonce="{nonce}"' in page.text and "unsafe-inline" not in policy
        assert not re.search(r"\son[a-z]+\s*=", page.text)  # no inline handlers
        assert len(re.findall(r"<script", page.text)) == 1  # the one script file, by nonce
        assert "http://" not in page.text.replace(served.base, "") and "https://" not in page.text  # no CDN
        manifest = served.http.get("/wallet/manifest.webmanifest")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        app = manifest.json()
        assert app["start_url"] == "/wallet" and app["display"] == "standalone"
        assert {i["sizes"] for i in app["icons"]} == {"192x192", "512x512"}
        for icon in app["icons"]:
            image = served.http.get(icon["src"])
            assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        worker = served.http.get("/wallet/sw.js")
        assert worker.headers["service-worker-allowed"] == "/wallet"
        assert "__VERSION__" not in worker.text and '"/wallet/app.js"' in worker.text
        assert served.http.get("/wallet/../api-keys.json").status_code == 404
        assert served.http.get("/wallet/pages.py").status_code == 404
        assert "/wallet" not in httpx.get(served.base + "/openapi.json").json()["paths"]
