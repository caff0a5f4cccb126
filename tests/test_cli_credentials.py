"""`eduledger issue` (with its progress bar) and `eduledger verify FILE --rpc URL`."""

from __future__ import annotations

import json
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.cli import main
from ledger.credentials.anchorproof import envelope
from ledger.credentials.roster import parse_roster
from ledger.credentials.types import CredentialType
from ledger.errors import one_line
from ledger.node import Node, NodeServices, init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import json_places, replaced_at
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
        record = NodeServices(node).credentials.get(batch["credentials"][0]["credential_id"])
        from ledger.anchoring.proof import AnchorProof

        file = tmp_path / "credential.json"
        file.write_text(json.dumps(envelope(record.sd_jwt,
                                            AnchorProof.from_dict(batch["credentials"][0]["anchor"]))))
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
            assert "anchor_proof_other_credential" in capsys.readouterr().out
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


def test_an_error_quoting_a_line_break_stays_on_one_line(data_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "odd.json"
    roster.write_text('{"\\n": null, "credentials": []}')  # found by the fuzz test below
    assert main(["issue", "--roster", str(roster), "--type", "transcript", "--org", "school-a",
                 "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eduledger: ") and err.count("\n") == 1 and "unknown keys: '\\n'" in err


@given(st.text())
def test_one_line_escapes_exactly_what_breaks_a_line(text: str) -> None:
    shown = one_line(text)
    assert len(shown.splitlines()) <= 1
    assert not any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in shown)
    if not any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in text):
        assert shown == text


# --- no input gives a traceback ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from ledger.keys import clear_keystore_cache

    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "cli fuzz")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    clear_keystore_cache()
    data_dir = tmp_path_factory.mktemp("cli-fuzz") / "data"
    node = init_network(Settings(data_dir=data_dir), DEMO_CONSORTIUM)
    try:
        batch = NodeServices(node).credentials.issue("school-a", CredentialType.DEGREE, parse_roster(json.dumps([{  # noqa: E501
            "holder_name": "学生", "student_id": "D1", "degree_name": "工学学士", "field": "工学",
            "conferral_date": "2026-06-30", "certificate_number": "10001-2026-00001"}]).encode(),
            fmt="json", ctype=CredentialType.DEGREE))
        issued = batch.credentials[0]
        valid = envelope(NodeServices(node).credentials.get(issued.credential_id).sd_jwt, issued.anchor)
        with serve_app(create_app(node, background=False)) as base:
            yield {"rpc": base + "/rpc", "data_dir": data_dir, "valid": valid,
                   "file": tmp_path_factory.mktemp("cli-fuzz-files") / "input"}
    finally:
        node.close()
        mp.undo()
        clear_keystore_cache()


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=8)


def _near_misses(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """The valid envelope with one part of it replaced."""
    return st.builds(lambda place, new: json.dumps(replaced_at(valid, place, new)).encode(),
                     st.sampled_from(json_places(valid)), _JSON)


def _still_valid(content: bytes, valid: dict[str, Any]) -> bool:
    """The file is the valid one, but for optional proof fields left out (null)."""
    try:
        doc = json.loads(content)
        anchor = dict(doc["anchor"])
    except (ValueError, TypeError, KeyError):
        return False
    optional = {k: v for k, v in anchor.items() if k in ("tx_hash", "block_number") and v is None}
    return {**doc, "anchor": {**anchor, **{k: valid["anchor"][k] for k in optional}}} == valid


@given(st.data())
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_cli_answers_any_file_with_a_verdict_or_one_line(
        cli_world: dict[str, Any], capsys: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    file: Path = cli_world["file"]
    command = data.draw(st.sampled_from(["verify", "issue"]))
    content = data.draw(st.binary(max_size=300) | _JSON.map(lambda v: json.dumps(v).encode())
                        | (_near_misses(cli_world["valid"]) if command == "verify" else
                           st.text(alphabet="abc,\"\n\r;=+-@\t0123456789学", max_size=120).map(str.encode)))
    file.write_bytes(content)
    capsys.readouterr()
    if command == "verify":
        code = main(["verify", str(file), "--rpc", cli_world["rpc"],
                     "--data-dir", str(cli_world["data_dir"])])
    else:
        fmt = data.draw(st.sampled_from(["json", "csv"]))
        code = main(["issue", "--roster", str(file), "--format", fmt, "--type", "degree", "--org", "school-a",
                     "--data-dir", str(cli_world["data_dir"])])
    err = capsys.readouterr().err
    # nothing here is a valid credential or roster, but the valid file itself
    assert code in ((0,) if command == "verify" and _still_valid(content, cli_world["valid"]) else (1, 2)), \
        (content, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("eduledger: ") and err.count("\n") == 1, err
