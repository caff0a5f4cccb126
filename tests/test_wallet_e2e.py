"""The wallet CLI against the real API: the demo consortium on the embedded chain, over HTTP.

A school issues transcripts; the graduate redeems one with `wallet redeem`, shares three
claims with `wallet share` (the QR code it writes decodes to the link), an employer's
check passes, and after `wallet withdraw` it no longer does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from api.cli.wallet import add_wallet_commands
from ledger.errors import LedgerError
from wallet.client import ApiClient
from wallet.holder import Wallet
from wallet.qr import decode_qr_png

credential_fixtures = pytest.importorskip("tests.credential_fixtures")

PASS = "e2e wallet passphrase"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="eduledger")
    add_wallet_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LedgerError as exc:
        print(f"eduledger: {exc.message}", file=sys.stderr)
        return 2


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "e2e passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    monkeypatch.setenv("EDULEDGER_WALLET_PASSPHRASE", PASS)
    monkeypatch.setenv("EDULEDGER_WALLET_SCRYPT_N", str(2**10))
    monkeypatch.delenv("EDULEDGER_WALLET_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("EDULEDGER_API_URL", raising=False)
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


def test_wallet_cli_against_the_api(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with credential_fixtures.served_network(env / "data") as served:
        r = served.issue("school-a", "transcript",
                         [credential_fixtures.transcript_row(n) for n in range(3)])
        assert r.status_code == 201, r.text
        issued = r.json()["credentials"][1]
        wdir = str(env / "wallet")
        api = served.base

        assert run_cli(["wallet", "create", "--wallet-dir", wdir]) == 0
        assert run_cli(["wallet", "redeem", issued["claim_code"], "--wallet-dir", wdir,
                        "--api", api]) == 0
        assert run_cli(["wallet", "redeem", issued["claim_code"], "--wallet-dir", wdir,
                        "--api", api]) == 2
        assert "already" in capsys.readouterr().err

        wallet = Wallet.open(wdir, PASS)
        (held,) = wallet.list_credentials()
        assert held.credential_id == issued["credential_id"]
        assert held.anchor is not None  # the anchor proof came with the credential

        assert run_cli(["wallet", "show", held.credential_id, "--wallet-dir", wdir]) == 0
        shown = capsys.readouterr().out
        assert "credentialSubject.courses.4.grade" in shown

        png = env / "share.png"
        assert run_cli(["wallet", "share", held.credential_id[9:17], "--wallet-dir", wdir,
                        "--api", api + "/", "--days", "30", "--qr-png", str(png),
                        "--claims", "credentialSubject.holderName", "credentialSubject.courses.1",
                        "credentialSubject.courses.4.grade"]) == 0
        out = capsys.readouterr().out
        (share,) = Wallet.open(wdir, PASS).list_shares()
        assert f"url      {share.url}" in out
        assert decode_qr_png(png.read_bytes()) == [share.url]

        with ApiClient(api) as client:
            result = client.share_status(share.share_id)
            assert result["valid"] is True, result.get("failures")
            subject = result["claims"]["credentialSubject"]
            assert set(subject) == {"holderName", "courses"}
            assert subject["courses"][0]["code"] == "CS101"
            assert subject["courses"][1] == {"grade": "74"}

            assert run_cli(["wallet", "withdraw", share.share_id, "--wallet-dir", wdir]) == 0
            assert Wallet.open(wdir, PASS).list_shares() == []
            after = client.share_status(share.share_id)
            assert after["valid"] is False
