"""The access log: a hash chain of every read of personal data, on SQLite and PostgreSQL.

Tampering is done the way an insider would: raw SQL on the tables, bypassing the log.
Checkpoints are anchored on a real (embedded) chain through the anchoring service.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, select, text, update
from sqlmodel import SQLModel

from api.cli import build_parser
from ledger.anchoring import AnchoringService
from ledger.audit.accesslog import (
    ZERO_HASH,
    Access,
    AccessLog,
    AccessLogBroken,
    AccessLogUnavailable,
    row_hash,
)
from ledger.audit.models import AccessLogCheckpointRow, AccessLogHeadRow, AccessLogRow
from ledger.canonical import canonical_json
from ledger.errors import ConfigError, InvalidInput
from ledger.merkle import keccak256
from ledger.store import make_engine, migrate
from ledger.store.db import alembic_config
from tests.chain_env import ChainEnv
from tests.network_fixtures import Network, deploy_network

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG = AccessLogRow.__table__  # type: ignore[attr-defined]
HEAD = AccessLogHeadRow.__table__  # type: ignore[attr-defined]
CHECKPOINT = AccessLogCheckpointRow.__table__  # type: ignore[attr-defined]
ACCESS_TABLES = {"access_log", "access_log_head", "access_log_checkpoint"}
PURPOSE = "employment verification"


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def log(engine: Engine) -> AccessLog:
    return AccessLog(engine)


@pytest.fixture
def network(chain_env: ChainEnv) -> Network:
    return deploy_network(chain_env)


def anchoring(engine: Engine, network: Network) -> AnchoringService:
    return AnchoringService(engine, network.env.client, network.registry, network,
                            from_block=network.start_block)


def fill(log: AccessLog, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        log.record("school-a", "school", "read", "credential", f"cred-{i}", PURPOSE)


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(LOG).order_by(LOG.c.seq)).all())


def rehash_from(engine: Engine, seq: int) -> None:
    """What an insider who knows the algorithm does after an edit: re-chain the tail and
    move the head, so that the chain alone verifies again."""
    all_rows = rows(engine)
    prev = ZERO_HASH
    with engine.begin() as conn:
        for r in all_rows:
            if r.seq >= seq:
                new = row_hash(r.seq, r.at, r.actor, r.actor_role, r.action, r.resource_kind,
                               r.resource_id, r.purpose, r.client, prev)
                conn.execute(update(LOG).where(LOG.c.seq == r.seq)
                             .values(prev_hash=prev, row_hash=new))
                prev = new
            else:
                prev = r.row_hash
        last = all_rows[-1].seq if all_rows else 0
        conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=last, hash=prev))


def broken_at(log: AccessLog, seq: int, checked: int | None = None) -> str:
    """Verification fails at row ``seq`` after ``checked`` intact rows (default: all before)."""
    result = log.verify()
    assert not result.ok, result
    assert result.first_broken_seq == seq, result
    assert result.rows_checked == (seq - 1 if checked is None else checked), result
    assert result.problem
    return result.problem


# --- schema ---------------------------------------------------------------------------------


def test_migration_matches_the_models(engine: Engine) -> None:
    def ours(obj: Any, name: Any, type_: str, reflected: Any, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name in ACCESS_TABLES

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
        assert compare_metadata(ctx, SQLModel.metadata) == []
    assert ACCESS_TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(select(HEAD.c.id, HEAD.c.seq, HEAD.c.hash)).all() == [(1, 0, ZERO_HASH)]


def test_downgrade_removes_the_tables_and_upgrade_seeds_the_head(db_url: str,
                                                                   engine: Engine) -> None:
    command.downgrade(alembic_config(db_url), "0004")
    assert not ACCESS_TABLES & set(inspect(engine).get_table_names())
    migrate(engine)
    log = AccessLog(engine)
    assert log.head() == (0, ZERO_HASH)
    assert log.record("school-a", "school", "read", "credential", "c1", PURPOSE).seq == 1


def test_unmigrated_store_is_a_clear_error(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate(eng, "0004")
    with pytest.raises(AccessLogUnavailable):
        AccessLog(eng).verify()
    with pytest.raises(AccessLogUnavailable):
        AccessLog(eng).record("school-a", "school", "read", "credential", "c1", PURPOSE)
    eng.dispose()


# --- appending and reading -----------------------------------------------------------------


def test_append_and_verify(log: AccessLog) -> None:
    assert log.verify().ok and log.verify().rows_checked == 0
    first = log.record("school-a", "school", "read", "credential", "cred-1", PURPOSE)
    second = log.record("holder", "holder", "redeem", "claim", "cred-1", client="203.0.113.7")
    third = log.record("public", "public", "view", "share", "sh-9", client="2001:db8::1")
    fourth = log.record("auditor", "auditor", "audit_read", "credential", "cred-1",
                        "  annual audit 年度审计 ")
    assert [e.seq for e in (first, second, third, fourth)] == [1, 2, 3, 4]
    assert first.prev_hash == ZERO_HASH
    assert second.prev_hash == first.row_hash and fourth.prev_hash == third.row_hash
    assert fourth.purpose == "annual audit 年度审计"  # stripped
    assert second.purpose is None
    assert first.at.tzinfo is not None and first.at <= fourth.at
    # What is read back is exactly what was written (times to the microsecond).
    assert log.entries() == [first, second, third, fourth]
    assert log.entries(after_seq=2, limit=1) == [third]
    assert log.entries(resource_kind="credential", resource_id="cred-1") == [first, fourth]
    assert log.entries(actor="public") == [third]
    assert log.head() == (4, fourth.row_hash)
    result = log.verify()
    assert (result.ok, result.rows_checked, result.first_broken_seq, result.problem) == (
        True, 4, None, None)


def test_row_hash_is_the_documented_formula(log: AccessLog) -> None:
    entry = log.record("school-a", "school", "read", "credential", "c\"1\\", "就业核验 \u00e9",
                       client="10.0.0.1")
    fields = entry.to_dict()
    assert fields["at"].endswith("Z") and len(fields["at"]) == 27
    del fields["row_hash"]
    expected = keccak256(bytes(32) + canonical_json(fields))
    assert entry.row_hash == "0x" + expected.hex()
    assert row_hash(entry.seq, entry.at, entry.actor, entry.actor_role, entry.action,
                    entry.resource_kind, entry.resource_id, entry.purpose, entry.client,
                    entry.prev_hash) == entry.row_hash


def test_record_many_is_one_ordered_batch(log: AccessLog) -> None:
    log.record("school-a", "school", "read", "credential", "c0", PURPOSE)
    batch = log.record_many([Access("partner", "partner", "read", "credential", f"c{i}", PURPOSE)
                             for i in range(1, 6)])
    assert [e.seq for e in batch] == [2, 3, 4, 5, 6]
    assert log.record_many([]) == []
    assert log.verify().rows_checked == 6


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"purpose": None}, "purpose_required"),
    ({"purpose": "   "}, "purpose_required"),
    ({"purpose": "x" * 201}, "purpose_too_long"),
    ({"purpose": "line\nbreak"}, "bad_purpose"),
    ({"purpose": 5}, "bad_purpose"),
    ({"action": "write"}, "bad_action"),
    ({"actor_role": "admin"}, "bad_actor_role"),
    ({"actor": ""}, "bad_actor"),
    ({"actor": "a" * 65}, "bad_actor"),
    ({"resource_kind": "Credential"}, "bad_resource"),
    ({"resource_id": ""}, "bad_resource"),
    ({"resource_id": "x\x00y"}, "bad_resource"),
    ({"client": "1.2.3.4 evil"}, "bad_client"),
    ({"client": "\ud800"}, "bad_client"),
])
def test_bad_input_is_refused_and_changes_nothing(log: AccessLog, kwargs: dict[str, Any],
                                                  code: str) -> None:
    log.record("school-a", "school", "read", "credential", "c1", PURPOSE)
    args: dict[str, Any] = {"actor": "school-b", "actor_role": "school", "action": "read",
                            "resource_kind": "credential", "resource_id": "c2",
                            "purpose": PURPOSE} | kwargs
    with pytest.raises(InvalidInput) as err:
        log.record(**args)
    assert err.value.code == code
    assert log.head()[0] == 1 and len(log.entries()) == 1


def test_purpose_of_exactly_200_characters_is_accepted(log: AccessLog) -> None:
    assert log.record("school-a", "school", "read", "credential", "c1", "字" * 200).purpose == "字" * 200
    assert log.verify().ok


@pytest.mark.parametrize(("after", "limit"), [(-1, 10), (0, 0), (0, 1001)])
def test_bad_paging_is_refused(log: AccessLog, after: int, limit: int) -> None:
    with pytest.raises(InvalidInput):
        log.entries(after, limit)


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_appends_from_8_threads_make_one_chain(log: AccessLog) -> None:
    per_thread = 25
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def run(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                log.record(f"org-{n}", "partner", "read", "credential", f"{n}-{i}", PURPOSE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    entries = log.entries(limit=1000)
    assert [e.seq for e in entries] == list(range(1, 8 * per_thread + 1))
    assert {e.resource_id for e in entries} == {f"{n}-{i}" for n in range(8) for i in range(per_thread)}
    for earlier, later in zip(entries, entries[1:], strict=False):
        assert later.prev_hash == earlier.row_hash
    result = log.verify()
    assert result.ok and result.rows_checked == 8 * per_thread


CHILD_APPEND = """
import sys, time
from pathlib import Path
from ledger.store import make_engine
from ledger.audit.accesslog import AccessLog
log = AccessLog(make_engine(sys.argv[1]))
log.head()  # connect before the start signal
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
for i in range(int(sys.argv[4])):
    log.record(sys.argv[3], "school", "read", "credential", f"{sys.argv[3]}-{i}", "x")
