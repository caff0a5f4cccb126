"""Every credential file a surface of eduledger hands out is one `eduledger verify` and
POST /v1/verify accept: the wallet's own stored credential, `eduledger wallet export`, the
answer of POST /v1/claims/redeem and of GET /v1/credentials/{id}?content=true. And each way
the anchor check fails has its own reason, in both languages, through HTTP and the CLI."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from ledger.contracts.bindings import AnchorKind
from ledger.credentials import sdjwt
from ledger.credentials.anchorproof import credential_leaf
from ledger.credentials.messages import MESSAGES
from ledger.credentials.verify import ANCHOR_FAILURES
from ledger.merkle import MerkleTree
from ledger.node import NodeServices
from tests.credential_fixtures import Served, served_network, transcript_row
from tests.test_verification import sign_and_anchor
from wallet.holder import Wallet


@dataclass
class World:
    served: Served
    data_dir: Path
    tmp: Path
    capsys: pytest.CaptureFixture[str]
    credentials: list[dict[str, Any]]

    @property
    def services(self) -> NodeServices:
        services: NodeServices = self.served.app.state.services
        return services

    def cli_verify(self, doc: Any, name: str = "file.json") -> tuple[int, str]:
        """`eduledger verify FILE --rpc <node>/rpc --data-dir <node>`: exit code and output."""
        path = self.tmp / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False))
        self.capsys.readouterr()
        code = main(["verify", str(path), "--rpc", self.served.base + "/rpc",
                     "--data-dir", str(self.data_dir)])
        return code, self.capsys.readouterr().out

    def cli_json(self, doc: Any) -> dict[str, Any]:
        path = self.tmp / "file.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False))
        self.capsys.readouterr()
        main(["verify", str(path), "--rpc", self.served.base + "/rpc", "--data-dir", str(self.data_dir),
              "--json"])
        result: dict[str, Any] = json.loads(self.capsys.readouterr().out)
        return result

    def http_verify(self, doc: Any) -> dict[str, Any]:
        """The file's bytes as the body of POST /v1/verify, as an upload would send them."""
        body = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
        answer = self.served.http.post("/v1/verify", content=body.encode(),
                                       headers={"Content-Type": "text/plain"})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
