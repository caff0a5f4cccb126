"""`eduledger sign` and `eduledger verify-signature` through the real command line: a school
seals a grade sheet in-process and verifies it against the data directory; a teacher signs
one with `--wallet` against the school's API, and it fails once the card is suspended."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import main
from ledger.node import init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import served_network
from tests.signature_fixtures import grade_sheet, independent_pdf_check, marks_csv, teacher_wallet

PASS = "wallet passphrase"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "cli signatures")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    monkeypatch.setenv("EDULEDGER_WALLET_PASSPHRASE", PASS)
    monkeypatch.delenv("EDULEDGER_WALLET_PASSPHRASE_FILE", raising=False)
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


def test_a_school_seals_in_process_and_verifies_against_its_data_directory(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = env / "data"
    init_network(Settings(data_dir=data), DEMO_CONSORTIUM).close()
    sheet, csv = env / "grades.pdf", env / "marks.csv"
    sheet.write_bytes(grade_sheet())
    csv.write_bytes(marks_csv())
    assert (
        main(
            [
                "sign",
                str(sheet),
                "--org",
                "school-b",
                "--data-dir",
                str(data),
                "--out",
                str(env / "sealed.pdf"),
            ]
        )
        == 0
    )
    assert len(independent_pdf_check((env / "sealed.pdf").read_bytes())) == 1
    assert main(["verify-signature", str(env / "sealed.pdf"), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "VALID 有效" in out and "示范区实验小学" in out and "+08:00" in out
    assert (
        main(
            [
                "sign",
                str(csv),
                "--org",
                "school-b",
                "--format",
                "sm2",
                "--data-dir",
                str(data),
                "--out",
                str(env / "marks.sig"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "verify-signature",
                str(csv),
                "--signature",
                str(env / "marks.sig"),
                "--data-dir",
                str(data),
                "--json",
            ]
        )
        == 0
    )
    csv.write_bytes(marks_csv() + b"changed\n")
    assert (
        main(["verify-signature", str(csv), "--signature", str(env / "marks.sig"), "--data-dir", str(data)])
        == 1
    )
    assert "document_altered" in capsys.readouterr().err
    # An auditor does not seal; a file that is not there: one line each, exit 2.
    assert (
        main(["sign", str(sheet), "--org", "auditor", "--data-dir", str(data), "--out", str(env / "x.pdf")])
        == 2
    )
    assert main(["verify-signature", str(env / "missing.pdf"), "--data-dir", str(data)]) == 2


def test_a_teacher_signs_with_the_wallet_command(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with served_network(env / "data") as served:
        wallet, card_id = teacher_wallet(served, env / "wallet")
        del wallet
        sheet = env / "grades.pdf"
        sheet.write_bytes(grade_sheet())
        signing = [
            "--wallet",
            "--card",
            card_id[:12],
            "--wallet-dir",
            str(env / "wallet"),
            "--api",
            served.base,
        ]
        assert main(["sign", str(sheet), *signing, "--out", str(env / "signed.pdf")]) == 0
        assert "VALID 有效" in capsys.readouterr().out
        assert main(["verify-signature", str(env / "signed.pdf"), "--api", served.base]) == 0
        assert "教师 teacher" in capsys.readouterr().out

        suspended = served.http.post(
            f"/v1/identity/cards/{card_id}/status",
            headers=served.as_org("school-a"),
            json={"action": "suspend", "reason": 1},
        )
        assert suspended.status_code == 200
        csv = env / "marks.csv"
        csv.write_bytes(marks_csv())
        assert main(["sign", str(csv), *signing, "--out", str(env / "marks.jws")]) == 1
        assert "card_not_active_at_signing" in capsys.readouterr().out
        assert (
            main(["verify-signature", str(csv), "--signature", str(env / "marks.jws"), "--api", served.base])
            == 1
        )
        # The grade sheet signed before the suspension still verifies.
        assert main(["verify-signature", str(env / "signed.pdf"), "--api", served.base]) == 0
        assert "since 此后: card suspended" in capsys.readouterr().out
