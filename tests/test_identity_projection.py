"""The indexer's copy of the identity registry (ledger.identity.projection) against the
contract itself: after every kind of change the registry makes - issuing, binding and
rotating keys, suspending and reinstating, graduation, a move between schools, portrait and
validity changes, a revocation - each card read from the copy equals the card read from
the contract, and recognition reads the copy without running the contract."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import delete

from ledger.contracts.identity import CardInfo, CardStatus
from ledger.credentials import jose
from ledger.identity.models import IdentityCardState
from ledger.identity.projection import IndexedCards
from ledger.identity.roster import parse_card_roster
from ledger.node import Node, NodeServices, init_network
from ledger.settings import Settings
from ledger.store import session_scope
from node_config import DEMO_CONSORTIUM
from tests.identity_fixtures import present, roster_zip, student, teacher


@pytest.fixture
def services(env: Path) -> Iterator[NodeServices]:
    node: Node = init_network(Settings(data_dir=env / "data"), DEMO_CONSORTIUM)
    try:
        yield NodeServices(node)
    finally:
        node.close()


def _jwk() -> dict[str, str]:
    return jose.ed25519_jwk(Ed25519PrivateKey.generate().public_key())


def _copy_equals_contract(services: NodeServices, cards: IndexedCards, ids: list[str]) -> list[CardInfo]:
    registry = services.identity.registry
    seen = []
    for card_id in ids:
        from_contract = registry.card(card_id)
        assert from_contract is not None
        assert cards.card(card_id) == from_contract, card_id
        seen.append(from_contract)
    return seen


def test_the_copy_follows_every_change_the_registry_makes(services: NodeServices) -> None:
    identity = services.identity
    cards = IndexedCards(services.node.engine, identity.registry, services.node.indexer())
    students = identity.issue("school-a", "student", parse_card_roster(
        roster_zip([student(n) for n in range(4)]), kind="student", fmt="zip")).cards
    ids = [c.card_id for c in students]
    _copy_equals_contract(services, cards, ids)

    for c in students:
        identity.claim(c.claim_code, _jwk())  # keys bound
    identity.claim(identity.new_claim_code("school-a", ids[1]), _jwk())  # a key rotated
    identity.change_status("school-a", ids[2], "suspend", reason=7)
    identity.change_status("school-a", ids[2], "reinstate")
    identity.change_status("school-a", ids[3], "revoke", reason=2)
    graduate = identity.graduate("school-a", ids[0], graduation_date=date(2026, 7, 1),
                                 valid_until=date(2076, 7, 1)).cards[0]
    ids.append(graduate.card_id)

    # A teacher moves: school A ends the card, school B's continues it.
    [first] = identity.issue("school-a", "teacher", parse_card_roster(
        roster_zip([teacher(2)]), kind="teacher", fmt="zip")).cards
    identity.change_status("school-a", first.card_id, "end")
    [second] = identity.issue("school-b", "teacher", parse_card_roster(
        roster_zip([teacher(2, staff_number="B-2")]), kind="teacher", fmt="zip")).cards
    ids += [first.card_id, second.card_id]

    # Changes only the contract's own calls make: a new portrait and a validity window.
    signer = services.keyring.account_for("school-a")
    identity.registry.set_portrait(signer, ids[2], "0x" + "ab" * 32)
    identity.registry.set_validity(signer, ids[2], 1_700_000_000, 2_000_000_000)

    seen = {"0x" + c.card_id.hex(): c for c in _copy_equals_contract(services, cards, ids)}
    # And the copy says what happened (not only what the contract says, read twice).
    assert seen[ids[0]].status is CardStatus.ENDED and seen[ids[0]].continued
    assert seen[ids[3]].status is CardStatus.REVOKED and seen[ids[3]].reason == 2
    assert seen[ids[2]].status is CardStatus.ACTIVE and seen[ids[2]].portrait == bytes.fromhex("ab" * 32)
    assert (seen[ids[2]].valid_from, seen[ids[2]].valid_until) == (1_700_000_000, 2_000_000_000)
    assert seen[second.card_id].predecessor == bytes.fromhex(first.card_id[2:])
    assert seen[first.card_id].status is CardStatus.ENDED and seen[first.card_id].continued
    assert cards.card("0x" + "42" * 32) is None  # never issued: the contract says so


def test_recognition_reads_the_copy_and_a_change_counts_from_its_block(services: NodeServices) -> None:
    identity = services.identity
    [card] = identity.issue("school-a", "student", parse_card_roster(
        roster_zip([student(9)]), kind="student", fmt="zip")).cards
    holder = Ed25519PrivateKey.generate()
    claimed = identity.claim(card.claim_code, jose.ed25519_jwk(holder.public_key()))
    contract_reads: list[str] = []
    registry = identity.registry
    real_card = registry.card
    registry.card = lambda card_id, **kw: contract_reads.append(str(card_id)) or real_card(card_id, **kw)  # type: ignore[method-assign]

    def recognised() -> tuple[bool, list[str]]:
        asked = identity.new_challenge("partner", "https://exam.example", ["name"])
        answer = present(claimed.sd_jwt, holder, {"audience": asked.audience, "nonce": asked.nonce}, {"name"})
        verdict = identity.recognise("partner", asked.id, answer)
        return verdict.valid, verdict.failures

    assert recognised() == (True, [])
    assert contract_reads == []  # the copy answered
    # Suspended by a direct call to the contract (as another node would): the very next
    # recognition sees it, with no waiting for a background pass.
    real_set = type(registry).set_status
    real_set(registry, services.keyring.account_for("school-a"), card.card_id, CardStatus.SUSPENDED, 4)
    assert recognised() == (False, ["card_suspended"])
    assert contract_reads == []

    # A card the copy lacks (issued before the copy existed) is read from the contract.
    with session_scope(services.node.engine) as session:
        session.exec(delete(IdentityCardState))  # type: ignore[call-overload]
    assert recognised() == (False, ["card_suspended"])
    assert contract_reads == [card.card_id]
