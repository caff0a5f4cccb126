"""A chain outage in the middle of an issuance (issue 18, item 1), with real processes.

Node A serves the embedded chain; node B runs its own consortium on A's chain through
EDULEDGER_RPC_URL, as a school's service uses another organisation's node. A roster is
posted to B with an Idempotency-Key and A is killed (SIGKILL) while B signs. B answers
503 chain_unavailable and keeps the accepted batch; when A is back, B's background pass
anchors the batch by itself, with no restart of B, and the same request then answers 201
with the same credentials, anchored once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ledger.anchoring.models import AnchorBatch
from ledger.keys import load_keystore
from ledger.node import init_network
from ledger.settings import Settings
from ledger.store import make_engine
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import transcript_row
from tests.servers import free_port, serve_process, stop_process, wait_healthy

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "outage passphrase"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    for name in ("EDULEDGER_RPC_URL", "EDULEDGER_DATABASE_URL", "EDULEDGER_FUNDER_KEY"):
        monkeypatch.delenv(name, raising=False)
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


def _batch(data_dir: Path, key: str) -> Any:
    engine = make_engine(Settings(data_dir=data_dir).resolved_database_url())
    try:
        with engine.connect() as conn:
            return conn.execute(select(AnchorBatch.__table__).where(  # type: ignore[attr-defined]
                AnchorBatch.__table__.c.idempotency_key == key)).first()  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_a_batch_accepted_during_a_chain_outage_is_anchored_when_the_chain_returns(env: Path) -> None:
    node_a, node_b = env / "a", env / "b"
    port_a, port_b = free_port(), free_port()
    log_a, log_b = env / "a.log", env / "b.log"
    rpc = f"http://127.0.0.1:{port_a}/rpc"
    a = serve_process(node_a, port_a, log=log_a)
    b = None
    try:
        wait_healthy(f"http://127.0.0.1:{port_a}", a, log_a)
        # B's organisations are funded by A's bureau, whose key A's set-up created.
        funder = load_keystore(node_a / "keystore", "bureau", PASSPHRASE).account.key.hex()
        os.environ["EDULEDGER_FUNDER_KEY"] = funder
        try:
            init_network(Settings(data_dir=node_b, rpc_url=rpc), DEMO_CONSORTIUM).close()
        finally:
            del os.environ["EDULEDGER_FUNDER_KEY"]
        keys = json.loads((node_b / "api-keys.json").read_text())
        b = serve_process(node_b, port_b, log=log_b, EDULEDGER_RPC_URL=rpc)
        base_b = f"http://127.0.0.1:{port_b}"
        wait_healthy(base_b, b, log_b)

        roster = {"type": "transcript", "credentials": [transcript_row(n) for n in range(3000)]}
        headers = {"Authorization": f"Bearer {keys['school-a']}", "Idempotency-Key": "outage-1"}
        answer: dict[str, httpx.Response] = {}

        def post() -> None:
            answer["first"] = httpx.post(base_b + "/v1/credentials", json=roster, headers=headers,
                                         timeout=300)

        poster = threading.Thread(target=post)
        poster.start()
        # Kill A while B signs: B validates the roster and reads its role on chain in well under
        # a second, then signs 3,000 transcripts in its own process for several seconds.
        time.sleep(1.5)
        assert poster.is_alive() and _batch(node_b, "school-a:outage-1") is None
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
        poster.join(timeout=300)
        first = answer["first"]
        assert first.status_code == 503, first.text
        assert first.json()["code"] == "chain_unavailable"
        accepted = _batch(node_b, "school-a:outage-1")
        assert accepted is not None and accepted.status == "pending"  # accepted, kept, not anchored

        # A comes back (same data directory: its chain is durable); B is not restarted.
        a = serve_process(node_a, port_a, log=log_a)
        wait_healthy(f"http://127.0.0.1:{port_a}", a, log_a)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = _batch(node_b, "school-a:outage-1")
            if row.status == "anchored":
                break
            time.sleep(0.25)
        assert row.status == "anchored", log_b.read_text(errors="replace")[-3000:]
        assert b.poll() is None  # the same process of B did it

        again = httpx.post(base_b + "/v1/credentials", json=roster, headers=headers, timeout=300)
        assert again.status_code == 201, again.text
        body = again.json()
        assert body["batch_id"] == accepted.id and body["status"] == "anchored" and body["count"] == 3000
        assert {c["anchor"]["tx_hash"] for c in body["credentials"]} == {row.tx_hash}
        # Anchored exactly once: the registry holds one Anchored event for the root.
        logs = httpx.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{
            "fromBlock": "0x0", "toBlock": "latest", "topics": [None, row.root]}]}).json()["result"]
        assert len(logs) == 1
    finally:
        if b is not None:
            stop_process(b)
        stop_process(a)
