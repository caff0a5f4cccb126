"""The SQL store (ledger.store) on SQLite and on a real PostgreSQL server.

Every test taking ``db_url`` runs twice: on a fresh SQLite file, and on a fresh,
uniquely named PostgreSQL database (created on the server in
EDULEDGER_TEST_POSTGRES_URL and dropped afterwards).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, make_url, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel, func, select

from ledger.anchoring.models import AnchorBatch, AnchorLeaf, AnchorStatus
from ledger.canonical import canonical_json
from ledger.errors import ConfigError, InvalidInput
from ledger.indexer.models import ChainEvent, IndexerCursor
from ledger.merkle import MerkleTree, new_salt, record_hash, verify_proof
from ledger.store import make_engine, migrate, schema, session_scope
from ledger.store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    _holds_nul,
    alembic_config,
    current_revision,
    head_revision,
    normalize_url,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ENV = "EDULEDGER_TEST_POSTGRES_URL"
# Every table of every capability (ledger.store.schema gathers them), and so covered by migrations.
STORE_TABLES = set(schema.metadata.tables)


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    migrate(engine)
    return engine


def make_event(**overrides: Any) -> ChainEvent:
    values: dict[str, Any] = {
        "chain_id": 1337,
        "contract": "0x" + "ab" * 20,
        "event": "MemberAdded",
        "block_number": 7,
        "block_hash": "0x" + "11" * 32,
        "block_time": datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
        "tx_hash": "0x" + "22" * 32,
        "log_index": 0,
        "args_json": canonical_json({"member": "school-1", "role": "school"}).decode(),
    }
    values.update(overrides)
    return ChainEvent(**values)


def make_batch(**overrides: Any) -> AnchorBatch:
    values: dict[str, Any] = {
        "kind": "credential",
        "root": "0x" + uuid.uuid4().hex * 2,
        "leaf_count": 1,
        "member_org": "school-1",
    }
    values.update(overrides)
    return AnchorBatch(**values)


def count(engine: Engine, model: type[SQLModel]) -> int:
    with session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def schema_snapshot(engine: Engine) -> dict[str, Any]:
    insp = inspect(engine)
    snap: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        snap[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(table)),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)
            ),
            "fks": sorted((f["name"], f["referred_table"]) for f in insp.get_foreign_keys(table)),
        }
    return snap


# --- migrations ------------------------------------------------------------------------


def test_migrate_from_empty(db_url: str, engine: Engine):
    assert current_revision(engine) is None
    assert not STORE_TABLES & set(inspect(engine).get_table_names())
    migrate(db_url)  # a URL works as well as an engine
    assert current_revision(engine) == head_revision()
    assert {"chain_event", "indexer_cursor", "anchor_batch", "anchor_leaf"} <= STORE_TABLES
    assert set(inspect(engine).get_table_names()) == STORE_TABLES | {"alembic_version"}


def test_migrate_twice_is_a_no_op(migrated: Engine):
    with session_scope(migrated) as session:
        session.add(make_event())
    before = schema_snapshot(migrated)
    migrate(migrated)
    migrate(migrated)
    assert schema_snapshot(migrated) == before
    assert current_revision(migrated) == head_revision()
    assert count(migrated, ChainEvent) == 1


def test_migrations_match_the_models(migrated: Engine):
    def ours(obj, name, type_, reflected, compare_to) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name in STORE_TABLES

    with migrated.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(db_url: str, migrated: Engine):
    cfg = alembic_config(db_url)  # env.py's URL path, as the alembic CLI would use it
    command.downgrade(cfg, "base")
    assert not STORE_TABLES & set(inspect(migrated).get_table_names())
    assert current_revision(migrated) is None
    migrate(migrated)
    assert STORE_TABLES <= set(inspect(migrated).get_table_names())


def test_concurrent_migrations_in_threads(db_url: str, engine: Engine):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(db_url)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert current_revision(engine) == head_revision()


CHILD_MIGRATE = """
import sys, time
from pathlib import Path
import ledger.store.schema
from ledger.store.db import make_engine, migrate
engine = make_engine(sys.argv[1])
engine.connect().close()
go = Path(sys.argv[2])
while not go.exists():  # start together, to collide
    time.sleep(0.005)