"""


def test_concurrent_appends_from_processes_make_one_chain(db_url: str, log: AccessLog,
                                                          tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CHILD_APPEND, db_url, str(go), f"p{n}", "30"],
                              cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
             for n in range(4)]
    time.sleep(2)  # let the children import and connect
    go.touch()
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0] * 4, results
    entries = log.entries(limit=1000)
    assert [e.seq for e in entries] == list(range(1, 121))
    assert len({e.resource_id for e in entries}) == 120
    assert log.verify().ok


def test_verify_sees_one_snapshot_while_writers_append(log: AccessLog) -> None:
    fill(log, 50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                log.record("school-b", "school", "read", "credential", f"w{i}", PURPOSE)
                i += 1
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        small = AccessLog(log.engine, chunk_rows=7)  # many chunks: appends land in between
        for _ in range(5):
            result = small.verify()
            assert result.ok, result
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert log.verify().ok


# --- tampering --------------------------------------------------------------------------------


def test_editing_one_rows_purpose_stops_verification_at_that_row(log: AccessLog,
                                                                  engine: Engine) -> None:
    fill(log, 20)
    sql(engine, "UPDATE access_log SET purpose = 'curiosity' WHERE seq = 7")
    assert "row 7 was changed" in broken_at(log, 7)


def test_deleting_a_row_stops_at_the_next_row(log: AccessLog, engine: Engine) -> None:
    fill(log, 20)
    sql(engine, "DELETE FROM access_log WHERE seq = 7")
    assert "row 7 is missing" in broken_at(log, 8, checked=6)


def test_deleting_the_first_row_stops_at_the_second(log: AccessLog, engine: Engine) -> None:
    fill(log, 5)
    sql(engine, "DELETE FROM access_log WHERE seq = 1")
    broken_at(log, 2, checked=0)


def test_deleting_the_tail_is_caught_by_the_head(log: AccessLog, engine: Engine) -> None:
    fill(log, 20)
    sql(engine, "DELETE FROM access_log WHERE seq >= 18")
    assert "18 to 20 is missing at the end" in broken_at(log, 18)


def test_editing_the_last_row_is_detected(log: AccessLog, engine: Engine) -> None:
    fill(log, 20)
    sql(engine, "UPDATE access_log SET resource_id = 'someone-else' WHERE seq = 20")
    broken_at(log, 20)


def test_editing_and_rehashing_one_row_breaks_the_link_to_the_next(log: AccessLog,
                                                                    engine: Engine) -> None:
    fill(log, 20)
    r = rows(engine)[6]
    new = row_hash(7, r.at, r.actor, r.actor_role, r.action, r.resource_kind, r.resource_id,
                   "curiosity", r.client, r.prev_hash)
    sql(engine, "UPDATE access_log SET purpose = 'curiosity', row_hash = :h WHERE seq = 7", h=new)
    assert "does not chain to the hash of row 7" in broken_at(log, 8)


def test_editing_and_rehashing_the_last_row_is_caught_by_the_head(log: AccessLog,
                                                                   engine: Engine) -> None:
    fill(log, 5)
    r = rows(engine)[-1]
    new = row_hash(5, r.at, r.actor, r.actor_role, r.action, r.resource_kind, r.resource_id,
                   "curiosity", r.client, r.prev_hash)
    sql(engine, "UPDATE access_log SET purpose = 'curiosity', row_hash = :h WHERE seq = 5", h=new)
    assert "does not match the head" in broken_at(log, 5)


def test_swapping_two_rows_is_detected(log: AccessLog, engine: Engine) -> None:
    fill(log, 10)
    sql(engine, "UPDATE access_log SET seq = 1000 WHERE seq = 4")
    sql(engine, "UPDATE access_log SET seq = 4 WHERE seq = 5")
    sql(engine, "UPDATE access_log SET seq = 5 WHERE seq = 1000")
    broken_at(log, 4)


def test_inserting_a_row_is_detected(log: AccessLog, engine: Engine) -> None:
    fill(log, 5)
    sql(engine, "UPDATE access_log SET seq = seq + 100 WHERE seq >= 3")
    sql(engine, "UPDATE access_log SET seq = seq - 99 WHERE seq >= 103")
    r = rows(engine)[1]
    at = r.at + timedelta(microseconds=1)
    forged = row_hash(3, at, "school-b", "school", "read", "credential", "x", PURPOSE, None, r.row_hash)
    with engine.begin() as conn:
        conn.execute(LOG.insert().values(seq=3, at=at, actor="school-b", actor_role="school",
                                         action="read", resource_kind="credential",
                                         resource_id="x", purpose=PURPOSE, client=None,
                                         prev_hash=r.row_hash, row_hash=forged))
    broken_at(log, 4)  # the forged row 3 chains well; old row 3, now 4, does not


def test_row_appended_behind_the_logs_back_is_detected(log: AccessLog, engine: Engine) -> None:
    fill(log, 3)
    last = rows(engine)[-1]
    at = datetime.now(UTC)
    forged = row_hash(4, at, "school-b", "school", "read", "credential", "x", PURPOSE, None,
                      last.row_hash)
    with engine.begin() as conn:
        conn.execute(LOG.insert().values(seq=4, at=at, actor="school-b", actor_role="school",
                                         action="read", resource_kind="credential",
                                         resource_id="x", purpose=PURPOSE, client=None,
                                         prev_hash=last.row_hash, row_hash=forged))
    assert "beyond the head" in broken_at(log, 4)


def test_verification_reads_in_chunks(log: AccessLog, engine: Engine) -> None:
    fill(log, 30)
    sql(engine, "UPDATE access_log SET client = '6.6.6.6' WHERE seq = 23")
    seen: list[tuple[int, int]] = []
    result = AccessLog(engine, chunk_rows=4).verify(progress=lambda d, t: seen.append((d, t)))
    assert result.first_broken_seq == 23 and result.rows_checked == 22
    assert seen[:3] == [(4, 30), (8, 30), (12, 30)]
    assert AccessLog(engine, chunk_rows=4).verify().first_broken_seq == 23


HASHES = st.binary(min_size=32, max_size=32).map(bytes.hex)
# Every field an insider might change, and a different value for it.
EDITS: dict[str, Any] = {
    "at": lambda r, d: r.at + timedelta(microseconds=d.draw(st.integers(1, 10**9))),
    "actor": lambda r, d: r.actor + d.draw(st.text(alphabet="xyz", min_size=1, max_size=3)),
    "actor_role": lambda r, d: d.draw(st.sampled_from(
        sorted({"bureau", "school", "partner", "auditor", "holder", "public"} - {r.actor_role}))),
    "action": lambda r, d: d.draw(st.sampled_from(
        sorted({"read", "redeem", "view", "audit_read"} - {r.action}))),
    "resource_kind": lambda r, d: r.resource_kind + "x",
    "resource_id": lambda r, d: r.resource_id + d.draw(st.sampled_from(["0", " ", "é"])),
    "purpose": lambda r, d: None if r.purpose and d.draw(st.booleans()) else (r.purpose or "") + ".",
    "client": lambda r, d: None if r.client and d.draw(st.booleans()) else (r.client or "") + "1",
    "prev_hash": lambda r, d: "0x" + d.draw(HASHES.filter(lambda h: h != r.prev_hash[2:])),
    "row_hash": lambda r, d: "0x" + d.draw(HASHES.filter(lambda h: h != r.row_hash[2:])),
}

accesses = st.builds(
    Access,
    actor=st.sampled_from(["school-a", "partner", "auditor", "holder", "public"]),
    actor_role=st.sampled_from(["school", "partner", "auditor", "bureau"]),
    action=st.sampled_from(["read", "redeem", "view", "audit_read"]),
    resource_kind=st.sampled_from(["credential", "share", "claim", "identity_card"]),
    resource_id=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FFF,
                                               exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                        min_size=1, max_size=20).filter(lambda s: s.strip() != ""),
    purpose=st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                    min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
    client=st.none() | st.sampled_from(["192.0.2.1", "2001:db8::7", "10.0.0.2:5555"]),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), batches=st.lists(st.lists(accesses, min_size=1, max_size=5),
                                        min_size=1, max_size=8))
def test_a_random_single_row_edit_is_found_exactly(log: AccessLog, engine: Engine,
                                                  data: st.DataObject,
                                                  batches: list[list[Access]]) -> None:
    with engine.begin() as conn:  # each example starts from an empty log
        conn.execute(LOG.delete())
        conn.execute(update(HEAD).values(seq=0, hash=ZERO_HASH))
    for batch in batches:
        if len(batch) == 1:
            a = batch[0]
            log.record(a.actor, a.actor_role, a.action, a.resource_kind, a.resource_id,
                       a.purpose, a.client)
        else:
            log.record_many(batch)
    total = sum(len(b) for b in batches)
    assert log.verify().rows_checked == total
    seq = data.draw(st.integers(1, total), label="row")
    field = data.draw(st.sampled_from(sorted(EDITS)), label="field")
    row = rows(engine)[seq - 1]
    value = EDITS[field](row, data)
    assert value != getattr(row, field)
    with engine.begin() as conn:
        conn.execute(update(LOG).where(LOG.c.seq == seq).values({field: value}))
    result = log.verify()
    assert (result.ok, result.first_broken_seq, result.rows_checked) == (False, seq, seq - 1), (
        field, result)


# --- checkpoints on a real chain ---------------------------------------------------------


def test_checkpoint_anchors_the_head_on_chain(log: AccessLog, engine: Engine,
                                              network: Network) -> None:
    svc = anchoring(engine, network)
    with pytest.raises(InvalidInput):
        log.checkpoint(svc, "auditor")  # empty log
    fill(log, 5)
    cp = log.checkpoint(svc, "auditor")
    assert cp.seq == 5 and cp.head_hash == log.head()[1]
    assert cp.root == "0x" + keccak256(b"\x00" + bytes.fromhex(cp.head_hash[2:])).hex()
    info = network.registry.root_info(cp.root)
    assert info.count == 1 and info.member_id == network.member_ids["auditor"]
    assert info.kind is not None and info.kind.name == "ACCESS_LOG"
    assert cp.block_number == info.block_number and cp.anchored_at.tzinfo is not None
    assert log.checkpoint(svc, "auditor") == cp  # unchanged head: the same checkpoint
    fill(log, 3, start=5)
    cp2 = log.checkpoint(svc, "school-a")  # any active member may anchor the log
    assert cp2.seq == 8 and [c.seq for c in log.checkpoints()] == [5, 8]
    result = log.verify(registry=network.registry)
    assert result.ok and result.rows_checked == 8 and result.checkpoints_checked == 2


def test_rewriting_the_whole_tail_is_caught_by_an_anchored_checkpoint(
        log: AccessLog, engine: Engine, network: Network) -> None:
    svc = anchoring(engine, network)
    fill(log, 5)
    log.checkpoint(svc, "auditor")
    fill(log, 5, start=5)
    log.checkpoint(svc, "auditor")
    fill(log, 5, start=10)
    sql(engine, "UPDATE access_log SET purpose = 'curiosity' WHERE seq = 7")
    broken_at(log, 7)
    rehash_from(engine, 7)  # every row chains again, and the head agrees ...
    problem = broken_at(log, 10)  # ... but row 10 no longer has the anchored hash
    assert "after row 5 up to row 10 was rewritten" in problem
    # A new checkpoint would not launder the rewrite either.
    with pytest.raises(AccessLogBroken):
        log.checkpoint(svc, "auditor")


def test_forging_the_checkpoints_as_well_is_caught_on_chain(
        log: AccessLog, engine: Engine, network: Network) -> None:
    svc = anchoring(engine, network)
    fill(log, 4)
    cp = log.checkpoint(svc, "auditor")
    fill(log, 2, start=4)
    sql(engine, "UPDATE access_log SET resource_id = 'other' WHERE seq = 2")
    rehash_from(engine, 2)
    forged = rows(engine)[3].row_hash
    sql(engine, "UPDATE access_log_checkpoint SET head_hash = :h WHERE seq = 4", h=forged)
    assert "does not match its anchor batch" in broken_at(log, 4)
    # rewrite the batch too: now the SQL store is consistent with itself ...
    forged_root = "0x" + keccak256(b"\x00" + bytes.fromhex(forged[2:])).hex()
    sql(engine, "UPDATE anchor_batch SET root = :r WHERE id = :b", r=forged_root, b=cp.batch_id)
    sql(engine, "UPDATE anchor_leaf SET leaf_hash = :h WHERE batch_id = :b", h=forged, b=cp.batch_id)
    assert log.verify().ok
    # ... and only the chain tells: that root was never anchored.
    result = log.verify(registry=network.registry)
    assert (result.ok, result.first_broken_seq, result.rows_checked) == (False, 4, 3)
    assert "not anchored on chain" in (result.problem or "")


def test_cutting_the_tail_behind_a_checkpoint_is_detected(
        log: AccessLog, engine: Engine, network: Network) -> None:
    fill(log, 10)
    log.checkpoint(anchoring(engine, network), "auditor")
    seventh = rows(engine)[6].row_hash
    sql(engine, "DELETE FROM access_log WHERE seq > 7")
    sql(engine, "UPDATE access_log_head SET seq = 7, hash = :h", h=seventh)
    assert "checkpoint was anchored at row 10" in broken_at(log, 8)


def test_checkpoint_refuses_to_anchor_a_broken_log(log: AccessLog, engine: Engine,
                                                   network: Network) -> None:
    svc = anchoring(engine, network)
    fill(log, 6)
    sql(engine, "UPDATE access_log SET actor = 'nobody' WHERE seq = 4")
    head = network.env.client.block_number()
    with pytest.raises(AccessLogBroken) as err:
        log.checkpoint(svc, "auditor")
    assert err.value.code == "access_log_broken" and err.value.details["seq"] == 4
    assert network.env.client.block_number() == head and log.checkpoints() == []


# --- the CLI ------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    """The command's own function (its errors are raised, not printed)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


