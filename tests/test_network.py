"""`network init`, `serve` and the network endpoints, on the embedded chain, over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.cli import main
from ledger.consortium.models import ApiKey
from ledger.errors import ConfigError, Conflict, KeystoreError
from ledger.keys import clear_keystore_cache
from ledger.node import Node, NodeServices, ensure_network, init_network
from ledger.settings import Settings
from ledger.store import session_scope
from node_config import DEMO_CONSORTIUM
from tests.servers import free_port, serve_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def test_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    monkeypatch.delenv("EDULEDGER_RPC_URL", raising=False)
    monkeypatch.delenv("EDULEDGER_DATABASE_URL", raising=False)
    clear_keystore_cache()
    return tmp_path / "data"


@pytest.fixture
def node(test_env: Path) -> Iterator[Node]:
    node = init_network(Settings(data_dir=test_env), DEMO_CONSORTIUM)
    yield node
    node.close()


def test_init_deploys_and_admits_the_demo_consortium(node: Node, test_env: Path) -> None:
    deployment = node.deployment
    assert deployment is not None
    assert set(deployment.organisations) == {"bureau", "school-a", "school-b", "partner", "auditor"}
    with serve_app(create_app(node)) as base:
        health = httpx.get(base + "/health").json()
        assert health["status"] == "ok" and health["chain_id"] == node.client.chain_id
        view = httpx.get(base + "/v1/network").json()
    assert view["contracts"]["consortium"] == deployment.consortium
    assert view["contracts"]["anchor_registry"] == deployment.anchor_registry
    roles = {m["org_id"]: (m["role"], m["status"]) for m in view["members"]}
    assert roles == {"bureau": ("bureau", "active"), "school-a": ("school", "active"),
                     "school-b": ("school", "active"), "partner": ("partner", "active"),
                     "auditor": ("auditor", "active")}
    assert view["threshold"] == 2 and len(view["governors"]) == 3
    # Every organisation's credential-signing key is registered and valid now.
    from ledger.contracts.bindings import ConsortiumContract

    consortium = ConsortiumContract.at(node.client, deployment.consortium)
    head = node.client.block_number()
    for org in deployment.organisations.values():
        assert consortium.key_valid_at(org["member_id"], org["signing_key"], head)


def test_init_deploys_the_identity_registry_and_indexes_its_events(node: Node) -> None:
    import secrets

    from ledger.contracts import CardKind
    from ledger.indexer.models import ChainEvent

    deployment = node.require_deployment()
    identity = node.identity_registry()
    assert identity is not None and identity.address == deployment.identity_registry
    assert identity.consortium_address() == deployment.consortium
    assert node.contracts()[0].address == deployment.consortium  # contracts() is unchanged
    from ledger.consortium.views import network_view

    view = network_view(node.client, deployment, embedded=True)
    assert view["contracts"]["identity_registry"] == deployment.identity_registry
    school = NodeServices(node).keys_for("school-a").account
    card_id = secrets.token_bytes(32)
    identity.issue(school, card_id, CardKind.STUDENT, portrait=secrets.token_bytes(32))
    node.indexer().run_once()
    with session_scope(node.engine) as s:
        rows = s.exec(select(ChainEvent).where(ChainEvent.event == "CardIssued")).all()
    assert [json.loads(r.args_json)["cardId"] for r in rows] == ["0x" + card_id.hex()]
    assert {r.contract for r in rows} == {identity.address.lower()}


def test_a_deployment_from_before_the_identity_registry_still_works(node: Node,
                                                                    test_env: Path) -> None:
    """An old network.json (no identity_registry) loads; the node works without it."""
    record = json.loads((test_env / "network.json").read_text())
    del record["identity_registry"]
    (test_env / "network.json").write_text(json.dumps(record))
    node.close()
    old = Node(Settings(data_dir=test_env))
    try:
        deployment = old.require_deployment()
        assert deployment.identity_registry is None and old.identity_registry() is None
        assert old.indexer().run_once() > 0  # the Consortium's and AnchorRegistry's events
        from ledger.consortium.views import network_view

        assert network_view(old.client, deployment, embedded=True)["contracts"][
            "identity_registry"] is None
    finally:
        old.close()


def test_api_keys_file_is_private_and_only_hashes_are_stored(node: Node, test_env: Path) -> None:
    path = test_env / "api-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = json.loads(path.read_text())
    assert set(keys) == {"bureau", "school-a", "school-b", "partner", "auditor"}
    with session_scope(node.engine) as s:
        rows = s.exec(select(ApiKey)).all()
    stored = " ".join(r.key_hash for r in rows)
    assert len(rows) == 5 and not any(k in stored for k in keys.values())
    for key_file in (test_env / "keystore").iterdir():
        text = key_file.read_text()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert '"ciphertext"' in text


def test_second_init_is_refused_and_changes_nothing(node: Node, test_env: Path) -> None:
    before = (test_env / "network.json").read_text()
    node.close()
    with pytest.raises(Conflict, match="already holds a network"):
        init_network(Settings(data_dir=test_env), DEMO_CONSORTIUM)
    assert (test_env / "network.json").read_text() == before


def test_malformed_consortium_file_is_a_clear_error(test_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('governors = ["nobody"]\nthreshold = 1\n[[organisations]]\nid = "x"\n')
    with pytest.raises(ConfigError, match="bad.toml"):
        init_network(Settings(data_dir=test_env), bad)
    assert not (test_env / "network.json").exists()


def test_wrong_passphrase_is_refused(node: Node, test_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node.close()
    (test_env / "network.json").unlink()
    for child in (test_env / "chain").iterdir():
        child.unlink()
    clear_keystore_cache()
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "wrong")
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        init_network(Settings(data_dir=test_env), DEMO_CONSORTIUM)


def test_ensure_network_reopens_without_redeploying(node: Node, test_env: Path) -> None:
    deployment, head = node.deployment, node.client.block_number()
    node.close()
    again = ensure_network(Settings(data_dir=test_env), DEMO_CONSORTIUM)
    try:
        assert again.deployment == deployment and again.client.block_number() == head
    finally:
        again.close()


def test_cli_errors_are_one_line(test_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["network", "init", "--config", str(tmp_path / "missing.toml"),
                 "--data-dir", str(test_env)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("eduledger: ")
    assert "Traceback" not in err


def _start_serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(data_dir),
         "--port", str(port)], env=env, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_health(base: str, proc: subprocess.Popen[bytes]) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve died")
        try:
            return httpx.get(base + "/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("serve did not come up")


def test_serve_survives_kill_9(test_env: Path) -> None:
    """serve initialises an empty data dir; after kill -9 and restart it shows the same network."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_serve(test_env, port)
    try:
        _wait_health(base, proc)
        # Another process talks to the embedded node through /rpc, as to any node.
        rpc = httpx.post(base + "/rpc", json={"jsonrpc": "2.0", "id": 1,
                                                "method": "eth_blockNumber", "params": []}).json()
        before = httpx.get(base + "/v1/network").json()
        assert int(rpc["result"], 16) == before["head"] > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = _start_serve(test_env, port)
    try:
        _wait_health(base, proc)
        after = httpx.get(base + "/v1/network").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert after["head"] == before["head"]
    assert after["contracts"] == before["contracts"]
    assert after["members"] == before["members"]


