"""POST /v1/verify answered by worker processes: same answers, fresh status, crash-safe."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.credential_fixtures import served_network, transcript_row


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "workers passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


def _envelope(served, issued: dict) -> dict:  # type: ignore[no-untyped-def]
    record = served.http.get(f"/v1/credentials/{issued['credential_id']}",
                             params={"purpose": "verification workers test", "content": "true"},
                             headers=served.as_org("school-a"))
    assert record.status_code == 200, record.text
    return {"format": "eduledger-credential/1", "sd_jwt": record.json()["sd_jwt"],
            "anchor": issued["anchor"]}


def test_workers_answer_verifications_and_see_revocations_at_once(env: Path) -> None:
    with served_network(env / "data", verify_workers=2) as served:
        workers = served.app.state.verify_workers
        assert workers is not None and len(workers.alive()) == 2
        batch = served.issue("school-a", "transcript", [transcript_row(n) for n in range(4)]).json()
        docs = [_envelope(served, c) for c in batch["credentials"]]
        in_process = served.app.state.services.credentials.verifier
        for doc in docs:
            verdict = served.http.post("/v1/verify", json={"credential": doc}).json()
            assert verdict["valid"] is True, verdict
            assert verdict["leaf"] == doc["anchor"]["leaf"]
        assert workers.answered == len(docs)
        # The same answer as the serving process gives itself (bare SD-JWT: the anchor is
        # found in the database by the worker).
        bare = served.http.post("/v1/verify", json={"credential": docs[0]["sd_jwt"]}).json()
        assert bare["anchor"] == docs[0]["anchor"] and bare["valid"] is True
        assert in_process.verify(docs[0]["sd_jwt"]).to_dict()["checks"] == bare["checks"]

        # A revocation through this node is seen by the very next verification, whichever
        # worker answers it.
        revoke = served.http.post(f"/v1/credentials/{batch['credentials'][1]['credential_id']}/status",
                                  json={"action": "revoke", "reason": 2}, headers=served.as_org("school-a"))
        assert revoke.status_code == 200, revoke.text
        for _ in range(4):
            verdict = served.http.post("/v1/verify", json={"credential": docs[1]}).json()
            assert verdict["failures"] == ["revoked"], verdict
        assert served.http.post("/v1/verify", json={"credential": docs[2]}).json()["valid"] is True

        # Bad input gets the same 4xx / verdicts as in process.
        garbage = served.http.post("/v1/verify", content=b"not a credential",
                                   headers={"Content-Type": "text/plain"})
        assert garbage.status_code == 200 and garbage.json()["failures"] == ["malformed"]
        deep = served.http.post("/v1/verify", content=b"[" * 100_000,
                                headers={"Content-Type": "application/json"})
        assert deep.status_code == 422 and deep.json()["code"] == "malformed"
        wrong = served.http.post("/v1/verify", json={"credential": 5})
        assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_input"


def test_a_killed_worker_is_replaced_and_no_request_fails(env: Path) -> None:
    with served_network(env / "data", verify_workers=2) as served:
        workers = served.app.state.verify_workers
        batch = served.issue("school-a", "degree", [{
            "holder_name": "学生1", "student_id": "D1", "degree_name": "工学学士", "field": "工学",
            "conferral_date": "2026-06-30", "certificate_number": "10001-2026-1"}]).json()
        doc = _envelope(served, batch["credentials"][0])
        assert served.http.post("/v1/verify", json={"credential": doc}).json()["valid"] is True
        victim, survivor = workers.alive()
        os.kill(victim, signal.SIGKILL)
        for _ in range(20):  # during and after the death: every answer is right
            assert served.http.post("/v1/verify", json={"credential": doc}).json()["valid"] is True
        deadline = time.monotonic() + 30
        while len(workers.alive()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = workers.alive()
        assert len(alive) == 2 and victim not in alive and survivor in alive
        before = workers.answered
        for _ in range(6):
            assert served.http.post("/v1/verify", json={"credential": doc}).json()["valid"] is True
        assert workers.answered == before + 6


def test_public_rate_limit_per_client_window(monkeypatch: pytest.MonkeyPatch) -> None:
    from api import auth
    from ledger.errors import ConfigError

    limit = auth.FixedWindowLimit("3/minute")
    assert (limit.amount, limit.seconds) == (3, 60)
    assert [limit.hit("a") for _ in range(4)] == [True, True, True, False]
    assert limit.hit("b") is True  # another client has its own count
    monkeypatch.setattr(auth.time, "time", lambda: 10**9 + 3600)  # a later window starts afresh
    assert limit.hit("a") is True
    for bad in ("3", "x/minute", "3/fortnight", "-1/second"):
        with pytest.raises(ConfigError):
            auth.FixedWindowLimit(bad)


def test_public_endpoints_are_rate_limited_over_http(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api import auth

    with served_network(env / "data", verify_workers=1) as served:
        monkeypatch.setattr(auth, "PUBLIC_LIMIT", auth.FixedWindowLimit("5/minute"))
        codes = [served.http.post("/v1/verify", content=b"x", headers={"Content-Type": "text/plain"})
                 for _ in range(5)]
        assert [r.status_code for r in codes] == [200] * 5
        refused = served.http.post("/v1/verify", content=b"x", headers={"Content-Type": "text/plain"})
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        # The same window covers the other public endpoints (served by the framework) ...
        page = served.http.get("/s/nosuchshare", headers={"Accept": "application/json"})
        assert page.status_code == 429 and page.json()["code"] == "rate_limited"
        # ... but not the organisations' authenticated API.
        batch = served.http.get("/v1/batches/none", headers=served.as_org("school-a"))
        assert batch.status_code == 404
