"""The holder wallet: QR codes, the encrypted key, credentials, presentations, the API
client (over real HTTP against a stub of the documented API) and the CLI."""

from __future__ import annotations

import io
import json
import pickle
import stat
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from PIL import Image

from tests.servers import free_port, serve_app
from wallet import holder as holder_mod
from wallet.client import ApiClient, normalize_base_url
from wallet.holder import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    Wallet,
    WalletError,
    claim_selector,
    dotted,
)
from wallet.qr import decode_qr_png, qr_png, qr_svg

PASS = "correct horse battery staple"
FAST_N = 2**10  # scrypt cost for tests that make many wallets; the default is checked below
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, "EDULEDGER_WALLET_DIR", "EDULEDGER_API_URL",
                 "EDULEDGER_WALLET_SCRYPT_N"):
        monkeypatch.delenv(name, raising=False)


def _sdjwt() -> Any:
    return pytest.importorskip("ledger.credentials.sdjwt")


# --------------------------------------------------------------------------- QR codes


SHARE_URL = "https://verify.eduledger.example.edu.cn/s/7Yq3kR9xZb2LwPn4Vt8HcA?lang=zh-CN"


@pytest.mark.parametrize(
    "text",
    [
        SHARE_URL,
        "http://127.0.0.1:8000/s/" + "A" * 43,
        "https://example.org/s/" + "x" * 300,  # long link: a bigger QR version
        "张三 · 北京市第一中学 · 2024届 毕业证书 https://verify.example.cn/s/abc",
        "成绩单：数学 优秀；语文 良好",
    ],
)
def test_qr_png_round_trip(text: str) -> None:
    png = qr_png(text)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_qr_png(png) == [text]


def test_qr_png_options() -> None:
    small = qr_png(SHARE_URL, box_size=2, border=4)
    big = qr_png(SHARE_URL, box_size=12, border=1)
    assert decode_qr_png(small) == [SHARE_URL]
    assert decode_qr_png(big) == [SHARE_URL]
    with Image.open(io.BytesIO(big)) as image:
        width, height = image.size
    assert width == height and width % 12 == 0


def test_qr_rejects_bad_input() -> None:
    for bad in ("", "x" * 3000):
        with pytest.raises(Exception) as info:
            qr_png(bad)
        assert getattr(info.value, "code", None) == "invalid_qr_text"
    with pytest.raises(Exception) as info:
        decode_qr_png(b"not an image")
    assert getattr(info.value, "code", None) == "invalid_image"
    # A PNG with no QR code in it decodes to nothing.
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, format="PNG")
    assert decode_qr_png(buffer.getvalue()) == []


@pytest.mark.parametrize("text", [SHARE_URL, "张三 毕业证书 https://verify.example.cn/s/abc"])
def test_qr_svg_is_a_standalone_document(text: str) -> None:
    svg = qr_svg(text)
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox")
    paths = root.findall(f".//{SVG_NS}path")
    assert paths and all(p.get("d", "").strip() for p in paths)
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:  # cairosvg (and its C library) is not a dependency: path data suffices
        return
    assert decode_qr_png(cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=400)) == [text]


def test_svg_and_png_encode_the_same_symbol() -> None:
    """The SVG draws the same modules as the PNG: count its unit squares."""
    svg = qr_svg(SHARE_URL, border=0)
    root = ET.fromstring(svg.encode("utf-8"))
    view = root.get("viewBox", "").split()
    modules = int(float(view[2]))  # box_size 10 in qrcode's SVG units: one unit per module
    with Image.open(io.BytesIO(qr_png(SHARE_URL, box_size=1, border=0))) as image:
        assert image.size == (modules, modules)


# --------------------------------------------------------------------------- wallet key


def test_create_open_and_wrong_passphrase(tmp_path: Path) -> None:
    root = tmp_path / "w"
    created = Wallet.create(root, PASS)
    assert created.holder_jwk["kty"] == "OKP" and created.holder_jwk["crv"] == "Ed25519"
    opened = Wallet.open(root, PASS)
    assert opened.holder_jwk == created.holder_jwk
    assert opened.thumbprint == created.thumbprint
    with pytest.raises(WalletError) as info:
        Wallet.open(root, PASS + "!")
    assert info.value.code == "wrong_passphrase"
    assert PASS not in info.value.message

    doc = json.loads((root / "wallet.json").read_text())
    params = doc["key"]["kdfparams"]
    assert (params["n"], params["r"], params["p"]) == (2**15, 8, 1)
    assert doc["key"]["cipher"] == "aes-256-gcm"


def test_scrypt_cost_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", str(2**11))
    Wallet.create(tmp_path / "a", PASS)
    assert json.loads((tmp_path / "a" / "wallet.json").read_text())["key"]["kdfparams"]["n"] == 2**11
    for bad in ("1000", "x", str(2**30)):
        monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", bad)
        with pytest.raises(WalletError):
            Wallet.create(tmp_path / "b", PASS)
        assert not (tmp_path / "b").exists()


