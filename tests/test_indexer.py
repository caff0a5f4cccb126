"""The indexer copies every contract event into SQL once, and resumes where it stopped.

Every test runs on every chain backend (one deployment per backend and module, `network`)
and on every SQL database (`db_url`), each test into a database of its own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from ledger.indexer import Indexer
from ledger.indexer.models import ChainEvent
from ledger.store import make_engine, migrate, session_scope
from tests.chain_env import ChainEnv
from tests.network_fixtures import Network, deploy_network


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def network(module_chain: ChainEnv) -> Network:
    return deploy_network(module_chain)


def indexer(engine: Engine, network: Network) -> Indexer:
    return Indexer(engine, network.env.client,
                   [network.consortium.contract, network.registry.contract],
                   from_block=network.start_block)


def events(engine: Engine) -> list[ChainEvent]:
    with session_scope(engine) as s:
        return list(s.exec(select(ChainEvent).order_by(ChainEvent.block_number, ChainEvent.log_index)))


def chain_log_count(network: Network) -> int:
    return len(network.env.client.w3.eth.get_logs({
        "address": [network.consortium.address, network.registry.address],
        "fromBlock": network.start_block, "toBlock": "latest"}))


def test_every_event_is_copied_once_and_resumes(engine: Engine, network: Network) -> None:
    first = indexer(engine, network).run_once()
    assert first == chain_log_count(network) > 0
    names = {e.event for e in events(engine)}
    assert {"MemberAdmitted", "ProposalCreated", "ProposalExecuted"} <= names
    # Nothing new: a second pass (even by a new indexer, as after a restart) adds nothing.
    assert indexer(engine, network).run_once() == 0
    root = secrets.token_bytes(32)
    network.registry.anchor(network.accounts["school-a"], root, 1, 12, b"\x11" * 32)
    assert indexer(engine, network).run_once() == 1
    # (other tests anchor on the same deployment: this root's event is the one copied once)
    anchored = [e for e in events(engine)
                if e.event == "Anchored" and json.loads(e.args_json)["root"] == "0x" + root.hex()]
    assert len(anchored) == 1
    args = json.loads(anchored[0].args_json)
    assert args["count"] == 12 and args["memberId"] == network.member_ids["school-a"]
    assert anchored[0].contract == network.registry.address.lower()
    assert anchored[0].block_time.tzinfo is not None
    with session_scope(engine) as s:
        total = s.exec(select(func.count()).select_from(ChainEvent)).one()
    assert total == chain_log_count(network)


def test_cursor_records_progress(engine: Engine, network: Network) -> None:
    idx = indexer(engine, network)
    idx.run_once()
    cursor = idx.cursor()
    assert cursor is not None and cursor.last_block == network.env.client.block_number()
    assert cursor.last_block_hash == network.env.client.block(cursor.last_block)["hash"].to_0x_hex()


def test_leaf_status_projection_agrees_with_the_chain(engine: Engine, network: Network) -> None:
    from ledger.contracts.bindings import LeafStatus
    from ledger.indexer import IndexedLeafStatus, project_leaf_status
    from ledger.merkle import MerkleTree

    idx = Indexer(engine, network.env.client, [network.consortium.contract, network.registry.contract],
                  from_block=network.start_block, projections=[project_leaf_status])
    status = IndexedLeafStatus(engine, idx, max_age=0)
    school = network.accounts["school-a"]
    leaves = [secrets.token_bytes(32) for _ in range(4)]
    tree = MerkleTree(leaves)
    network.registry.anchor(school, tree.root, 1, 4, b"\x00" * 32)
    assert status.status_of(leaves[0], tree.root).status is LeafStatus.VALID
    network.registry.suspend(school, leaves[0], tree.root, tree.proof(0), 4)
    network.registry.supersede(school, leaves[1], tree.root, tree.proof(1), leaves[2], 5)
    network.registry.revoke(network.accounts["bureau"], leaves[3], tree.root, tree.proof(3), 6)
    network.registry.reinstate(school, leaves[0], tree.root, tree.proof(0), 0)
    for leaf in leaves:
        on_chain = network.registry.status_of(leaf, tree.root)
        indexed = status.status_of(leaf, tree.root)
        assert (indexed.status, indexed.reason, indexed.block_number, indexed.superseded_by) == (
            on_chain.status, on_chain.reason, on_chain.block_number, on_chain.superseded_by)
    assert status.status_of(leaves[1], tree.root).superseded_by == leaves[2]


def test_a_second_indexer_racing_the_first_neither_fails_nor_duplicates(
        engine: Engine, network: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes (a serving node and a CLI) may index the same range at the same time."""
    first, second = indexer(engine, network), indexer(engine, network)
    stored = first.run_once()
    # The second read the cursor before the first committed: it starts from the beginning.
    monkeypatch.setattr(second, "_start_block", lambda: network.start_block)
    assert second.run_once() == 0
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(ChainEvent)).one() == stored
