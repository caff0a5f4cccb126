"""`eduledger issue` (with its progress bar) and `eduledger verify FILE --rpc URL`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from api.app import create_app
from api.cli import DEMO_CONSORTIUM, main
from api.services import Services
from ledger.consortium.network import init_network
from ledger.credentials.anchorproof import envelope
from ledger.node import Node
from ledger.settings import Settings
from tests.servers import serve_app

ROSTERS = Path(__file__).parent / "data" / "rosters"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "cli tests")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    init_network(Settings(data_dir=tmp_path / "data"), DEMO_CONSORTIUM).close()
    return tmp_path / "data"


def test_issue_a_csv_roster_and_verify_against_the_node_alone(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "batch.json"
    code = main(["issue", "--roster", str(ROSTERS / "transcript.csv"), "--type", "transcript",
                 "--org", "school-a", "--data-dir", str(data_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "signing [" in err and "rows valid" in err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    batch = json.loads(out.read_text())
    assert batch["status"] == "anchored" and batch["count"] == 3

    node = Node(Settings(data_dir=data_dir))
    try:
        record = Services(node).credentials.get(batch["credentials"][0]["credential_id"])
        from ledger.credentials.anchorproof import AnchorRef

        file = tmp_path / "credential.json"
        file.write_text(json.dumps(envelope(record.sd_jwt,
                                            AnchorRef.from_dict(batch["credentials"][0]["anchor"]))))
        with serve_app(create_app(node, background=False)) as base:
            rpc = base + "/rpc"
            assert main(["verify", str(file), "--rpc", rpc, "--data-dir", str(data_dir)]) == 0
            shown = capsys.readouterr().out
            assert "VALID 有效" in shown and "ok   signature" in shown
            # Registry pinned explicitly, JSON output.
            registry = json.loads((data_dir / "network.json").read_text())["anchor_registry"]
            assert main(["verify", str(file), "--rpc", rpc, "--registry", registry, "--json"]) == 0
            assert json.loads(capsys.readouterr().out)["valid"] is True
            # A tampered file: exit 1 and the reason.
            doc = json.loads(file.read_text())
            doc["anchor"]["leaf"] = "0x" + "00" * 32
            file.write_text(json.dumps(doc))
            assert main(["verify", str(file), "--rpc", rpc, "--data-dir", str(data_dir)]) == 1
            assert "not_anchored" in capsys.readouterr().out
            # No trusted registry given: a one-line error.
            assert main(["verify", str(file), "--rpc", rpc]) == 2
            assert "which registry do you trust" in capsys.readouterr().err
    finally:
        node.close()


def test_bad_roster_is_reported_by_row(data_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"holder_name": "张三"}]))
    assert main(["issue", "--roster", str(bad), "--type", "transcript", "--org", "school-a",
                 "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eduledger: ") and err.count("\n") == 1
    assert main(["issue", "--roster", str(tmp_path / "missing.csv"), "--type", "transcript",
                 "--org", "school-a", "--data-dir", str(data_dir)]) == 2
    assert "cannot read" in capsys.readouterr().err
