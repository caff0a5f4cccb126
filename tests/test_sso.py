"""Single sign-on with the education identity card, as an independent relying party sees it.

The relying party is requests-oauthlib (over oauthlib: not the library the provider is
built with), with PKCE S256; the ID token is checked with jwcrypto against the JWKS the
discovery document names, and the discovery document against OpenID Connect Discovery 1.0
by hand. The holder answers the challenge the sign-in page shows, by the wallet's HTTP
route (and once by the real `eduledger wallet present` command); the browser is httpx (and
once Debian's chromium, driven by Playwright).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwcrypto import jwk, jwt
from requests_oauthlib import OAuth2Session
from sqlalchemy import update

from ledger.credentials import jose
from ledger.identity.models import IdentityChallenge
from ledger.store import session_scope
from ledger.store.columns import utcnow
from tests.credential_fixtures import Served, served_network
from tests.identity_fixtures import present, roster_zip, student

EXAMS = "http://127.0.0.1:18999/exams/callback"  # the relying parties' redirect URIs: never fetched,
COURSES = "http://localhost:18999/courses/callback"  # the browser here stops at the redirect
LIBRARY = "http://127.0.0.1:18999/library/callback"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "sso passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server is plain http on the loopback
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


@dataclass
class Holder:
    key: Ed25519PrivateKey
    card: dict[str, Any]


@dataclass
class Client:
    client_id: str
    secret: str | None
    redirect_uri: str


@dataclass
class SignedIn:
    token: dict[str, Any]
    claims: dict[str, Any]
    nonce: str


def _discovery(served: Served) -> dict[str, Any]:
    """The provider's configuration, checked against OpenID Connect Discovery 1.0 section 3
    and 4.3 (and RFC 8414 for the PKCE and auth method fields)."""
    r = httpx.get(served.base + "/.well-known/openid-configuration")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["issuer"] == served.base  # 4.3: exactly the URL the configuration was fetched under
    for required in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert required in doc, required
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert doc[endpoint].startswith(served.base + "/"), endpoint
    assert "code" in doc["response_types_supported"] and set(doc["subject_types_supported"]) == {"pairwise"}
    assert "RS256" in doc["id_token_signing_alg_values_supported"]  # Core 15.1: the one every RP has
    assert "none" not in doc["id_token_signing_alg_values_supported"]
    assert "openid" in doc["scopes_supported"] and doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["grant_types_supported"] == ["authorization_code"]
    assert {"sub", "iss", "aud", "exp", "iat", "name", "school", "cardKind"} <= set(doc["claims_supported"])
    assert doc["request_uri_parameter_supported"] is False  # its default is true: we must say it
    assert doc["acr_values_supported"] == ["urn:eduledger:acr:identity-card-presentation"]
    return doc


def _issue(served: Served, n: int) -> Holder:
    school = served.as_org("school-a")
    [card] = served.http.post(
        "/v1/identity/cards",
        params={"kind": "student"},
        content=roster_zip([student(n)]),
        headers={**school, "Content-Type": "application/zip"},
    ).json()["cards"]
    return _claim(served, card["claim_code"], Ed25519PrivateKey.generate())


def _claim(served: Served, code: str, key: Ed25519PrivateKey) -> Holder:
    claimed = served.http.post(
        "/v1/identity/claims/redeem", json={"code": code, "holder_jwk": jose.ed25519_jwk(key.public_key())}
    )
    assert claimed.status_code == 200, claimed.text
    return Holder(key, claimed.json())


def _register(served: Served, org: str, redirect_uri: str, **extra: Any) -> Client:
    r = served.http.post(
        "/v1/sso/clients",
        headers=served.as_org(org),
        json={"name": f"{org} 考试系统 Exams", "redirect_uris": [redirect_uri], **extra},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Client(body["client_id"], body["client_secret"], redirect_uri)


def _session(client: Client, scope: list[str]) -> OAuth2Session:
    return OAuth2Session(client.client_id, redirect_uri=client.redirect_uri, scope=scope, pkce="S256")


def _page_links(html: str) -> tuple[str, str, str]:
    """(sign-in id, challenge id, continue path) as the page carries them."""
    cont = re.search(r'data-continue-url="(/sso/sign-ins/([A-Za-z0-9_-]+)/continue)"', html)
    challenge = re.search(r'id="challenge">([A-Za-z0-9_-]{16})<', html)
    assert cont and challenge, html[:2000]
    return cont[2], challenge[1], cont[1]


def _answer(served: Served, holder: Holder, challenge_id: str, keep: set[str]) -> None:
    challenge = served.http.get(f"/v1/identity/challenges/{challenge_id}").json()
    answered = served.http.post(
        f"/v1/identity/challenges/{challenge_id}/answer",
        json={"presentation": present(holder.card["sd_jwt"], holder.key, challenge, keep)},
    )
    assert answered.status_code == 204, answered.text


@contextmanager
def _browser(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base, follow_redirects=False, timeout=60) as browser:
        yield browser


def _authorize(
    served: Served, browser: httpx.Client, oauth: OAuth2Session, doc: dict[str, Any], **params: str
) -> tuple[httpx.Response, str]:
    nonce = params.pop("nonce", secrets.token_urlsafe(16))
    url, _state = oauth.authorization_url(doc["authorization_endpoint"], nonce=nonce, **params)
    return browser.get(url), nonce


def _sign_in(
    served: Served,
    doc: dict[str, Any],
    client: Client,
    holder: Holder,
    scope: list[str] | None = None,
    keep: set[str] | None = None,
) -> SignedIn:
    """The whole flow: authorize, the page, the wallet's answer, continue, the code, the token."""
    oauth = _session(client, scope or ["openid", "profile", "school", "card"])
    with _browser(served) as browser:
        page, nonce = _authorize(served, browser, oauth, doc)
        assert page.status_code == 200, page.text
        _, challenge_id, cont = _page_links(page.text)
        _answer(served, holder, challenge_id, keep if keep is not None else {"name", "school"})
        back = browser.get(cont)
        assert back.status_code == 302, back.text
        location = back.headers["location"]
    assert location.startswith(client.redirect_uri + "?")
    token = oauth.fetch_token(
        doc["token_endpoint"],
        authorization_response=location,
        client_secret=client.secret,
        include_client_id=client.secret is None,
    )
    return SignedIn(token, _check_id_token(served, doc, token, client, nonce), nonce)


