"""The anchoring service: batches anchored exactly once, proofs that verify on chain.

The chain tests run on every chain backend, on one deployment per backend and module
(`network`); each test anchors leaves of its own into a database of its own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import select

from ledger.anchoring import AnchoringService
from ledger.anchoring.models import AnchorBatch, AnchorLeaf
from ledger.anchoring.service import _proof_json
from ledger.contracts.bindings import LeafStatus, Role
from ledger.errors import Conflict, ContractReverted, InvalidInput, NotFound
from ledger.merkle import verify_proof
from ledger.store import make_engine, migrate, session_scope
from tests.chain_env import ChainEnv
from tests.network_fixtures import Network, deploy_network


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def network(module_chain: ChainEnv) -> Network:
    """One deployment per backend and module; a test that changes a member's standing
    admits a member of its own (Network.admit)."""
    return deploy_network(module_chain)


def service(engine: Engine, network: Network) -> AnchoringService:
    return AnchoringService(engine, network.env.client, network.registry, network,
                            from_block=network.start_block)


def leaves(n: int) -> list[bytes]:
    return [secrets.token_bytes(32) for _ in range(n)]


def counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        return (s.exec(select(func.count()).select_from(AnchorBatch)).one(),
                s.exec(select(func.count()).select_from(AnchorLeaf)).one())


def test_batch_is_anchored_and_every_proof_verifies_on_chain(engine: Engine, network: Network) -> None:
    svc = service(engine, network)
    items = leaves(37)
    batch = svc.anchor("school-a", "credential", items)
    assert batch.status == "anchored" and batch.leaf_count == 37
    assert batch.chain_id == network.env.client.chain_id
    assert batch.contract_address == network.registry.address.lower()
    info = network.registry.root_info(batch.root)
    assert info.member_id == network.member_ids["school-a"] and info.count == 37
    assert info.block_number == batch.block_number
    for leaf in items:
        proof = svc.proof_for(leaf)
        assert proof.root == batch.root and proof.tx_hash == batch.tx_hash
        siblings = [bytes.fromhex(p[2:]) for p in proof.proof]
        assert verify_proof(leaf, siblings, bytes.fromhex(batch.root[2:]))
    # The contract itself accepts a proof read back from SQL.
    proof = svc.proof_for(items[5])
    network.registry.revoke(network.accounts["school-a"], items[5], batch.root,
                            [bytes.fromhex(p[2:]) for p in proof.proof], 7)
    assert network.registry.status_of(items[5], batch.root).status is LeafStatus.REVOKED


def test_idempotency_key_returns_the_same_batch(engine: Engine, network: Network) -> None:
    svc = service(engine, network)
    first = svc.anchor("school-a", "credential", leaves(3), idempotency_key="roster-2026-1")
    again = svc.anchor("school-a", "credential", leaves(3), idempotency_key="roster-2026-1")
    assert again.id == first.id and again.root == first.root
    assert counts(engine) == (1, 3)


def test_duplicate_leaf_is_a_conflict_and_changes_nothing(engine: Engine, network: Network) -> None:
    svc = service(engine, network)
    items = leaves(4)
    svc.anchor("school-a", "credential", items)
    head = network.env.client.block_number()
    with pytest.raises(Conflict):
        svc.anchor("school-a", "credential", [items[2], *leaves(2)])
    assert counts(engine) == (1, 4)
    assert network.env.client.block_number() == head


@pytest.mark.parametrize(("org", "kind", "reason"), [
    ("partner", "learning_record", "role-not-allowed"),
    ("auditor", "credential", "role-not-allowed"),
    ("school-a", "audit_report", "role-not-allowed"),
])
def test_contract_rejection_leaves_no_batch(engine: Engine, network: Network, org: str, kind: str,
                                            reason: str) -> None:
    svc = service(engine, network)
    with pytest.raises(ContractReverted) as err:
        svc.anchor(org, kind, leaves(3))
    assert err.value.reason == reason
    assert counts(engine) == (0, 0)


def test_suspended_member_cannot_anchor(engine: Engine, network: Network) -> None:
    org = f"school-{secrets.token_hex(4)}"  # its own member: the other tests' stay active
    member_id = network.admit(org, Role.SCHOOL)
    network.consortium.propose_suspend(network.accounts["bureau"], member_id)
    with pytest.raises(ContractReverted) as err:
        service(engine, network).anchor(org, "credential", leaves(2))
    assert err.value.reason == "member-not-active"
    assert counts(engine) == (0, 0)


@pytest.mark.parametrize("bad", [[], [b"short"], ["0x1234"]])
def test_bad_leaves_are_refused(engine: Engine, network: Network, bad: list) -> None:
    with pytest.raises(InvalidInput):
        service(engine, network).anchor("school-a", "credential", bad)
    assert counts(engine) == (0, 0)


def test_unknown_kind_and_missing_batch(engine: Engine, network: Network) -> None:
    svc = service(engine, network)
    with pytest.raises(InvalidInput, match="unknown anchor kind"):
        svc.anchor("school-a", "diploma-ish", leaves(1))
    with pytest.raises(NotFound):
        svc.get("no-such-batch")
    assert svc.proof_for(secrets.token_bytes(32)) is None  # in no batch


class Crash(BaseException):
    """Stands for the process dying at this point."""


def test_crash_after_accept_resumes_and_anchors_once(engine: Engine, network: Network) -> None:
    svc = service(engine, network)
    batch = svc.accept("school-a", "credential", leaves(9))
    assert svc.get(batch.id).status == "pending"
    # A new process starts and resumes what was accepted.
    done = service(engine, network).resume()
    assert [b.id for b in done] == [batch.id]
    assert svc.get(batch.id).status == "anchored"
    assert service(engine, network).resume() == []


def test_crash_after_the_transaction_records_it_without_a_second_anchor(
        engine: Engine, network: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(engine, network)

    def die(*_args: object, **_kwargs: object) -> None:
        raise Crash

    monkeypatch.setattr(svc, "_mark_anchored", die)
    with pytest.raises(Crash):
        svc.anchor("school-a", "credential", leaves(5))
    head = network.env.client.block_number()
    [batch] = service(engine, network).resume()
    assert batch.status == "anchored"
    # Found on chain, not sent again: no new block, and the recorded tx is the first one.
    assert network.env.client.block_number() == head
    assert network.registry.root_info(batch.root).block_number == batch.block_number
    with session_scope(engine) as s:
        rows = s.exec(select(AnchorLeaf).where(AnchorLeaf.batch_id == batch.id)).all()
    assert len(rows) == 5 and all(json.loads(r.proof_json) is not None for r in rows)


def test_crash_between_send_and_receipt(engine: Engine, network: Network,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(engine, network)
    batch = svc.accept("school-a", "credential", leaves(3))
    real_anchor = network.registry.anchor

    def send_then_die(*args: object, **kwargs: object) -> None:
        real_anchor(*args, **kwargs)  # type: ignore[arg-type]
        raise Crash

    monkeypatch.setattr(network.registry, "anchor", send_then_die)
    with pytest.raises(Crash):
        svc.process(batch.id)
    monkeypatch.undo()
    resumed = service(engine, network).process(batch.id)
    assert resumed.status == "anchored" and resumed.tx_hash


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=20))
def test_stored_proofs_are_the_json_of_their_hex_siblings(proof: list[bytes]) -> None:
    expected = ["0x" + p.hex() for p in proof]
    assert _proof_json(proof) == json.dumps(expected)
    assert json.loads(_proof_json(proof)) == expected