def test_create_refuses_existing_and_open_needs_a_wallet(tmp_path: Path) -> None:
    Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    before = (tmp_path / "wallet.json").read_bytes()
    with pytest.raises(WalletError) as info:
        Wallet.create(tmp_path, "another", scrypt_n=FAST_N)
    assert info.value.code == "wallet_exists"
    assert (tmp_path / "wallet.json").read_bytes() == before
    with pytest.raises(WalletError) as info:
        Wallet.open(tmp_path / "nowhere", PASS)
    assert info.value.code == "no_wallet"


def test_files_are_private(tmp_path: Path) -> None:
    root = tmp_path / "w"
    wallet = Wallet.create(root, PASS, scrypt_n=FAST_N)
    assert stat.S_IMODE((root / "wallet.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    wallet.record_share("cred-1", _share_answer("s1"), api="http://api", claims=["a"])
    for path in (root / "shares").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_private_key_never_shown(tmp_path: Path) -> None:
    wallet = Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    raw = wallet._key.private_bytes_raw()
    from ledger.credentials.jose import b64url

    file_text = (tmp_path / "wallet.json").read_text()
    for form in (raw.hex(), b64url(raw)):
        assert form not in file_text
        assert form not in repr(wallet) and form not in str(wallet)
    assert "d" not in wallet.holder_jwk
    with pytest.raises(TypeError):
        pickle.dumps(wallet)
    share = wallet.record_share("cred-1", _share_answer("s1"), api="http://api")
    assert "tok-s1" not in repr(share)


def test_passphrase_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WalletError) as info:
        Wallet.create(tmp_path / "a", scrypt_n=FAST_N)
    assert info.value.code == "no_passphrase"
    assert PASSPHRASE_ENV in info.value.message and PASSPHRASE_FILE_ENV in info.value.message
    assert not (tmp_path / "a").exists()

    monkeypatch.setenv(PASSPHRASE_ENV, PASS)
    Wallet.create(tmp_path / "a", scrypt_n=FAST_N)
    Wallet.open(tmp_path / "a")

    monkeypatch.delenv(PASSPHRASE_ENV)
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text(PASS + "\n")
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(secret_file))
    Wallet.open(tmp_path / "a")  # the trailing newline is not part of the passphrase

    secret_file.write_text("")
    with pytest.raises(WalletError) as info:
        Wallet.open(tmp_path / "a")
    assert info.value.code == "no_passphrase"
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(WalletError) as info:
        Wallet.open(tmp_path / "a")
    assert info.value.code == "no_passphrase"
    with pytest.raises(WalletError) as info:
        Wallet.create(tmp_path / "b", "", scrypt_n=FAST_N)
    assert info.value.code == "empty_passphrase"


def test_wallet_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDULEDGER_WALLET_DIR", str(tmp_path / "envdir"))
    wallet = Wallet.create(None, PASS, scrypt_n=FAST_N)
    assert wallet.directory == tmp_path / "envdir"
    assert (tmp_path / "envdir" / "wallet.json").is_file()
    monkeypatch.delenv("EDULEDGER_WALLET_DIR")
    assert holder_mod.default_wallet_dir() == Path.home() / ".eduledger" / "wallet"


def test_create_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while writing leaves no wallet file and no temporary file behind."""

    def boom(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    for target in ("link", "fsync"):
        with monkeypatch.context() as m:
            m.setattr(holder_mod.os, target, boom)
            with pytest.raises(WalletError) as info:
                Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
        assert info.value.code == "wallet_io"
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wallet.json"]


def test_rewrite_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing a record that fails half way keeps the old record whole."""
    wallet = Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    wallet.record_share("cred-1", _share_answer("s1"), api="http://api")
    (share_file,) = (tmp_path / "shares").iterdir()
    before = share_file.read_bytes()

    def boom(*_: Any) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(holder_mod.os, "replace", boom)
    with pytest.raises(WalletError):
        wallet.record_share("cred-2", _share_answer("s1"), api="http://api")
    assert share_file.read_bytes() == before
    assert [p.name for p in (tmp_path / "shares").iterdir()] == [share_file.name]


def test_concurrent_creates_make_one_wallet(tmp_path: Path) -> None:
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def make(i: int) -> None:
        barrier.wait()
        try:
            results.append(Wallet.create(tmp_path, f"{PASS}-{i}", scrypt_n=FAST_N))
        except WalletError as exc:
            results.append(exc)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, Wallet)]
    assert len(winners) == 1
    assert all(r.code == "wallet_exists" for r in results if isinstance(r, WalletError))
    assert [p.name for p in tmp_path.iterdir()] == ["wallet.json"]


