"""`eduledger serve --workers 1`, a real subprocess: the node and a worker share the port.

Each request goes over a new connection, so the kernel spreads them over both processes;
whichever answers, the answer is the same, a revocation is seen at once, the rate limit is
one limit, a client cannot claim another address, and the processes look after each other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from ledger.audit.models import AccessLogRow
from ledger.node import init_network
from ledger.settings import Settings
from ledger.store import make_engine, session_scope
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import transcript_row
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[1]
LIMIT = 400  # public requests per hour in these tests


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, str]]]:
    init_network(Settings(data_dir=data_dir), DEMO_CONSORTIUM).close()
    keys = json.loads((data_dir / "api-keys.json").read_text())
    port = free_port()
    # No signing pool here, so that the node's only other children are its serving workers.
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDULEDGER_PUBLIC_RATE_LIMIT": f"{LIMIT}/hour",
           "EDULEDGER_SIGNING_WORKERS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--data-dir", str(data_dir),
                             "--port", str(port), "--workers", "1"],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base, proc, keys
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve died")
        try:
            health = httpx.get(base + "/health", timeout=2).json()
            if health.get("workers", {}).get("ready") == 1:
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve and its worker did not come up")


def fresh(method: str, url: str, **kwargs: object) -> httpx.Response:
    """One request on its own connection (so it may land on either process)."""
    with httpx.Client(timeout=120) as client:
        return client.request(method, url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "workers passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    monkeypatch.delenv("EDULEDGER_RPC_URL", raising=False)
    monkeypatch.delenv("EDULEDGER_DATABASE_URL", raising=False)
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


def test_node_and_worker_answer_alike(env: Path) -> None:
    data = env / "data"
    with serving(data) as (base, proc, keys):
        school = {"Authorization": f"Bearer {keys['school-a']}"}
        [worker] = _children_serving(proc.pid)
        worker_ticks = _cpu_ticks(worker)
        public = 0

        # Issuance passes through the worker to the node when it lands there.
        issued = fresh("POST", base + "/v1/credentials", headers=school,
                       json={"type": "transcript", "credentials": [transcript_row(n) for n in range(6)]})
        assert issued.status_code == 201, issued.text
        batch = issued.json()
        docs = []
        for credential in batch["credentials"]:
            record = fresh("GET", f"{base}/v1/credentials/{credential['credential_id']}", headers=school,
                           params={"purpose": "workers test", "content": "true"}).json()
            docs.append({"format": "eduledger-credential/1", "sd_jwt": record["sd_jwt"],
                         "anchor": credential["anchor"]})

        # Verification: 60 times over fresh connections, every answer valid and identical
        # apart from nothing (same checks, same leaf, same anchor time).
        answers = []
        for i in range(60):
            r = fresh("POST", base + "/v1/verify", json={"credential": docs[i % len(docs)]})
            public += 1
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert all(a["valid"] for a in answers)
        first = {json.dumps(a, sort_keys=True) for a in answers[:: len(docs)]}
        assert len(first) == 1  # the same credential gets the very same answer every time
        assert _cpu_ticks(worker) > worker_ticks  # and the worker did verify some of them

        # A revocation through the node: every following verification sees it.
        revoke = fresh("POST", f"{base}/v1/credentials/{batch['credentials'][2]['credential_id']}/status",
                       headers=school, json={"action": "revoke", "reason": 4})
        assert revoke.status_code == 200, revoke.text
        for _ in range(12):
            verdict = fresh("POST", base + "/v1/verify", json={"credential": docs[2]}).json()
            public += 1
            assert verdict["failures"] == ["revoked"], verdict

        # Requests the worker passes on keep their status, body and errors.
        for _ in range(6):
            missing = fresh("GET", base + "/s/doesnotexist", headers={"Accept": "application/json"})
            public += 1
            assert missing.status_code == 404 and missing.json()["code"] == "share_not_found"
            bad = fresh("POST", base + "/v1/credentials", headers=school, content=b"{",
                        params={"type": "transcript"})
            assert 400 <= bad.status_code < 500 and "code" in bad.json()
            assert fresh("GET", base + "/v1/network").json()["members"]

        # Nobody can claim another client address: the access log shows the real one.
        for _ in range(6):
            fresh("GET", f"{base}/v1/credentials/{batch['credentials'][0]['credential_id']}",
                  headers={**school, "X-Eduledger-Client": "203.0.113.9"}, params={"purpose": "spoof test"})
        engine = make_engine(Settings(data_dir=data).resolved_database_url())
        with session_scope(engine) as session:
            clients = set(session.exec(select(AccessLogRow.client)).all())
        engine.dispose()
        assert clients == {"127.0.0.1"}

        # One rate limit across both processes. The window is the clock's hour: if it ends
        # before these requests could be made, wait for the next one (whose count is 0).
        left = 3600 - time.time() % 3600
        if left < 120:
            time.sleep(left + 0.5)
            public = 0
        window = int(time.time()) // 3600
        plain = {"Content-Type": "text/plain"}
        codes = [fresh("POST", base + "/v1/verify", content=b"x", headers=plain).status_code
                 for _ in range(LIMIT - public + 20)]
        assert int(time.time()) // 3600 == window, "the requests took longer than two minutes"
        assert codes.count(200) == LIMIT - public and codes.count(429) == 20


def _children_serving(pid: int) -> list[int]:
    """The worker processes of the node (not multiprocessing's resource tracker)."""
    return [c for c in _children(pid)
            if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


def test_a_killed_worker_is_replaced_and_a_killed_node_takes_its_workers(env: Path) -> None:
    with serving(env / "data") as (base, proc, _keys):
        [worker] = _children_serving(proc.pid)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            alive = [c for c in _children_serving(proc.pid) if _alive(c)]
            if alive and worker not in alive:
                break
            time.sleep(0.2)
        [replacement] = [c for c in _children_serving(proc.pid) if _alive(c)]
        assert replacement != worker
        _wait_ready(base, proc)
        for _ in range(10):
            assert fresh("GET", base + "/health").json()["status"] == "ok"

        # kill -9 of the node: the worker notices and stops too, freeing the port.
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while _alive(replacement) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(replacement)
