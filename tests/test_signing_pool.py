"""Signing rosters in worker processes: same credentials as in-process, same errors, and a
worker that dies costs nothing but time."""

from __future__ import annotations

import os
import signal
import struct
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import func, select

from ledger.credentials import sdjwt, signing
from ledger.credentials.anchorproof import credential_leaf
from ledger.credentials.jose import SdJwtError
from ledger.credentials.models import CredentialRecord
from ledger.credentials.roster import parse_one, parse_roster
from ledger.credentials.service import CredentialService, _claim_key
from ledger.credentials.signing import (
    SignedCredential,
    SigningJob,
    SigningPool,
    _rebuild,
    claim_code,
    sign_rows,
)
from ledger.credentials.types import CredentialType, TranscriptRow
from ledger.errors import InvalidInput
from ledger.node import NodeServices, init_network
from ledger.settings import Settings
from ledger.store import session_scope
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import transcript_row

ROSTERS = Path(__file__).parent / "data" / "rosters"
ISSUER_KEY = Ed25519PrivateKey.generate()
DID = "did:web:school.example"


def job(ctype: CredentialType = CredentialType.TRANSCRIPT, **changes: object) -> SigningJob:
    fields: dict[str, object] = {
        "ctype": ctype, "issuer_did": DID, "kid": DID + "#key-1", "issuer_name": "示范学校",
        "now": datetime.now(UTC).replace(microsecond=0),
        "private_key": ISSUER_KEY.private_bytes_raw(), "claim_secret": b"\x07" * 32}
    fields.update(changes)
    return SigningJob(**fields)  # type: ignore[arg-type]


def ids_for(n: int) -> list[str]:
    return [f"urn:uuid:{uuid.uuid4()}" for _ in range(n)]


def transcripts(n: int, courses: int = 4) -> list[TranscriptRow]:
    return [parse_one(transcript_row(i, courses=courses), "transcript") for i in range(n)]  # type: ignore[misc]


def claims(sd_jwt: str) -> dict[str, object]:
    """What a verifier sees when everything is disclosed (salts and digests aside)."""
    return sdjwt.verify(sd_jwt, issuer_key=lambda header, payload: ISSUER_KEY.public_key()).claims


def same_credentials(pooled: list[SignedCredential], local: list[SignedCredential]) -> None:
    assert len(pooled) == len(local)
    for a, b in zip(pooled, local, strict=True):
        # Salts are random, so the SD-JWTs and leaves differ; everything else is equal.
        assert (a.credential_id, a.claim_code, a.valid_from, a.valid_until, a.student_id) == \
            (b.credential_id, b.claim_code, b.valid_from, b.valid_until, b.student_id)
        assert claims(a.sd_jwt) == claims(b.sd_jwt)
        assert a.leaf == credential_leaf(sdjwt.parse(a.sd_jwt).payload)