migrate(engine)
"""


def test_concurrent_migrations_in_processes(db_url: str, engine: Engine, tmp_path):
    # Services on one database may all migrate at start; the database lock orders them.
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_MIGRATE, db_url, str(go)],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(3)  # let the children import and connect
    go.touch()
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    assert current_revision(engine) == head_revision()


def test_offline_sql_renders_for_both_dialects(capsys):
    for url in ("sqlite:///x.sqlite3", "postgresql+psycopg://u@localhost/x"):
        cfg = alembic_config(url)
        command.upgrade(cfg, "head", sql=True)
        sql = capsys.readouterr().out
        assert "CREATE TABLE chain_event" in sql
        assert "uq_chain_event_chain_id_tx_hash_log_index" in sql


# --- session scope and constraints -----------------------------------------------------


def test_session_scope_commits(migrated: Engine):
    with session_scope(migrated) as session:
        event = make_event()
        session.add(event)
    assert event.id is not None  # readable after the scope: expire_on_commit=False
    with session_scope(migrated) as session:
        stored = session.get(ChainEvent, event.id)
        assert stored is not None
        assert stored.tx_hash == event.tx_hash
        assert json.loads(stored.args_json) == {"member": "school-1", "role": "school"}


def test_session_scope_rolls_back_on_error(migrated: Engine):
    with pytest.raises(RuntimeError, match="boom"):
        with session_scope(migrated) as session:
            session.add(make_event())
            session.add(make_batch())
            session.flush()  # the rows really reached the database
            raise RuntimeError("boom")
    assert count(migrated, ChainEvent) == 0
    assert count(migrated, AnchorBatch) == 0


def test_chain_event_unique_rejects_duplicate(migrated: Engine):
    with session_scope(migrated) as session:
        session.add(make_event())
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            session.add(make_event(block_number=8, block_hash="0x" + "33" * 32))
    # another log of the same transaction, or the same log on another chain, is fine
    with session_scope(migrated) as session:
        session.add(make_event(log_index=1))
        session.add(make_event(chain_id=1))
    assert count(migrated, ChainEvent) == 3


def test_failed_insert_leaves_nothing_of_its_transaction(migrated: Engine):
    with session_scope(migrated) as session:
        session.add(make_event())
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            session.add(make_event(log_index=5))
            session.add(
                IndexerCursor(name="main", chain_id=1337, last_block=7, last_block_hash="0x" + "11" * 32)
            )
            session.flush()
            session.add(make_event())  # duplicate: the whole transaction goes
    assert count(migrated, ChainEvent) == 1
    assert count(migrated, IndexerCursor) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "bogus"},
        {"status": AnchorStatus.SUBMITTED},  # submitted without a tx_hash
        {"status": AnchorStatus.ANCHORED, "tx_hash": "0x" + "aa" * 32},  # no block
        {"root": "0x" + "AB" * 32},  # upper-case hex
        {"leaf_count": 0},
    ],
)
def test_anchor_batch_checks(migrated: Engine, bad: dict[str, Any]):
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            session.add(make_batch(**bad))
    assert count(migrated, AnchorBatch) == 0


def test_anchor_batch_unique_root_and_idempotency_key(migrated: Engine):
    with session_scope(migrated) as session:
        session.add(make_batch(root="0x" + "01" * 32, idempotency_key="req-1"))
        session.add(make_batch())  # keys may be absent on many batches
        session.add(make_batch())
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            session.add(make_batch(root="0x" + "01" * 32))
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            session.add(make_batch(idempotency_key="req-1"))
    assert count(migrated, AnchorBatch) == 3


def test_anchor_leaf_needs_its_batch(migrated: Engine):
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            session.add(
                AnchorLeaf(
                    batch_id=str(uuid.uuid4()),
                    position=0,
                    leaf_hash="0x" + "00" * 32,
                    proof_json="[]",
                )
            )


def test_anchor_batch_with_leaves_round_trip(migrated: Engine):
    records = [{"student": f"s{i}", "grade": "A"} for i in range(37)]
    leaves = [record_hash(new_salt(), canonical_json(r)) for r in records]
    tree = MerkleTree(leaves)
    block_time = datetime(2025, 6, 1, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    with session_scope(migrated) as session:
        batch = make_batch(root="0x" + tree.root.hex(), leaf_count=len(tree), idempotency_key="k1")
        session.add(batch)
        session.flush()  # the leaves' foreign key needs the batch row first
        for position, (leaf, proof) in enumerate(zip(tree.leaves, tree.proofs(), strict=True)):
            session.add(
                AnchorLeaf(
                    batch_id=batch.id,
                    position=position,
                    leaf_hash="0x" + leaf.hex(),
                    proof_json=json.dumps(["0x" + p.hex() for p in proof]),
                )
            )
    with session_scope(migrated) as session:
        stored = session.get(AnchorBatch, batch.id)
        assert stored is not None
        stored.status = AnchorStatus.ANCHORED
        stored.tx_hash = "0x" + "cd" * 32
        stored.block_number = 42
        stored.block_time = block_time
        stored.chain_id = 1337
        stored.contract_address = "0x" + "ef" * 20
    with session_scope(migrated) as session:
        stored = session.get(AnchorBatch, batch.id)
        assert stored is not None and stored.status == "anchored"
        assert stored.block_time == block_time and stored.block_time.tzinfo == UTC
        root = bytes.fromhex(stored.root[2:])
        rows = session.exec(
            select(AnchorLeaf).where(AnchorLeaf.batch_id == batch.id).order_by(AnchorLeaf.position)
        ).all()
        assert len(rows) == stored.leaf_count == 37
        for row in rows:
            proof = [bytes.fromhex(p[2:]) for p in json.loads(row.proof_json)]
            assert verify_proof(bytes.fromhex(row.leaf_hash[2:]), proof, root)
    # a second batch cannot claim a leaf that is already anchored
    with pytest.raises(IntegrityError):
        with session_scope(migrated) as session:
            other = make_batch()
            session.add(other)
            session.flush()
            session.add(
                AnchorLeaf(batch_id=other.id, position=0, leaf_hash=rows[0].leaf_hash, proof_json="[]")
            )
    # deleting a batch deletes its leaves (ON DELETE CASCADE, enforced on SQLite too)
    with session_scope(migrated) as session:
        session.delete(session.get(AnchorBatch, batch.id))
    assert count(migrated, AnchorLeaf) == 0


def test_datetimes_are_utc_aware(migrated: Engine):
    local = datetime(2025, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    with session_scope(migrated) as session:
        event = make_event(block_time=local)
        session.add(event)
    with session_scope(migrated) as session:
        stored = session.get(ChainEvent, event.id)
        assert stored is not None
        assert stored.block_time == datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
        assert stored.block_time.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive datetime"):
        with session_scope(migrated) as session:
            session.add(make_event(log_index=9, block_time=datetime(2025, 1, 1)))


# --- engines ---------------------------------------------------------------------------


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    try:
        with engine.connect() as conn:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 2  # FULL
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_back_on_after_migrate(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.sqlite3'}", pool_size=1)
    try:
        migrate(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_selects_run_inside_the_transaction(tmp_path):
    # Reads in one session see one snapshot, even if another connection commits between.
    url = f"sqlite:///{tmp_path / 'snap.sqlite3'}"
    engine = make_engine(url)
    other = make_engine(url)
    try:
        migrate(engine)
        with session_scope(engine) as session:
            assert session.exec(select(func.count()).select_from(ChainEvent)).one() == 0
            with session_scope(other) as writer:
                writer.add(make_event())
            assert session.exec(select(func.count()).select_from(ChainEvent)).one() == 0
        assert count(engine, ChainEvent) == 1
    finally:
        engine.dispose()
        other.dispose()


def test_in_memory_sqlite():
    engine = make_engine("sqlite://")
    try:
        migrate(engine)
        with session_scope(engine) as session:
            session.add(make_event())
        assert count(engine, ChainEvent) == 1
    finally:
        engine.dispose()


def test_urls():
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ConfigError):
        normalize_url("mysql://u@h/db")
    with pytest.raises(ConfigError):
        normalize_url("not a url")
    # a password with special characters survives into the Alembic config
    cfg = alembic_config("postgresql://u:p%25ss@h/db")
    assert make_url(cfg.get_main_option("sqlalchemy.url")).password == "p%ss"


@pytest.mark.postgres
def test_postgres_engine_speaks_psycopg3(postgres_db_url: str):
    # the plain libpq-style URL gets the psycopg 3 driver
    engine = make_engine(postgres_db_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar()
        assert name == make_url(postgres_db_url).database
    finally:
        engine.dispose()


# --- text PostgreSQL cannot hold --------------------------------------------------------

_SCALARS = st.none() | st.integers() | st.binary(max_size=4) | st.text(max_size=8)
_ROW = st.dictionaries(st.text(max_size=4), _SCALARS, max_size=4) | st.tuples(_SCALARS, _SCALARS)


@given(st.one_of(_ROW, st.lists(_ROW, max_size=5)))
def test_a_nul_is_found_in_any_shape_of_parameters(parameters: Any) -> None:
    rows = parameters if isinstance(parameters, list) else [parameters]
    values = [v for row in rows for v in (row.values() if isinstance(row, dict) else row)]
    assert _holds_nul(parameters) == any(type(v) is str and "\x00" in v for v in values)


def test_every_engine_refuses_nul_before_the_statement_runs(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE nul_probe (v VARCHAR(10))"))
        with pytest.raises(InvalidInput) as refused, engine.begin() as conn:
            conn.execute(text("INSERT INTO nul_probe VALUES (:v)"), [{"v": "ok"}, {"v": "a\x00b"}])
        assert refused.value.code == "nul_in_text"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM nul_probe")).scalar() == 0
            with pytest.raises(InvalidInput):
                conn.execute(text("SELECT v FROM nul_probe WHERE v = :v"), {"v": "\x00"})
    finally:
        engine.dispose()


def test_shares_made_before_their_verification_codes_get_one(db_url: str, engine: Engine):
    """Migration 0014 gives every existing share a code of its own (unique, of the alphabet)."""
    from ledger.credentials.service import VERIFY_CODE_ALPHABET

    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0013")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(text(
                "INSERT INTO share (id, presentation, anchor_json, audience, created_at, expires_at, "
                "withdraw_token_hash) VALUES (:id, 'p', 'null', 'a', :now, :now, 'h')"),
                {"id": f"share{n:011d}", "now": datetime.now(UTC)})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        codes = [row[0] for row in conn.execute(text("SELECT verify_code FROM share"))]
    assert len(set(codes)) == 3 and all(len(c) == 16 and set(c) <= set(VERIFY_CODE_ALPHABET) for c in codes)