def _check_id_token(
    served: Served, doc: dict[str, Any], token: dict[str, Any], client: Client, nonce: str
) -> dict[str, Any]:
    """The ID token as a relying party checks it (Core 3.1.3.7), with jwcrypto."""
    keys = jwk.JWKSet.from_json(httpx.get(doc["jwks_uri"]).text)
    checked = jwt.JWT(
        jwt=token["id_token"],
        key=keys,
        algs=["RS256"],
        check_claims={
            "iss": doc["issuer"],
            "aud": client.client_id,
            "exp": None,
            "iat": None,
            "nonce": nonce,
        },
    )
    header = json.loads(checked.header)
    assert header["alg"] == "RS256" and header["kid"] in {
        k["kid"] for k in json.loads(keys.export(False))["keys"]
    }
    claims: dict[str, Any] = json.loads(checked.claims)
    assert claims["exp"] > claims["iat"] and claims["auth_time"] <= claims["iat"] + 1
    digest = hashlib.sha256(token["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()  # Core 3.1.3.6
    assert claims["acr"] == "urn:eduledger:acr:identity-card-presentation" and claims["amr"] == ["swk"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", claims["sub"])
    return claims


def _error_redirect(response: httpx.Response, client: Client) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(client.redirect_uri + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_a_platform_signs_a_student_in_with_their_card(env: Path) -> None:
    with served_network(env / "data") as served:
        doc = _discovery(served)
        holder = _issue(served, 1)
        exams = _register(served, "partner", EXAMS)
        signed = _sign_in(served, doc, exams, holder)
        assert signed.claims["name"] == "学生0001" and signed.claims["school"]
        assert signed.claims["cardKind"] == "student"
        assert "studentNumber" not in signed.claims and "portrait" not in signed.claims
        # The UserInfo endpoint (Core 5.3) answers the same subject and claims to the bearer.
        bearer = {"Authorization": f"Bearer {signed.token['access_token']}"}
        info = httpx.get(doc["userinfo_endpoint"], headers=bearer)
        assert info.status_code == 200 and info.headers["cache-control"] == "no-store"
        assert info.json() == {
            "sub": signed.claims["sub"],
            "name": "学生0001",
            "school": signed.claims["school"],
            "cardKind": "student",
        }
        unknown = httpx.get(doc["userinfo_endpoint"], headers={"Authorization": "Bearer nothing"})
        assert unknown.status_code == 401 and "invalid_token" in unknown.headers["www-authenticate"]

        # Only what the scopes ask for: openid alone is the subject (and the card's kind, never).
        bare = _sign_in(served, doc, exams, holder, scope=["openid"], keep=set())
        assert bare.claims["sub"] == signed.claims["sub"]
        assert not {"name", "school", "cardKind"} & set(bare.claims)
        # ... or what the claims parameter (Core 5.5) asks for.
        oauth = _session(exams, ["openid"])
        with _browser(served) as browser:
            page, _ = _authorize(
                served, browser, oauth, doc, claims=json.dumps({"id_token": {"school": None}})
            )
            assert "学校 · School" in page.text and "姓名 · Name" not in page.text


def test_codes_secrets_and_pkce_as_rfc_6749_and_7636_say(env: Path) -> None:
    with served_network(env / "data") as served:
        doc = _discovery(served)
        holder = _issue(served, 2)
        exams = _register(served, "partner", EXAMS)
        oauth = _session(exams, ["openid", "profile"])

        def fresh_code() -> dict[str, str]:
            """A code for a signed-in holder, and the token request a client makes of it."""
            with _browser(served) as browser:
                page, _ = _authorize(served, browser, oauth, doc)
                _, challenge_id, cont = _page_links(page.text)
                _answer(served, holder, challenge_id, {"name"})
                code = parse_qs(urlsplit(browser.get(cont).headers["location"]).query)["code"][0]
            return {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": exams.redirect_uri,
                "code_verifier": oauth._code_verifier,
            }  # the verifier of the authorization just made

        form = fresh_code()
        token_url = doc["token_endpoint"]
        wrong_secret = httpx.post(token_url, data=form, auth=(exams.client_id, "not the secret"))
        assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
        no_secret = httpx.post(token_url, data={**form, "client_id": exams.client_id})
        assert no_secret.status_code in (400, 401) and no_secret.json()["error"] == "invalid_client"
        wrong_verifier = httpx.post(
            token_url, data={**form, "code_verifier": "v" * 50}, auth=(exams.client_id, exams.secret)
        )
        assert wrong_verifier.json()["error"] == "invalid_grant"  # and the code is spent with it
        gone = httpx.post(token_url, data=form, auth=(exams.client_id, exams.secret))
        assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"

        # A fresh code: exchanged once; the replay is refused and revokes what the code gave.
        form = fresh_code()
        first = httpx.post(
            token_url, data={**form, "redirect_uri": EXAMS + "/other"}, auth=(exams.client_id, exams.secret)
        )
        assert first.json()["error"] == "invalid_grant"  # the redirect URI must be the authorization's
        form = fresh_code()
        issued = httpx.post(token_url, data=form, auth=(exams.client_id, exams.secret))
        assert issued.status_code == 200, issued.text
        assert (
            issued.headers["cache-control"] == "no-store" and issued.json()["token_type"].lower() == "bearer"
        )
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert httpx.get(doc["userinfo_endpoint"], headers=bearer).status_code == 200
        replay = httpx.post(token_url, data=form, auth=(exams.client_id, exams.secret))
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        assert httpx.get(doc["userinfo_endpoint"], headers=bearer).status_code == 401  # revoked

        # PKCE is required of every client, confidential ones too; plain is not taken.
        with _browser(served) as browser:
            bare = OAuth2Session(exams.client_id, redirect_uri=exams.redirect_uri, scope=["openid"])
            no_pkce, _ = _authorize(served, browser, bare, doc)
            refused = _error_redirect(no_pkce, exams)
            assert refused["error"] == "invalid_request" and "PKCE" in refused["error_description"]
            plain, _ = _authorize(
                served, browser, bare, doc, code_challenge="p" * 43, code_challenge_method="plain"
            )
            assert _error_redirect(plain, exams)["error"] == "invalid_request"
            # A redirect URI the client did not register: an error page, never a redirect there.
            evil = OAuth2Session(
                exams.client_id, redirect_uri="https://evil.example/cb", scope=["openid"], pkce="S256"
            )
            shown, _ = _authorize(served, browser, evil, doc)
            assert shown.status_code == 400 and "location" not in shown.headers
            assert "登录请求无效" in shown.text and "evil.example" in shown.text
            unknown = OAuth2Session(
                "nobody-nobody-nobody", redirect_uri=exams.redirect_uri, scope=["openid"], pkce="S256"
            )
            shown, _ = _authorize(served, browser, unknown, doc)
            assert shown.status_code == 400 and "未知的平台" in shown.text
            no_openid = _session(exams, ["profile"])
            missing, _ = _authorize(served, browser, no_openid, doc)
            assert _error_redirect(missing, exams)["error"] == "invalid_scope"
            silent, _ = _authorize(served, browser, oauth, doc, prompt="none")
            assert (
                _error_redirect(silent, exams)["error"] == "login_required"
            )  # no session: the card is asked


def test_a_card_that_cannot_sign_in_is_named_to_the_client(env: Path) -> None:
    with served_network(env / "data") as served:
        doc = _discovery(served)
        holder = _issue(served, 3)
        exams = _register(served, "partner", EXAMS)

        def attempt(state: str, answer: bool = True) -> tuple[httpx.Response, httpx.Client, str, str]:
            oauth = _session(exams, ["openid", "profile"])
            browser = httpx.Client(base_url=served.base, follow_redirects=False, timeout=60)
            page, _ = _authorize(served, browser, oauth, doc, state=state)
            sign_in, challenge_id, cont = _page_links(page.text)
            if answer:
                _answer(served, holder, challenge_id, {"name"})
            return page, browser, challenge_id, cont

        # Another browser than the one that started it: refused; the one that did goes on.
        page, browser, _, cont = attempt("s1")
        with httpx.Client(base_url=served.base) as stranger:
            other = stranger.get(cont)
            assert other.status_code == 403 and "另一个浏览器" in other.text
        assert browser.get(cont).status_code == 302
        again = browser.get(cont)
        assert again.status_code == 409 and "已经结束" in again.text
        browser.close()

        # Not answered yet: the page again; the challenge expires: access_denied, reason named.
        page, browser, challenge_id, cont = attempt("s2", answer=False)
        waiting = browser.get(cont)
        assert waiting.status_code == 200 and "等待出示身份卡" in waiting.text
        status = served.http.get(f"/v1/sso/sign-ins/{_page_links(page.text)[0]}").json()
        assert status["status"] == "waiting"
        with session_scope(served.node.engine, write=True) as session:
            session.execute(
                update(IdentityChallenge.__table__)
                .where(  # type: ignore[attr-defined]
                    IdentityChallenge.__table__.c.id == challenge_id
                )  # type: ignore[attr-defined]
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert served.http.get(f"/v1/sso/sign-ins/{_page_links(page.text)[0]}").json()["status"] == "expired"
        expired = _error_redirect(browser.get(cont), exams)
        assert expired == {
            "error": "access_denied",
            "error_description": "the card did not sign in: challenge_expired",
            "state": "s2",
        }
        browser.close()

        # A suspended card cannot sign in; reinstated, it can.
        card_status = f"/v1/identity/cards/{holder.card['card_id']}/status"
        school = served.as_org("school-a")
        assert served.http.post(card_status, headers=school, json={"action": "suspend"}).status_code == 200
        _, browser, _, cont = attempt("s3")
        suspended = _error_redirect(browser.get(cont), exams)
        assert suspended["error"] == "access_denied" and suspended["error_description"].endswith(
            "card_suspended"
        )
        assert suspended["state"] == "s3"
        browser.close()
        assert served.http.post(card_status, headers=school, json={"action": "reinstate"}).status_code == 200
        assert _sign_in(served, doc, exams, holder, scope=["openid"], keep=set()).claims["sub"]

        # A disabled client: no more sign-ins, its tokens stop.
        signed = _sign_in(served, doc, exams, holder, scope=["openid"], keep=set())
        bearer = {"Authorization": f"Bearer {signed.token['access_token']}"}
        gone = served.http.delete(f"/v1/sso/clients/{exams.client_id}", headers=served.as_org("partner"))
        assert gone.status_code == 200 and gone.json()["disabled"] is True
        assert httpx.get(doc["userinfo_endpoint"], headers=bearer).status_code == 401
        with _browser(served) as browser:
            refused, _ = _authorize(served, browser, _session(exams, ["openid"]), doc)
            assert refused.status_code == 400 and "未知的平台" in refused.text


def test_one_person_one_subject_per_sector_across_cards(env: Path) -> None:
    """Pairwise subjects (Core 8.1): two sectors see two subjects for one person; one sector
    (two platforms of one organisation that say so) sees one; a student card and the
    graduate card that continues it are one person to a client."""
    with served_network(env / "data") as served:
        doc = _discovery(served)
        holder, other = _issue(served, 4), _issue(served, 5)
        exams = _register(served, "partner", EXAMS)
        courses = _register(served, "partner", COURSES)  # another host: another sector
        library = _register(served, "partner", LIBRARY, sector="127.0.0.1")  # the exams' sector, said
        bureau_exams = _register(served, "bureau", EXAMS, public=True)  # another organisation, public client
        assert bureau_exams.secret is None

        def sub(client: Client, who: Holder) -> str:
            return str(_sign_in(served, doc, client, who, scope=["openid"], keep=set()).claims["sub"])

        at_exams = sub(exams, holder)
        assert sub(exams, holder) == at_exams  # the same account every time
        assert sub(courses, holder) != at_exams
        assert sub(library, holder) == at_exams
        assert sub(bureau_exams, holder) not in (at_exams, sub(courses, holder))
        assert sub(exams, other) != at_exams

        # Graduation: the graduate card (same person, same key) signs in as the same account.
        school = served.as_org("school-a")
        grad = served.http.post(
            f"/v1/identity/cards/{holder.card['card_id']}/graduate",
            headers=school,
            json={"graduation_date": "2028-06-30"},
        ).json()["cards"][0]
        graduate = _claim(served, grad["claim_code"], holder.key)
        signed = _sign_in(served, doc, exams, graduate, scope=["openid", "card"], keep=set())
        assert signed.claims["sub"] == at_exams and signed.claims["cardKind"] == "graduate"
        # ... and the ended student card no longer signs in.
        oauth = _session(exams, ["openid"])
        with _browser(served) as browser:
            page, _ = _authorize(served, browser, oauth, doc)
            _, challenge_id, cont = _page_links(page.text)
            _answer(served, holder, challenge_id, set())
            assert _error_redirect(browser.get(cont), exams)["error_description"].endswith("card_ended")


def test_registration_of_relying_parties(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_network(env / "data") as served:
        partner = served.as_org("partner")
        for body, code in [
            ({"redirect_uris": ["http://exams.example/cb"]}, "bad_redirect_uri"),
            ({"redirect_uris": ["https://exams.example/cb#x"]}, "bad_redirect_uri"),
            ({"redirect_uris": ["https://a.example/cb", "https://b.example/cb"]}, "sector_required"),
            ({"redirect_uris": ["https://a.example/cb"], "sector": "A B"}, "bad_sector"),
        ]:
            r = served.http.post("/v1/sso/clients", headers=partner, json={"name": "x", **body})
            assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)
        assert (
            served.http.post(
                "/v1/sso/clients",
                headers=served.as_org("auditor"),
                json={"name": "x", "redirect_uris": [EXAMS]},
            ).status_code
            == 403
        )
        made = _register(served, "partner", "https://exams.example/cb")
        listed = served.http.get("/v1/sso/clients", headers=partner).json()["clients"]
        assert [c["client_id"] for c in listed] == [made.client_id] and "client_secret" not in listed[0]
        assert listed[0]["sector"] == "exams.example"
        assert served.http.get("/v1/sso/clients", headers=served.as_org("bureau")).json()["clients"] == []
        assert (
            served.http.delete(
                f"/v1/sso/clients/{made.client_id}", headers=served.as_org("bureau")
            ).status_code
            == 404
        )  # not the bureau's


def test_in_a_real_browser_with_the_real_commands(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bureau registers a district exam platform with `eduledger sso add-client`; a student
    opens the sign-in page in chromium, answers with `eduledger wallet present`, and the page
    goes on by itself to the platform with the code."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    monkeypatch.setenv("EDULEDGER_WALLET_PASSPHRASE", "wallet passphrase")
    monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", str(2**10))
    # The platform's own callback, a real server (a browser follows a redirect past any route).
    platform = Starlette(
        routes=[Route("/exams/callback", lambda _r: HTMLResponse("<p>考试系统 signed in</p>"))]
    )
    from tests.servers import serve_app

    with serve_app(platform) as platform_base:
        _browser_sign_in(env, capsys, f"{platform_base}/exams/callback")


def _browser_sign_in(env: Path, capsys: pytest.CaptureFixture[str], callback: str) -> None:
    from api.app import create_app
    from api.cli import main as eduledger
    from ledger.node import Node, init_network
    from ledger.settings import Settings
    from node_config import DEMO_CONSORTIUM
    from tests.browser import browser_page
    from tests.servers import serve_app

    data = env / "data"
    settings = Settings(data_dir=data)
    init_network(settings, DEMO_CONSORTIUM).close()
    capsys.readouterr()
    assert (
        eduledger(
            [
                "sso",
                "add-client",
                "--org",
                "bureau",
                "--name",
                "区考试系统 District exams",
                "--redirect-uri",
                callback,
                "--data-dir",
                str(data),
            ]
        )
        == 0
    )
    printed = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines() if "  " in line)
    client = Client(printed["client_id"].strip(), printed["client_secret"].strip(), callback)
    assert eduledger(["sso", "clients", "--org", "bureau", "--data-dir", str(data)]) == 0
    assert client.client_id in capsys.readouterr().out

    node = Node(settings)
    try:
        keys = json.loads((data / "api-keys.json").read_text())
        app = create_app(node, background=False)
        with serve_app(app) as base, httpx.Client(base_url=base, timeout=120) as http:
            served = Served(node, base, keys, http, app)
            doc = _discovery(served)
            school = served.as_org("school-a")
            [mine] = http.post(
                "/v1/identity/cards",
                params={"kind": "student"},
                content=roster_zip([student(6)]),
                headers={**school, "Content-Type": "application/zip"},
            ).json()["cards"]
            wallet_dir = str(env / "wallet")
            assert eduledger(["wallet", "create", "--wallet-dir", wallet_dir]) == 0
            assert (
                eduledger(
                    ["wallet", "claim-card", mine["claim_code"], "--wallet-dir", wallet_dir, "--api", base]
                )
                == 0
            )
            oauth = _session(client, ["openid", "profile", "school"])
            nonce = secrets.token_urlsafe(16)
            url, state = oauth.authorization_url(doc["authorization_endpoint"], nonce=nonce)
            with browser_page(height=1100) as seen:
                page = seen.page
                page.goto(url)
                assert page.title().startswith("教育身份卡登录")
                assert "区考试系统 District exams" in page.inner_text(".who")
                assert page.locator("img.qr").evaluate("img => img.naturalWidth") > 100  # the QR drew
                from wallet.qr import decode_qr_png

                qr = page.get_attribute("img.qr", "src") or ""
                read = decode_qr_png(base64.b64decode(qr.removeprefix("data:image/png;base64,")))
                command = page.inner_text("#command")
                challenge_id = page.inner_text("#challenge")
                assert f"--challenge {challenge_id} --api {base}" in command
                assert read == [f"{base}/v1/identity/challenges/{challenge_id}"]  # what zxing reads
                seen.screenshot("sso-sign-in")
                # The student runs the command the page shows, with their card.
                assert eduledger(["wallet", "present", mine["card_id"][:12], "--challenge", challenge_id,
                                  "--wallet-dir", wallet_dir, "--api", base]) == 0
                page.wait_for_url(callback + "?**", timeout=30_000)  # the page went on by itself
                landed = page.url
                seen.screenshot("sso-signed-in")
                seen.assert_clean()  # the CSP let the page's one script run, and nothing else
            back = parse_qs(urlsplit(landed).query)
            assert back["state"] == [state] and "code" in back
            token = oauth.fetch_token(
                doc["token_endpoint"], authorization_response=landed, client_secret=client.secret
            )
            claims = _check_id_token(served, doc, token, client, nonce)
            assert claims["name"] == "学生0006" and claims["aud"] == client.client_id
    finally:
        node.close()
    capsys.readouterr()