def test_tampered_wallet_file(tmp_path: Path) -> None:
    Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    path = tmp_path / "wallet.json"
    original = json.loads(path.read_text())

    doc = json.loads(json.dumps(original))
    doc["key"]["kdfparams"]["n"] = 2**30  # must not allocate a terabyte
    path.write_text(json.dumps(doc))
    with pytest.raises(WalletError) as info:
        Wallet.open(tmp_path, PASS)
    assert info.value.code == "wallet_corrupt"

    doc = json.loads(json.dumps(original))
    other = Ed25519PrivateKey.generate()
    from ledger.credentials.jose import ed25519_jwk

    doc["holder_jwk"] = ed25519_jwk(other.public_key())  # swap the public key
    path.write_text(json.dumps(doc))
    with pytest.raises(WalletError) as info:
        Wallet.open(tmp_path, PASS)
    assert info.value.code == "wrong_passphrase"  # the AAD binds key and public part

    path.write_text("{not json")
    with pytest.raises(WalletError) as info:
        Wallet.open(tmp_path, PASS)
    assert info.value.code == "wallet_corrupt"


# --------------------------------------------------------------------------- shares


def _share_answer(share_id: str, expires_at: str = "2099-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "share_id": share_id,
        "url": f"http://api/s/{share_id}",
        "qr_png_url": f"http://api/s/{share_id}/qr.png",
        "qr_svg_url": f"http://api/s/{share_id}/qr.svg",
        "expires_at": expires_at,
        "withdraw_token": f"tok-{share_id}",
    }


def test_share_records(tmp_path: Path) -> None:
    wallet = Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    assert wallet.list_shares() == []
    wallet.record_share("cred-1", _share_answer("abc123"), api="http://api", claims=["x.y"])
    wallet.record_share("cred-1", _share_answer("abd456", "2000-01-01T00:00:00Z"), api="http://api")
    wallet.record_share("cred-2", _share_answer("../../etc/passwd"), api="http://api")
    shares = Wallet.open(tmp_path, PASS).list_shares()
    assert len(shares) == 3
    assert {s.share_id for s in shares} == {"abc123", "abd456", "../../etc/passwd"}
    assert all(p.parent == tmp_path / "shares" for p in (tmp_path / "shares").iterdir())

    got = wallet.get_share("abc")
    with pytest.raises(WalletError) as info:
        wallet.get_share("ab")
    assert info.value.code == "ambiguous_share"
    got = wallet.get_share("abc1")
    assert got.claims == ("x.y",) and got.withdraw_token == "tok-abc123"
    assert not got.expired and wallet.get_share("abd").expired

    wallet.forget_share("abc")
    assert {s.share_id for s in wallet.list_shares()} == {"abd456", "../../etc/passwd"}
    with pytest.raises(WalletError) as info:
        wallet.forget_share("abc123")
    assert info.value.code == "unknown_share"
    with pytest.raises(WalletError) as info:
        wallet.record_share("cred-1", {"share_id": "x"}, api="http://api")
    assert info.value.code == "bad_response"


# --------------------------------------------------------------------------- claim selection


AVAILABLE: list[tuple[tuple[str | int, ...], Any]] = [
    (("credentialSubject", "holder_name"), "张三"),
    (("credentialSubject", "courses", 0), {"name": "数学", "grade": "A"}),
    (("credentialSubject", "courses", 1), {"name": "语文", "grade": "B"}),
    (("credentialSubject", "courses", 1, "grade"), "B"),
    (("credentialSubject", "degree"), {"type": "BachelorDegree", "name": "工学学士"}),
]


def _kept(chosen: list[str]) -> list[str]:
    keep = claim_selector(AVAILABLE, chosen)
    return [dotted(path) for path, value in AVAILABLE if keep(path, value)]


def test_claim_selector_semantics() -> None:
    assert _kept(["credentialSubject.holder_name"]) == ["credentialSubject.holder_name"]
    # A whole course line brings what lies under it.
    assert _kept(["credentialSubject.courses.1"]) == [
        "credentialSubject.courses.1", "credentialSubject.courses.1.grade"]
    # A field brings its ancestors, which must be disclosed for it to be seen.
    assert _kept(["credentialSubject.courses.1.grade"]) == [
        "credentialSubject.courses.1", "credentialSubject.courses.1.grade"]
    # A field inside a disclosure that is not itself disclosable: its disclosure.
    assert _kept(["credentialSubject.degree.name"]) == ["credentialSubject.degree"]
    assert _kept(["credentialSubject.courses"]) == [
        "credentialSubject.courses.0", "credentialSubject.courses.1", "credentialSubject.courses.1.grade"]
    assert _kept([]) == []