def gone(pid: int, timeout: float = 10.0) -> bool:
    """The process has exited and been reaped (not a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    time.sleep(0.05)
                    continue
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def pool() -> Iterator[SigningPool]:
    pool = SigningPool(2, min_rows=32, chunk_rows=50)
    yield pool
    pool.close()


def test_pooled_signing_gives_what_in_process_signing_gives(pool: SigningPool) -> None:
    pids = pool.warm()
    assert len(pids) == 2 and os.getpid() not in pids
    rows = transcripts(300)
    ids = ids_for(300)
    j = job()
    chunks = list(pool.sign(j, rows, ids))
    assert len(chunks) > 2  # it went to the workers in chunks
    pooled = [c for chunk in chunks for c in chunk]
    assert [c.credential_id for c in pooled] == ids  # in row order
    same_credentials(pooled, sign_rows(j, rows, ids))
    assert pooled[0].claim_code == claim_code(j.claim_secret, ids[0])
    assert pool.warm() == pids  # the same workers serve every call


def test_a_cold_pool_starts_on_first_use_and_stops_when_closed() -> None:
    rows, ids = transcripts(400, courses=2), ids_for(400)
    j = job()
    cold = SigningPool(2, min_rows=32, chunk_rows=20)
    try:
        signed = [c for chunk in cold.sign(j, rows, ids) for c in chunk]
        same_credentials(signed, sign_rows(j, rows, ids))
        pids = cold.warm()
        cold.close()
        assert not cold.running and all(gone(pid) for pid in pids)
        # The first failing row is reported, however the chunks fall.
        rows[5] = parse_one(transcript_row(5, courses=1, valid_until="2020-01-01"), "transcript")  # type: ignore[assignment]
        rows[395] = parse_one(transcript_row(395, courses=1, valid_until="2019-01-01"), "transcript")  # type: ignore[assignment]
        with pytest.raises(InvalidInput, match="2020-01-01"):
            list(cold.sign(j, rows, ids))
    finally:
        cold.close()


def test_small_rosters_and_single_worker_pools_sign_in_process() -> None:
    rows, ids = transcripts(5), ids_for(5)
    small = SigningPool(2)  # min_rows 256
    assert [c.credential_id for chunk in small.sign(job(), rows, ids) for c in chunk] == ids
    assert not small.running
    single = SigningPool(0)  # EDULEDGER_SIGNING_WORKERS=0
    assert single.workers == 1 and single.warm() == []
    rows, ids = transcripts(300, courses=1), ids_for(300)
    j = job()
    same_credentials([c for chunk in single.sign(j, rows, ids) for c in chunk], sign_rows(j, rows, ids))
    assert not single.running


def test_rows_travel_as_plain_data_and_come_back_equal() -> None:
    for name, fmt, ctype in [("transcript.csv", "csv", "transcript"), ("graduation.csv", "csv", "graduation"),
                             ("training.json", "json", "training")]:
        rows = parse_roster((ROSTERS / name).read_bytes(), fmt=fmt, ctype=ctype)  # type: ignore[arg-type]
        for row in rows:
            again = _rebuild(type(row), row.model_dump())
            assert type(again) is type(row) and again == row
    degree = parse_one({"holder_name": "学生", "student_id": "D1", "degree_name": "工学学士", "field": "工学",
                        "conferral_date": "2026-06-30", "certificate_number": "10001-2026-00001"}, "degree")
    certificate = parse_one({"holder_name": "学生", "title": "三好学生", "category": "award",
                             "awarded_date": "2026-06-01"}, "certificate")
    for row in (degree, certificate):
        assert _rebuild(type(row), row.model_dump()) == row


def test_a_rebuilt_row_is_what_model_construct_builds() -> None:
    rows = parse_roster((ROSTERS / "transcript.csv").read_bytes(), fmt="csv", ctype="transcript")
    for row in rows:
        fast = _rebuild(type(row), row.model_dump())
        slow = type(row).model_construct(**row.model_dump())
        assert fast.__dict__.keys() == slow.__dict__.keys()
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.__pydantic_extra__ == slow.__pydantic_extra__
        assert fast.__pydantic_private__ == slow.__pydantic_private__
        course = type(row.courses[0])  # model_construct leaves nested rows as dicts
        assert [c.model_fields_set for c in fast.courses] == [
            course.model_construct(**c).model_fields_set for c in slow.courses]
    # Not every field given (not what model_dump() gives): model_construct fills the defaults.
    partial = rows[0].model_dump()
    del partial["valid_until"]
    rebuilt = _rebuild(type(rows[0]), partial)
    assert rebuilt.valid_until is None and rebuilt == rows[0]


def test_a_row_that_fails_in_a_worker_raises_its_own_error(pool: SigningPool) -> None:
    j = job()
    rows = transcripts(200, courses=1)
    # Valid rows (the roster accepts them) that cannot be issued today: the first one, in
    # row order, is reported, as in-process signing reports it.
    rows[120] = parse_one(transcript_row(120, courses=1, valid_until="2020-01-01"), "transcript")  # type: ignore[assignment]
    rows[170] = parse_one(transcript_row(170, courses=1, valid_until="2019-01-01"), "transcript")  # type: ignore[assignment]
    ids = ids_for(200)
    with pytest.raises(InvalidInput) as pooled:
        list(pool.sign(j, rows, ids))
    with pytest.raises(InvalidInput) as local:
        sign_rows(j, rows, ids)
    assert type(pooled.value) is type(local.value) is InvalidInput
    assert (pooled.value.code, pooled.value.message) == (local.value.code, local.value.message)
    assert "2020-01-01" in pooled.value.message

    # An SdJwtError keeps its code too (a row built without validation, which no roster gives).
    rows = transcripts(100, courses=1)
    rows[60] = TranscriptRow.model_construct(**{**rows[60].model_dump(), "holder_name": "\ud800",
                                                "courses": rows[60].courses})
    with pytest.raises(SdJwtError) as broken:
        list(pool.sign(j, rows, ids_for(100)))
    assert broken.value.code == "malformed" and "JSON" in broken.value.message
    # The pool is fine afterwards.
    assert len([c for chunk in pool.sign(j, rows[:50], ids_for(50)) for c in chunk]) == 50


def test_a_killed_worker_falls_back_in_process_and_the_pool_comes_back(
        pool: SigningPool, caplog: pytest.LogCaptureFixture) -> None:
    j = job()
    rows, ids = transcripts(400, courses=10), ids_for(400)
    # Between calls: the next call signs in-process, the one after starts new workers.
    before = pool.warm()
    os.kill(before[0], signal.SIGKILL)
    assert gone(before[0])
    signed = [c for chunk in pool.sign(j, rows, ids) for c in chunk]
    same_credentials(signed, sign_rows(j, rows, ids))
    assert "signing the rest of this roster in-process" in caplog.text
    caplog.clear()
    after = pool.warm()
    assert len(after) == 2 and not set(after) & set(before)
    assert all(gone(pid) for pid in before)  # the survivor was stopped, nothing left behind

    # During a call: what is left of the roster is signed in-process.
    chunks = pool.sign(j, rows, ids)
    first = next(chunks)
    os.kill(after[1], signal.SIGKILL)
    signed = first + [c for chunk in chunks for c in chunk]
    same_credentials(signed, sign_rows(j, rows, ids))
    assert "signing the rest of this roster in-process" in caplog.text
    assert all(gone(pid) for pid in after)
    assert len(pool.warm()) == 2


def _die_while_sending_a_result() -> None:
    """A worker task that writes the start of a result to the executor's result pipe, as a
    worker does, and is killed before the rest (test-only: the pipe is found in the caller's
    frame)."""
    frame = sys._getframe()
    while "result_queue" not in frame.f_locals:
        frame = frame.f_back  # type: ignore[assignment]
    writer = frame.f_locals["result_queue"]._writer
    os.write(writer.fileno(), struct.pack("!i", 4096) + b"the first bytes of a result")
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_while_sending_a_result_leaves_nothing_blocked() -> None:
    # The executor's manager thread would wait for the rest of that result for ever, and
    # the interpreter joins it at exit: the process could never stop.
    pool = SigningPool(2)
    executor = pool._running()
    results = executor._result_queue  # type: ignore[attr-defined]
    try:
        future = executor.submit(_die_while_sending_a_result)
        with pytest.raises(BrokenProcessPool):
            signing._result(executor, future)
        manager = executor._executor_manager_thread  # type: ignore[attr-defined]
        pids = [p.pid for p in signing._processes(executor)]
        assert manager is not None and manager.is_alive() and pids
        pool._discard(executor)
        manager.join(timeout=10)
        assert not manager.is_alive()
        assert all(gone(pid, timeout=1) for pid in pids)  # killed and reaped
        assert len(pool.warm()) == 2  # and the pool starts again
    finally:
        if executor is pool._executor:  # failed before the discard: a plain close would block
            pool._discard(executor)
        if not results._writer.closed:
            results._writer.close()  # a failed test must not hang the test run at exit
        pool.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, pool: SigningPool) -> Iterator[CredentialService]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "signing pool tests")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    node = init_network(Settings(data_dir=tmp_path_factory.mktemp("data")), DEMO_CONSORTIUM)
    services = NodeServices(node)
    svc = services.credentials
    svc.signing = pool
    yield svc
    node.close()
    mp.undo()


def stored_credentials(svc: CredentialService) -> int:
    with session_scope(svc.engine) as session:
        return session.exec(select(func.count()).select_from(CredentialRecord)).one()


def test_issuing_600_transcripts_on_the_pool(service: CredentialService) -> None:
    rows = transcripts(600, courses=10)
    steps: list[tuple[int, int]] = []
    batch = service.issue("school-a", CredentialType.TRANSCRIPT, rows,
                          progress=lambda done, total: steps.append((done, total)))
    assert batch.status == "anchored" and len(batch.credentials) == 600
    assert steps[-1] == (600, 600) and len(steps) > 1
    secret = _claim_key(service.keys.keys_for("school-a"))
    for n, issued in enumerate(batch.credentials):
        record = service.get(issued.credential_id)
        assert record.position == n and record.student_id == rows[n].student_id == issued.student_id
        assert issued.claim_code == claim_code(secret, issued.credential_id)
        leaf = credential_leaf(sdjwt.parse(record.sd_jwt).payload)
        assert issued.leaf == record.leaf_hash == "0x" + leaf.hex()
    for issued in batch.credentials[::50]:
        result = service.verifier.verify(service.get(issued.credential_id).sd_jwt, issued.anchor)
        assert result.valid, result.failures
        assert result.claims is not None
        subject = result.claims["credentialSubject"]
        assert subject["studentId"] == issued.student_id and len(subject["courses"]) == 10


def test_a_failing_row_leaves_no_trace(service: CredentialService) -> None:
    rows = transcripts(400, courses=1)
    rows[333] = parse_one(transcript_row(333, courses=1, valid_until="2020-01-01"), "transcript")  # type: ignore[assignment]
    before = stored_credentials(service)
    with pytest.raises(InvalidInput, match="2020-01-01 is already past"):
        service.issue("school-a", CredentialType.TRANSCRIPT, rows)
    assert stored_credentials(service) == before


def test_workers_stop_when_their_parent_is_killed() -> None:
    """kill -9 of the process that owns the pool: nobody shuts the pool down, the workers
    notice on their own and exit (no orphans left holding memory)."""
    import json
    import subprocess
    import sys

    script = ("import json, time\n"
              "from ledger.credentials.signing import SigningPool\n"
              "if __name__ == '__main__':\n"
              "    print(json.dumps(SigningPool(2).warm()), flush=True)\n"
              "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{p}").exists() for p in pids)