def test_cli_verify_prints_intact_and_exits_0(db_url: str, log: AccessLog,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDULEDGER_DATABASE_URL", db_url)
    fill(log, 12)
    assert run_cli(["audit", "access", "--verify"]) == 0
    assert capsys.readouterr().out == "access log intact: 12 rows\n"


def test_cli_verify_prints_the_broken_row_and_exits_1(db_url: str, log: AccessLog, engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDULEDGER_DATABASE_URL", db_url)
    fill(log, 12)
    sql(engine, "UPDATE access_log SET purpose = 'curiosity' WHERE seq = 9")
    assert run_cli(["audit", "access", "--verify"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("access log broken at row 9: row 9 was changed"), out


def test_cli_uses_the_data_dir_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("EDULEDGER_DATABASE_URL", raising=False)
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    eng = make_engine(f"sqlite:///{data_dir / 'eduledger.sqlite3'}")
    migrate(eng)
    log = AccessLog(eng)
    fill(log, 3)
    log.record("public", "public", "view", "share", "sh-1", client="198.51.100.4")
    assert run_cli(["audit", "access", "--verify", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out == "access log intact: 4 rows\n"
    assert run_cli(["audit", "access", "--data-dir", str(data_dir), "--resource", "share:sh-1"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and "public@198.51.100.4" in listed[0] and "share:sh-1" in listed[0]
    eng.dispose()


def test_cli_without_a_store_is_a_clear_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDULEDGER_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError) as err:
        run_cli(["audit", "access", "--verify", "--data-dir", str(tmp_path / "nowhere")])
    assert err.value.code == "no_store"
    assert not (tmp_path / "nowhere" / "eduledger.sqlite3").exists()


def test_cli_in_a_process_exits_1_on_a_broken_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    eng = make_engine(f"sqlite:///{data_dir / 'eduledger.sqlite3'}")
    migrate(eng)
    fill(AccessLog(eng), 4)
    sql(eng, "DELETE FROM access_log WHERE seq = 2")
    eng.dispose()
    env = {k: v for k, v in os.environ.items() if k != "EDULEDGER_DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "audit", "access", "--verify", "--data-dir",
                           str(data_dir)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 1, done.stderr
    assert done.stdout == "access log broken at row 3: row 2 is missing before row 3 (deleted?)\n"