@pytest.mark.parametrize(
    "bad",
    ["credentialSubject.courses.7", "credentialSubject.nickname", "credentialSubject.degree.level",
     "credentialSubject..courses", "", "credentialSubject.holder_name.x"],
)
def test_claim_selector_unknown_paths(bad: str) -> None:
    with pytest.raises(WalletError) as info:
        claim_selector(AVAILABLE, ["credentialSubject.holder_name", bad])
    assert info.value.code == "unknown_claim"
    assert repr(bad) in info.value.message or bad in info.value.message


# --------------------------------------------------------------------------- stub API


class StubApi:
    """Mimics the documented responses of the eduledger API for the wallet's requests."""

    def __init__(self, issue: Any = None, verify: Any = None) -> None:
        self.base = ""
        self.issue = issue  # (code, holder_jwk) -> (credential_id, compact)
        self.verify = verify  # (presentation, audience) -> None, raises if it does not verify
        self.redeemed: set[str] = set()
        self.shares: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        app = FastAPI()
        self.app = app

        def error(status: int, code: str, message: str) -> JSONResponse:
            return JSONResponse({"code": code, "message": message}, status_code=status)

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            self.requests.append((request.method, request.url.path, dict(request.headers)))
            return await call_next(request)

        @app.post("/v1/claims/redeem")
        async def redeem(request: Request) -> Any:
            body = await request.json()
            code = body.get("code")
            if code == "BOOM":
                return PlainTextResponse("upstream \x1b[31mexploded\x1b[0m\n", status_code=502)
            if code == "NOT-JSON":
                return JSONResponse(["not", "an", "object"])
            if code == "SLOW":
                import asyncio

                await asyncio.sleep(1)
            if code in self.redeemed:
                return error(409, "claim_already_redeemed", "this claim code has already been used")
            if self.issue is None or not code.startswith("GOOD"):
                return error(404, "claim_not_found", "no such claim code")
            jwk = body.get("holder_jwk")
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP":
                return error(422, "invalid_input", "holder_jwk must be an OKP JWK")
            self.redeemed.add(code)
            credential_id, compact = self.issue(code, jwk)
            return {"credential_id": credential_id, "credential": compact, "type": "Transcript",
                    "issuer": {"id": "did:eduledger:1:0x00:1", "name": "北京市第一中学"}}

        @app.post("/v1/shares", status_code=201)
        async def create_share(request: Request) -> Any:
            body = await request.json()
            days = body.get("expires_in_days")
            if not isinstance(days, int) or not 1 <= days <= 180:
                return error(422, "invalid_input", "expires_in_days must be 1..180")
            presentation = body.get("presentation")
            if not isinstance(presentation, str) or presentation.endswith("~"):
                return error(422, "holder_binding_missing", "the presentation has no key binding")
            if self.verify is not None:  # like the API: the holder's KB-JWT names this API
                try:
                    self.verify(presentation, self.base)
                except Exception as exc:
                    return error(422, getattr(exc, "code", "invalid_input"), str(exc))
            share_id = f"sh{len(self.shares) + 1:04d}"
            self.shares[share_id] = {"presentation": presentation, "days": days, "withdrawn": False}
            return {"share_id": share_id, "url": f"{self.base}/s/{share_id}",
                    "qr_png_url": f"{self.base}/s/{share_id}/qr.png",
                    "qr_svg_url": f"{self.base}/s/{share_id}/qr.svg",
                    "expires_at": "2099-01-01T00:00:00Z", "withdraw_token": f"wt-{share_id}"}

        @app.delete("/v1/shares/{share_id}")
        async def withdraw(share_id: str, request: Request) -> Any:
            share = self.shares.get(share_id)
            if share is None or share["withdrawn"]:
                return error(404, "share_not_found", "no such share")
            if request.headers.get("x-withdraw-token") != f"wt-{share_id}":
                return error(403, "invalid_withdraw_token", "wrong withdraw token")
            share["withdrawn"] = True
            return Response(status_code=204)

        @app.get("/s/{share_id}")
        async def status(share_id: str) -> Any:
            share = self.shares.get(share_id)
            if share is None:
                return error(404, "share_not_found", "no such share")
            if share["withdrawn"]:
                return error(410, "share_withdrawn", "the holder withdrew this share")
            return {"share_id": share_id, "valid": True, "checks": []}


@pytest.fixture
def stub() -> Iterator[StubApi]:
    api = StubApi()
    with serve_app(api.app) as base:
        api.base = base
        yield api


def test_normalize_base_url() -> None:
    assert normalize_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert normalize_base_url(" https://x.edu.cn/api// ") == "https://x.edu.cn/api"
    for bad in ("ftp://x", "127.0.0.1:8000", "http://", "http://x/?a=1", ""):
        with pytest.raises(WalletError) as info:
            normalize_base_url(bad)
        assert info.value.code == "invalid_api_url"


