"""What an outside test of the running service found (issue 18), each through HTTP."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.limits import body_limit
from ledger.node import init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import served_network
from tests.servers import free_port, serve_process, stop_process, wait_healthy


def graduation_row(n: int, **extra: Any) -> dict[str, Any]:
    return {"holder_name": f"毕业生{n:03d}", "student_id": f"G2026{n:05d}",
            "program": "计算机科学与技术", "education_level": "本科", "start_date": "2022-09-01",
            "graduation_date": "2026-06-30", "certificate_number": f"10001-2026-{n:06d}", **extra}


def credential_count(served: Any) -> int:
    from sqlalchemy import func, select

    from ledger.credentials.models import CredentialRecord

    with served.node.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(CredentialRecord)).scalar_one())


# -- 4: an Idempotency-Key reused for another roster -----------------------------------------


def test_an_idempotency_key_reused_with_another_roster_is_refused(env: Path) -> None:
    with served_network(env / "data") as served:
        key = {"Idempotency-Key": "roster-2026-07"}
        first = served.issue("school-a", "graduation", [graduation_row(n) for n in range(2)], **key)
        assert first.status_code == 201, first.text
        again = served.issue("school-a", "graduation", [graduation_row(n) for n in range(2)], **key)
        assert again.status_code == 201 and again.json()["batch_id"] == first.json()["batch_id"]
        before = credential_count(served)
        other = served.issue("school-a", "graduation", [graduation_row(n) for n in range(3)], **key)
        assert other.status_code == 422, other.text
        assert other.json()["code"] == "idempotency_key_reused"
        assert credential_count(served) == before  # nothing issued, nothing changed
        # One changed field is another request too.
        changed = served.issue("school-a", "graduation",
                               [graduation_row(0), graduation_row(1, program="软件工程")], **key)
        assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
        # Another school's same key is its own key.
        theirs = served.issue("school-b", "graduation", [graduation_row(n) for n in range(3)], **key)
        assert theirs.status_code == 201, theirs.text


# -- 5: the same certificate number twice ------------------------------------------------------


def test_a_certificate_number_is_issued_once_per_issuer(env: Path) -> None:
    with served_network(env / "data") as served:
        first = served.issue("school-a", "graduation", [graduation_row(1)])
        assert first.status_code == 201, first.text
        before = credential_count(served)
        twice = served.issue("school-a", "graduation", [graduation_row(1)])
        assert twice.status_code == 409, twice.text
        body = twice.json()
        assert body["code"] == "certificate_number_taken"
        first_id = first.json()["credentials"][0]["credential_id"]
        assert body["details"]["numbers"] == [{"number": "10001-2026-000001", "credential_id": first_id}]
        # Among other new rows, one taken number refuses the whole roster.
        mixed = served.issue("school-a", "graduation", [graduation_row(2), graduation_row(1)])
        assert mixed.status_code == 409 and credential_count(served) == before
        # Another issuer, or another kind of certificate, has numbers of its own.
        assert served.issue("school-b", "graduation", [graduation_row(1)]).status_code == 201
        degree = {"holder_name": "毕业生001", "student_id": "G202600001", "degree_name": "工学学士",
                  "field": "工学", "conferral_date": "2026-06-30", "certificate_number": "10001-2026-000001"}
        assert served.issue("school-a", "degree", [degree]).status_code == 201

        # A correction keeps the number: it is the same certificate, corrected.
        cid = first.json()["credentials"][0]["credential_id"]
        fixed = served.http.post(f"/v1/credentials/{cid}/correct", headers=served.as_org("school-a"),
                                 json={"credential": graduation_row(1, holder_name="毕业生壹"), "reason": 1})
        assert fixed.status_code == 201, fixed.text
        new_id = fixed.json()["credentials"][0]["credential_id"]
        again = served.issue("school-a", "graduation", [graduation_row(1)])
        assert again.status_code == 409
        assert again.json()["details"]["numbers"][0]["credential_id"] == new_id


# -- 9: no existence oracle across schools -----------------------------------------------------


def test_another_schools_credential_looks_exactly_like_an_unknown_one(env: Path) -> None:
    with served_network(env / "data") as served:
        issued = served.issue("school-a", "graduation", [graduation_row(1)])
        assert issued.status_code == 201, issued.text
        theirs = issued.json()["credentials"][0]["credential_id"]
        unknown = "urn:uuid:00000000-0000-4000-8000-000000000000"
        school_b = served.as_org("school-b")
        calls = [
            lambda cid: served.http.post(f"/v1/credentials/{cid}/status", headers=school_b,
                                         json={"action": "revoke", "reason": 1}),
            lambda cid: served.http.post(f"/v1/credentials/{cid}/correct", headers=school_b,
                                         json={"credential": graduation_row(1)}),
            lambda cid: served.http.get(f"/v1/credentials/{cid}", headers=school_b,
                                        params={"purpose": "existence probe"}),
        ]
        for call in calls:
            a, b = call(theirs), call(unknown)
            assert (a.status_code, b.status_code) == (404, 404), (a.text, b.text)
            assert a.json() == {**b.json(), "message": b.json()["message"].replace(unknown, theirs)}
            assert a.json()["code"] == "credential_not_found"
        # Nothing changed, and the issuer and the bureau still may.
        ok = served.http.post(f"/v1/credentials/{theirs}/status", headers=served.as_org("bureau"),
                              json={"action": "suspend", "reason": 2})
        assert ok.status_code == 200 and ok.json()["status"] == "suspended"


# -- 2, 7, 8: the running service --------------------------------------------------------------

def _serve(data_dir: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    return f"http://127.0.0.1:{port}", serve_process(data_dir, port, **env)


def test_forwarded_headers_count_only_from_named_proxies_and_the_data_is_private(env: Path) -> None:
    data = env / "data"
    base, proc = _serve(data, EDULEDGER_PUBLIC_RATE_LIMIT="5/hour")
    try:
        wait_healthy(base, proc)
        did = "did:eduledger:1:0x" + "0" * 40 + ":1"
        answers = [httpx.get(f"{base}/v1/dids/{did}",
                             headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(8)]
        # One client, however many addresses it claims: five, then refused.
        assert answers[:5] == [404] * 5 and set(answers[5:]) == {429}, answers
        # 7: the data directory and every file in it are the service user's alone.
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for path in [data / "eduledger.sqlite3", data / "eduledger.sqlite3-wal",
                     data / "chain" / "chain.sqlite3", data / "api-keys.json"]:
            assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE((data / "chain").stat().st_mode) == 0o700
    finally:
        stop_process(proc)
    # Behind a proxy the operator names, each forwarded client has its own limit.
    base, proc = _serve(data, EDULEDGER_PUBLIC_RATE_LIMIT="5/hour", EDULEDGER_TRUSTED_PROXIES="127.0.0.1")
    try:
        wait_healthy(base, proc)
        answers = [httpx.get(f"{base}/v1/dids/{did}",
                             headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(8)]
        assert answers == [404] * 8
    finally:
        stop_process(proc)


def test_a_wrong_keystore_passphrase_stops_serve_before_it_listens(env: Path) -> None:
    data = env / "data"
    init_network(Settings(data_dir=data), DEMO_CONSORTIUM).close()
    base, proc = _serve(data, EDULEDGER_KEYSTORE_PASSPHRASE="not the passphrase")
    try:
        assert proc.wait(timeout=120) == 2
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert err.strip().splitlines()[-1].startswith("eduledger: wrong passphrase for keystore of "), err
        with pytest.raises(httpx.HTTPError):
            httpx.get(base + "/health", timeout=2)
    finally:
        stop_process(proc)


# -- 3: request bodies are held to a limit before they are read -------------------------------


def _raw_request(base: str, head: str, body_chunks: list[bytes] | None = None) -> tuple[int, bytes, int]:
    """Send `head` (and then chunks, while the server keeps reading) on a raw socket; the
    status, the body of the answer, and how many body bytes the server let us send."""
    host, port = base.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in body_chunks or []:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: it read no further
                break
            sent += len(chunk)
            sock.settimeout(0.0)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the answer is there already
            except BlockingIOError:
                pass
            finally:
                sock.settimeout(30)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        head_bytes, _, rest = reply.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head_bytes.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += sock.recv(65536)
    return int(head_bytes.split(b" ")[1]), rest[:length], sent


def test_oversized_bodies_are_refused_with_413_before_they_are_read(env: Path) -> None:
    with served_network(env / "data") as served:
        auth = served.as_org("school-a")["Authorization"]
        cases = [("/v1/verify/batch", 100 * 2**20, ""), ("/v1/verify", 10 * 2**20, ""),
                 ("/v1/claims/redeem", 2**20, ""), ("/v1/shares", 2**20, ""),
                 ("/v1/credentials?type=transcript", 25 * 2**20, f"Authorization: {auth}\r\n")]
        for path, size, extra in cases:
            # Announced: refused at once, not a byte of the body read.
            status, body, _ = _raw_request(served.base, f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}"
                                           "Content-Type: application/json\r\n"
                                           f"Content-Length: {size}\r\n\r\n")
            assert status == 413, (path, body)
            assert json.loads(body)["code"] == "too_large"
            # Not announced (chunked): refused once the limit is passed; the rest is never read
            # (what the socket buffers take aside: far less than the 48 MiB beyond the limit).
            limit = body_limit("POST", path.split("?")[0])
            chunk = b"4000\r\n" + b"[" * 0x4000 + b"\r\n"
            status, body, sent = _raw_request(
                served.base, f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n", [chunk] * ((limit + 48 * 2**20) // 0x4000))
            assert status == 413 and json.loads(body)["code"] == "too_large", (path, body)
            assert sent < limit + 16 * 2**20, (path, sent)
        # Within the limits nothing changed: a small verification is answered as before.
        r = served.http.post("/v1/verify/batch", json={"credentials": ["not a credential"]})
        assert r.status_code == 200 and r.json()["count"] == 1