def world(env: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    with served_network(env / "data") as served:
        issued = served.issue("school-a", "transcript", [transcript_row(n, courses=3) for n in range(4)])
        assert issued.status_code == 201, issued.text
        yield World(served, env / "data", env, capsys, issued.json()["credentials"])


def _wallet(world: World, *args: str) -> str:
    world.capsys.readouterr()
    code = main(["wallet", *args, "--wallet-dir", str(world.tmp / "wallet")])
    out, err = world.capsys.readouterr()
    assert code == 0, err
    return out


def _assert_valid_both_ways(world: World, doc: Any, what: str) -> None:
    code, shown = world.cli_verify(doc)
    assert code == 0 and "VALID 有效" in shown, (what, shown)
    result = world.http_verify(doc)
    assert result["valid"] is True, (what, result["failures"])
    assert result["anchor"]["tx_hash"] and result["anchored_at"]


def test_every_file_a_surface_hands_out_verifies_with_the_cli_and_over_http(world: World) -> None:
    first, second, third = world.credentials[:3]
    # The wallet, through its commands: redeem, then the stored file and the export.
    _wallet(world, "create")
    _wallet(world, "redeem", first["claim_code"], "--api", world.served.base)
    [stored] = (world.tmp / "wallet" / "credentials").glob("*.json")
    stored_doc = json.loads(stored.read_text())
    assert stored_doc["format"] == "eduledger-holder-credential" and stored_doc["compact"]
    _assert_valid_both_ways(world, stored.read_text(), "the wallet's stored credential")

    out = world.tmp / "export.json"
    shown = _wallet(world, "export", first["credential_id"][:14], "--out", str(out))
    assert str(out) in shown and "eduledger verify" in shown
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # every claim is in it
    exported = json.loads(out.read_text())
    assert exported["format"] == "eduledger-credential/1" and set(exported) == {"format", "sd_jwt", "anchor"}
    assert exported["sd_jwt"] == stored_doc["compact"] and exported["anchor"] == stored_doc["anchor"]
    _assert_valid_both_ways(world, out.read_text(), "wallet export")
    assert json.loads(_wallet(world, "export", first["credential_id"])) == exported  # to stdout

    # The answer of a redemption, saved as it came.
    jwk = Wallet.open(world.tmp / "wallet").holder_jwk
    redeemed = world.served.http.post("/v1/claims/redeem", json={"code": second["claim_code"],
                                                                 "holder_jwk": jwk})
    assert redeemed.status_code == 200, redeemed.text
    _assert_valid_both_ways(world, redeemed.text, "the redeem answer")

    # A credential's record with its content, as its school reads it.
    record = world.served.http.get(f"/v1/credentials/{third['credential_id']}",
                                   params={"purpose": "verify the file", "content": "true"},
                                   headers=world.served.as_org("school-a"))
    assert record.status_code == 200 and record.json()["anchor"]["root"], record.text
    _assert_valid_both_ways(world, record.text, "the credential's content")

    # A bare SD-JWT: the node looks its proof up (it knows the leaf); the chain alone cannot.
    bare = redeemed.json()["sd_jwt"]
    assert world.http_verify(bare)["valid"] is True
    code, shown = world.cli_verify(bare, "bare.txt")
    assert code == 1 and "anchor_proof_missing" in shown and "eduledger wallet export" in shown
    assert "not anchored on the ledger" not in shown  # the cause, not a blanket verdict


def _anchor_failure(world: World, doc: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The anchor check's failure code, by the CLI (text and JSON) and over HTTP, which agree."""
    code, shown = world.cli_verify(doc)
    assert code == 1, shown
    cli = world.cli_json(doc)
    http = world.http_verify(doc)
    [cli_check] = [c for c in cli["checks"] if c["check"] == "anchor"]
    [http_check] = [c for c in http["checks"] if c["check"] == "anchor"]
    assert cli_check["code"] == http_check["code"] and cli["failures"] == http["failures"], (cli, http)
    assert cli_check["message"] in shown  # the text output says why in words
    return cli_check["code"], cli_check, http_check


def test_each_way_the_anchor_check_fails_has_its_own_reason(world: World) -> None:
    http = world.served.http
    files = []
    for credential in world.credentials:
        record = http.get(f"/v1/credentials/{credential['credential_id']}",
                          params={"purpose": "verify the file", "content": "true"},
                          headers=world.served.as_org("school-a")).json()
        files.append({"format": "eduledger-credential/1", "sd_jwt": record["sd_jwt"],
                      "anchor": record["anchor"]})
    good, other = files[0], files[1]
    anchor = good["anchor"]
    services = world.services
    leaf = credential_leaf(sdjwt.parse(good["sd_jwt"]).payload)
    # Another batch, for another transaction and block.
    later = world.served.issue("school-a", "transcript", [transcript_row(9, courses=1)]).json()
    later_anchor = later["credentials"][0]["anchor"]
    assert later_anchor["tx_hash"] != anchor["tx_hash"]
    # The leaf alone as its own root: a true path to a root that was never anchored.
    lonely_root = "0x" + MerkleTree([leaf]).root.hex()
    # School B anchors that very root: anchored, but not by the issuer.
    school_b = services.keys_for("school-b").account

    cases = {
        "anchor_proof_other_credential": {**good, "anchor": other["anchor"]},
        "anchor_other_registry": {**good, "anchor": {**anchor, "contract": "0x" + "12" * 20}},
        "anchor_proof_invalid": {**good, "anchor": {**anchor,
                                                    "proof": ["0x" + "ab" * 32, *anchor["proof"][1:]]}},
        "anchor_root_unknown": {**good, "anchor": {**anchor, "proof": [], "root": lonely_root,
                                                   "tx_hash": None, "block_number": None}},
        "anchor_block_mismatch": {**good, "anchor": {**anchor, "block_number": later_anchor["block_number"]}},
        "anchor_tx_mismatch": {**good, "anchor": {**anchor, "tx_hash": later_anchor["tx_hash"]}},
    }
    seen: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for expected, doc in cases.items():
        got, cli_check, http_check = _anchor_failure(world, doc)
        assert got == expected, (expected, cli_check)
        seen[expected] = (cli_check, http_check)
    # Another chain id is another registry too.
    assert _anchor_failure(world, {**good, "anchor": {**anchor, "chain_id": 7}})[0] == "anchor_other_registry"

    services.credentials.registry.anchor(school_b, lonely_root, AnchorKind.CREDENTIAL, 1)
    got, cli_check, http_check = _anchor_failure(world, cases["anchor_root_unknown"])
    assert got == "anchor_other_member"
    assert cli_check["details"]["anchored_by"] == services.deployment.organisations["school-b"]["member_id"]
    seen[got] = (cli_check, http_check)

    # Missing: the chain alone cannot find the proof; a node looks for it, and says when it
    # knows none (a credential its school signed but never anchored).
    code, shown = world.cli_verify({**good, "anchor": None})
    cli_missing = next(c for c in world.cli_json({**good, "anchor": None})["checks"]
                       if c["check"] == "anchor")
    assert code == 1 and cli_missing["code"] == "anchor_proof_missing" and cli_missing["message"] in shown
    assert world.http_verify({**good, "anchor": None})["valid"] is True  # found by the node
    unanchored, _ = sign_and_anchor(services, "school-a", services.keys_for("school-a").ed25519_private,
                                    anchor=False)
    http_missing = next(c for c in world.http_verify(unanchored)["checks"] if c["check"] == "anchor")
    assert http_missing["code"] == "anchor_proof_missing"
    seen["anchor_proof_missing"] = (cli_missing, http_missing)

    assert set(seen) == set(ANCHOR_FAILURES)
    messages = set()
    for code, (cli_check, http_check) in seen.items():
        en, zh = MESSAGES[code]
        assert cli_check["message_zh"] and cli_check["message"] and zh and en
        assert http_check["message_zh"] == cli_check["message_zh"] or code == "anchor_proof_missing"
        messages.add(cli_check["message"])
    assert len(messages) == len(seen)  # each its own words
    assert cli_missing["details"] == {"looked_up": False} and http_missing["details"] == {"looked_up": True}
    assert "本节点" in http_missing["message_zh"] and "this node" in http_missing["message"]
    # Block mismatch: both numbers, in words.
    block_check = seen["anchor_block_mismatch"][0]
    assert str(later_anchor["block_number"]) in block_check["message"]
    assert str(anchor["block_number"]) in block_check["message_zh"]