def test_client_maps_server_errors(stub: StubApi) -> None:
    with ApiClient(stub.base + "/") as client:
        assert client.base_url == stub.base
        with pytest.raises(WalletError) as info:
            client.redeem("NOPE", {"kty": "OKP", "crv": "Ed25519", "x": "AA"})
        assert (info.value.code, info.value.message) == ("claim_not_found", "no such claim code")
        assert info.value.details["status"] == 404

        stub.redeemed.add("USED")
        with pytest.raises(WalletError) as info:
            client.redeem("USED", {"kty": "OKP"})
        assert info.value.code == "claim_already_redeemed"
        assert info.value.details["status"] == 409

        with pytest.raises(WalletError) as info:  # not JSON: the status and a safe message
            client.redeem("BOOM", {"kty": "OKP"})
        assert info.value.code == "http_502" and "502" in info.value.message
        with pytest.raises(WalletError) as info:
            client.redeem("NOT-JSON", {"kty": "OKP"})
        assert info.value.code == "bad_response"
        with pytest.raises(WalletError) as info:
            client.redeem("  ", {"kty": "OKP"})
        assert info.value.code == "invalid_claim_code"

        with pytest.raises(WalletError) as info:
            client.create_share("a~b~", 30)
        assert info.value.code == "holder_binding_missing"
        for days in (0, 181, True):
            with pytest.raises(WalletError) as info:
                client.create_share("x", days)
            assert info.value.code == "invalid_expiry"

        share = client.create_share("presentation-with-kb", 30)
        assert share["url"] == f"{stub.base}/s/{share['share_id']}"
        assert client.share_status(share["share_id"])["valid"] is True
        with pytest.raises(WalletError) as info:
            client.withdraw_share(share["share_id"], "wrong")
        assert info.value.code == "invalid_withdraw_token"
        client.withdraw_share(share["share_id"], share["withdraw_token"])
        assert stub.requests[-1][2]["x-withdraw-token"] == share["withdraw_token"]
        with pytest.raises(WalletError) as info:
            client.share_status(share["share_id"])
        assert (info.value.code, info.value.details["status"]) == ("share_withdrawn", 410)
        with pytest.raises(WalletError) as info:
            client.withdraw_share("../../v1/claims/redeem", "t")
        assert info.value.code == "share_not_found" or info.value.details["status"] in (404, 405)
        with pytest.raises(WalletError) as info:
            client.withdraw_share("..", "t")
        assert info.value.code == "unknown_share"


def test_client_cannot_reach(stub: StubApi) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ApiClient(url) as client, pytest.raises(WalletError) as info:
        client.share_status("x")
    assert info.value.code == "api_unreachable"
    assert info.value.message.startswith(f"cannot reach {url}")

    with ApiClient(stub.base, timeout=0.2) as client, pytest.raises(WalletError) as info:
        client.redeem("SLOW", {"kty": "OKP"})
    assert info.value.code == "api_unreachable"


# --------------------------------------------------------------------------- credentials
# These need ledger.credentials.sdjwt.

AUD = "http://127.0.0.1:8000"
COURSES = [
    {"code": f"MATH{100 + i}", "name": f"课程 {i}", "credits": 2 + i % 3, "grade": "ABCDE"[i % 5]}
    for i in range(10)
]


class Issuer:
    """A test issuer with its own Ed25519 key that issues transcripts bound to a holder."""

    def __init__(self) -> None:
        self.sdjwt = _sdjwt()
        self.key = Ed25519PrivateKey.generate()
        self.kid = "did:eduledger:31337:0x" + "00" * 20 + ":1#ed25519-" + "ab" * 32
        self.count = 0

    def transcript(self, holder_jwk: dict[str, Any] | None) -> tuple[str, str]:
        self.count += 1
        credential_id = f"urn:uuid:{self.count:08x}-1111-4111-8111-111111111111"
        payload = {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": credential_id,
            "type": ["VerifiableCredential", "TranscriptCredential"],
            "issuer": {"id": "did:eduledger:31337:0x" + "00" * 20 + ":1", "name": "北京市第一中学"},
            "validFrom": "2024-07-01T00:00:00Z",
            "credentialSubject": {"holder_name": "张三", "student_id": "20200001",
                                  "courses": [dict(c) for c in COURSES]},
        }
        issued = self.sdjwt.issue(payload, key=self.key, kid=self.kid, holder_jwk=holder_jwk)
        return credential_id, issued.compact

    def verify(self, presentation: str, aud: str) -> Any:
        return self.sdjwt.verify(presentation, issuer_key=lambda _h, _p: self.key.public_key(),
                                 require_key_binding=True, aud=aud)


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet.create(tmp_path / "wallet", PASS, scrypt_n=FAST_N)


def _add(wallet: Wallet, issuer: Issuer) -> str:
    credential_id, compact = issuer.transcript(wallet.holder_jwk)
    wallet.add_credential(compact, credential_id=credential_id, type="Transcript",
                          issuer={"id": "did:x", "name": "北京市第一中学"})
    return credential_id