def test_settings_replace_keeps_prefix_defaults(test_env: Path) -> None:
    settings = Settings().with_changes(data_dir=test_env)
    assert settings.chain_dir == test_env / "chain"


def test_init_against_an_external_node(test_env: Path, anvil_url: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The same set-up on any JSON-RPC node (anvil here), accounts funded by a funder key."""
    from ledger.consortium.views import network_view
    from tests.conftest import ANVIL_DEV_KEY

    monkeypatch.setenv("EDULEDGER_FUNDER_KEY", ANVIL_DEV_KEY)
    node = init_network(Settings(data_dir=test_env, rpc_url=anvil_url), DEMO_CONSORTIUM)
    try:
        assert node.chain is None and node.client.chain_id == 31337
        view = network_view(node.client, node.deployment, embedded=False)
        assert [m["status"] for m in view["members"]] == ["active"] * 5
        # The anchoring service and indexer work the same over HTTP JSON-RPC.
        import secrets

        batch = NodeServices(node).anchoring.anchor(
            "school-a", "credential", [secrets.token_bytes(32) for _ in range(3)])
        assert batch.status == "anchored"
        assert node.indexer().run_once() >= 1 + 5
    finally:
        node.close()


def test_besu_network_allowlists_the_organisations_own_keys(test_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "besu-net"
    assert main(["network", "besu", "--config", str(DEMO_CONSORTIUM), "--out", str(out),
                 "--data-dir", str(test_env)]) == 0
    from ledger.keys import list_keystores

    addresses = {info.address.lower() for info in list_keystores(test_env / "keystore")}
    assert len(addresses) == 5
    genesis = json.loads((out / "genesis.json").read_text())
    assert {a.lower().removeprefix("0x") for a in genesis["alloc"]} == {
        a.removeprefix("0x") for a in addresses}
    permissions = (out / "bureau" / "permissions_config.toml").read_text().lower()
    assert all(a in permissions for a in addresses)