def test_present_three_of_ten_transcript_lines(wallet: Wallet, issuer: Issuer) -> None:
    sdjwt = issuer.sdjwt
    credential_id = _add(wallet, issuer)
    original = wallet.get(credential_id).compact
    chosen = [1, 4, 7]
    presentation = wallet.present(credential_id, [f"credentialSubject.courses.{i}" for i in chosen],
                                  aud=AUD)

    verified = issuer.verify(presentation, AUD)
    assert verified.claims["credentialSubject"] == {"courses": [COURSES[i] for i in chosen]}
    disclosed = {path for path, _ in sdjwt.disclosure_paths(presentation.rsplit("~", 1)[0] + "~")}
    expected: set[tuple[str | int, ...]] = {("credentialSubject", "courses")}
    for i in chosen:
        expected.add(("credentialSubject", "courses", i))
        expected.update(("credentialSubject", "courses", i, name) for name in COURSES[i])
    assert disclosed == expected
    # Only the issuer's own disclosures, the same issuer-signed JWT, one KB-JWT for the audience.
    parsed, source = sdjwt.parse(presentation), sdjwt.parse(original)
    assert parsed.issuer_jwt == source.issuer_jwt
    assert {d.encoded for d in parsed.disclosures} <= {d.encoded for d in source.disclosures}
    assert len(parsed.disclosures) == len(expected)
    assert verified.key_binding["aud"] == AUD
    assert len(verified.key_binding["nonce"]) >= 16

    again = issuer.verify(wallet.present(credential_id, ["credentialSubject.courses.1"], aud=AUD), AUD)
    assert again.key_binding["nonce"] != verified.key_binding["nonce"]
    fixed = issuer.verify(wallet.present(credential_id, ["credentialSubject.courses.1"], aud=AUD,
                                         nonce="n-123"), AUD)
    assert fixed.key_binding["nonce"] == "n-123"
    with pytest.raises(Exception) as info:  # the KB-JWT names one audience only
        issuer.verify(presentation, "http://elsewhere.example")
    assert getattr(info.value, "code", None) == "holder_binding_invalid"


def test_present_single_fields(wallet: Wallet, issuer: Issuer) -> None:
    credential_id = _add(wallet, issuer)
    presentation = wallet.present(
        credential_id, ["credentialSubject.holder_name", "credentialSubject.courses.3.grade"], aud=AUD)
    claims = issuer.verify(presentation, AUD).claims["credentialSubject"]
    assert claims == {"holder_name": "张三", "courses": [{"grade": COURSES[3]["grade"]}]}
    everything = issuer.verify(wallet.present(credential_id, ["credentialSubject"], aud=AUD), AUD)
    assert everything.claims["credentialSubject"]["courses"] == COURSES
    nothing = issuer.verify(wallet.present(credential_id, [], aud=AUD), AUD)
    assert nothing.claims["credentialSubject"] == {}


def test_present_unknown_paths(wallet: Wallet, issuer: Issuer) -> None:
    credential_id = _add(wallet, issuer)
    for bad in ("credentialSubject.courses.10", "credentialSubject.gpa", "courses.1",
                "credentialSubject.courses.1.teacher", "issuer.name"):
        with pytest.raises(WalletError) as info:
            wallet.present(credential_id, ["credentialSubject.courses.1", bad], aud=AUD)
        assert info.value.code == "unknown_claim"
        assert bad in info.value.message
    with pytest.raises(WalletError) as info:
        wallet.present("urn:uuid:nope", ["credentialSubject.holder_name"], aud=AUD)
    assert info.value.code == "unknown_credential"


def test_credentials_store(wallet: Wallet, issuer: Issuer, tmp_path: Path) -> None:
    assert wallet.list_credentials() == []
    first = _add(wallet, issuer)
    second = _add(wallet, issuer)
    reopened = Wallet.open(tmp_path / "wallet", PASS)
    listed = reopened.list_credentials()
    assert [c.credential_id for c in listed] == [first, second]
    assert listed[0].issuer_name == "北京市第一中学" and listed[0].type == "Transcript"
    assert listed[0].compact not in repr(listed[0])
    for path in (tmp_path / "wallet" / "credentials").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert ":" not in path.name  # file names are hashes of the ids

    # By id, by prefix (with or without the urn:uuid: scheme), ambiguous, unknown.
    assert reopened.get(first).credential_id == first
    assert reopened.get("00000002").credential_id == second
    assert reopened.get("urn:uuid:00000001").credential_id == first
    for prefix, code in (("0000000", "ambiguous_credential"), ("urn:uuid:", "ambiguous_credential"),
                         ("ffff", "unknown_credential"), ("", "unknown_credential")):
        with pytest.raises(WalletError) as info:
            reopened.get(prefix)
        assert info.value.code == code

    claims = dict(reopened.claims(first))
    assert claims[("credentialSubject", "holder_name")] == "张三"
    assert claims[("credentialSubject", "courses", 3, "grade")] == COURSES[3]["grade"]
    assert claims[("credentialSubject", "courses", 9)] == COURSES[9]


def test_add_credential_checks(wallet: Wallet, issuer: Issuer) -> None:
    credential_id, compact = issuer.transcript(wallet.holder_jwk)
    stored = wallet.add_credential(compact, credential_id=credential_id, issuer="School")
    assert wallet.add_credential(compact, credential_id=credential_id) == stored  # idempotent
    _, other = issuer.transcript(wallet.holder_jwk)
    with pytest.raises(WalletError) as info:
        wallet.add_credential(other, credential_id=credential_id)
    assert info.value.code == "credential_exists"

    stranger = Ed25519PrivateKey.generate()
    from ledger.credentials.jose import ed25519_jwk

    for holder_jwk in (ed25519_jwk(stranger.public_key()), None):
        cid, foreign = issuer.transcript(holder_jwk)
        with pytest.raises(WalletError) as info:
            wallet.add_credential(foreign, credential_id=cid)
        assert info.value.code == "not_bound_to_wallet"

    presentation = wallet.present(credential_id, ["credentialSubject.holder_name"], aud=AUD)
    for bad in ("", "not-an-sd-jwt", compact.replace("~", "~garbage~", 1), presentation):
        with pytest.raises(WalletError) as info:
            wallet.add_credential(bad, credential_id="urn:uuid:bad")
        assert info.value.code == "invalid_credential"
    with pytest.raises(WalletError) as info:
        wallet.add_credential(compact, credential_id="bad\nid")
    assert info.value.code == "invalid_credential_id"
    assert [c.credential_id for c in wallet.list_credentials()] == [credential_id]


# --------------------------------------------------------------------------- CLI


def run_cli(argv: list[str]) -> int:
    """The ``eduledger`` command (a LedgerError -> one line on stderr, exit 2)."""
    from api.cli import main

    return main(argv)


@pytest.fixture
def issuing_stub(issuer: Issuer) -> Iterator[StubApi]:
    api = StubApi(issue=lambda _code, jwk: issuer.transcript(jwk), verify=issuer.verify)
    with serve_app(api.app) as base:
        api.base = base
        yield api


def test_cli_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  issuing_stub: StubApi, issuer: Issuer) -> None:
    stub = issuing_stub
    wdir = str(tmp_path / "w")
    monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", str(FAST_N))  # many commands, each unlocks
    assert run_cli(["wallet", "list", "--wallet-dir", wdir]) == 2
    assert "no wallet in" in capsys.readouterr().err
    assert run_cli(["wallet", "create", "--wallet-dir", wdir]) == 2
    assert "no wallet passphrase" in capsys.readouterr().err

    monkeypatch.setenv(PASSPHRASE_ENV, PASS)
    assert run_cli(["wallet", "create", "--wallet-dir", wdir]) == 0
    assert "created a wallet" in capsys.readouterr().out
    assert run_cli(["wallet", "create", "--wallet-dir", wdir]) == 2
    assert "already exists" in capsys.readouterr().err

    assert run_cli(["wallet", "redeem", "GOOD-1", "--wallet-dir", wdir, "--api", stub.base + "/"]) == 0
    out = capsys.readouterr().out
    assert "Transcript" in out and "北京市第一中学" in out
    assert run_cli(["wallet", "redeem", "GOOD-1", "--wallet-dir", wdir, "--api", stub.base]) == 2
    assert capsys.readouterr().err.strip() == "eduledger: this claim code has already been used"
    assert run_cli(["wallet", "redeem", "WRONG", "--wallet-dir", wdir, "--api", stub.base]) == 2
    assert "no such claim code" in capsys.readouterr().err
    assert run_cli(["wallet", "redeem", "GOOD-2", "--wallet-dir", wdir]) == 2
    assert "EDULEDGER_API_URL" in capsys.readouterr().err

    assert run_cli(["wallet", "list", "--wallet-dir", wdir]) == 0
    listing = capsys.readouterr().out
    credential_id = Wallet.open(wdir, PASS).list_credentials()[0].credential_id
    assert credential_id in listing and "北京市第一中学" in listing

    assert run_cli(["wallet", "show", credential_id[9:17], "--wallet-dir", wdir]) == 0
    shown = capsys.readouterr().out
    assert '  credentialSubject.holder_name = "张三"' in shown
    assert f'  credentialSubject.courses.3.grade = "{COURSES[3]["grade"]}"' in shown

    png, svg = tmp_path / "share.png", tmp_path / "share.svg"
    monkeypatch.setenv("EDULEDGER_API_URL", stub.base)  # --api from the environment
    assert run_cli(["wallet", "share", credential_id[9:17], "--wallet-dir", wdir,
                    "--claims", "credentialSubject.holder_name", "credentialSubject.courses.2",
                    "--days", "30", "--qr-png", str(png), "--qr-svg", str(svg)]) == 0
    out = capsys.readouterr().out
    (share_id, share) = next(iter(stub.shares.items()))
    url = f"{stub.base}/s/{share_id}"
    assert f"url      {url}" in out and str(png) in out and str(svg) in out
    assert decode_qr_png(png.read_bytes()) == [url]
    assert ET.fromstring(svg.read_bytes()).tag == f"{SVG_NS}svg"
    assert share["days"] == 30
    shared = issuer.verify(share["presentation"], stub.base).claims["credentialSubject"]
    assert shared == {"holder_name": "张三", "courses": [COURSES[2]]}

    assert run_cli(["wallet", "shares", "--wallet-dir", wdir]) == 0
    assert share_id in capsys.readouterr().out
    record = Wallet.open(wdir, PASS).get_share(share_id)
    assert record.withdraw_token == f"wt-{share_id}" and record.api == stub.base

    capsys.readouterr()
    for bad in (["--days", "0"], ["--days", "181"], ["--days", "x"]):
        with pytest.raises(SystemExit) as stop:
            run_cli(["wallet", "share", credential_id, "--wallet-dir", wdir,
                     "--claims", "credentialSubject.holder_name", *bad])
        err = capsys.readouterr().err  # one line, as every other CLI error
        assert stop.value.code == 2 and err.count("\n") == 1
        assert err.startswith("eduledger: argument --days: ")
    assert run_cli(["wallet", "share", credential_id, "--wallet-dir", wdir, "--days", "3",
                    "--claims", "credentialSubject.nickname"]) == 2
    assert "credentialSubject.nickname" in capsys.readouterr().err
    assert run_cli(["wallet", "share", credential_id, "--wallet-dir", wdir, "--days", "3",
                    "--claims", "credentialSubject.holder_name",
                    "--qr-png", str(tmp_path / "missing" / "x.png")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert len(stub.shares) == 1  # refused before anything was shared

    monkeypatch.delenv("EDULEDGER_API_URL")  # withdraw uses the API the share was made on
    assert run_cli(["wallet", "withdraw", share_id[:4], "--wallet-dir", wdir]) == 0
    assert "withdrew share" in capsys.readouterr().out
    assert share["withdrawn"] is True
    assert run_cli(["wallet", "shares", "--wallet-dir", wdir]) == 0
    assert capsys.readouterr().out.strip() == "no shares"
    assert run_cli(["wallet", "withdraw", share_id, "--wallet-dir", wdir]) == 2
    assert "no share" in capsys.readouterr().err


def test_cli_share_when_api_is_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], issuer: Issuer) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASS)
    wallet = Wallet.create(tmp_path, PASS, scrypt_n=FAST_N)
    credential_id = _add(wallet, issuer)
    url = f"http://127.0.0.1:{free_port()}"
    assert run_cli(["wallet", "share", credential_id, "--wallet-dir", str(tmp_path), "--api", url,
                    "--claims", "credentialSubject.holder_name", "--days", "1"]) == 2
    assert capsys.readouterr().err.startswith(f"eduledger: cannot reach {url}")
    assert wallet.list_shares() == []


def test_present_discloses_exactly_the_choice_property(tmp_path: Path) -> None:
    """For any choice of whole lines and single fields, the verifier sees exactly that."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    issuer = Issuer()
    wallet = Wallet.create(tmp_path / "w", PASS, scrypt_n=FAST_N)
    credential_id = _add(wallet, issuer)
    fields = sorted(COURSES[0])

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lines=st.sets(st.integers(0, 9)),
           single=st.sets(st.tuples(st.integers(0, 9), st.sampled_from(fields))),
           name=st.booleans())
    def check(lines: set[int], single: set[tuple[int, str]], name: bool) -> None:
        paths = [f"credentialSubject.courses.{i}" for i in sorted(lines)]
        paths += [f"credentialSubject.courses.{i}.{f}" for i, f in sorted(single)]
        paths += ["credentialSubject.holder_name"] if name else []
        claims = issuer.verify(wallet.present(credential_id, paths, aud=AUD), AUD).claims
        expected: dict[str, Any] = {}
        if name:
            expected["holder_name"] = "张三"
        shown = sorted(lines | {i for i, _ in single})
        if shown:
            expected["courses"] = [
                COURSES[i] if i in lines
                else {f: v for f, v in COURSES[i].items() if (i, f) in single}
                for i in shown
            ]
        assert claims["credentialSubject"] == expected

    check()


def test_wired_into_the_main_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main

    assert main(["wallet", "list", "--wallet-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("eduledger: no wallet in ")
