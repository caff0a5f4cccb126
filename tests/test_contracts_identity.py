"""IdentityRegistry.vy through its binding: issuing, changing and continuing identity cards.

Every chain test runs on every chain backend (`module_chain`), on one world and one
registry per backend and module; each test issues cards of its own (random ids), and a
test that changes a member's standing admits a member of its own, so no test depends on
another's order. The packed-word tests at the end need no chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.chain.client import TxResult
from ledger.chain.embedded import GAS_LIMIT
from ledger.contracts import (
    MAX_CARD_BATCH,
    MAX_CARD_TIMESTAMP,
    CardInfo,
    CardKind,
    CardSpec,
    CardState,
    CardStatus,
    IdentityRegistryContract,
    ProposalAction,
    Role,
    decode_events,
    event_abis,
)
from ledger.errors import ContractReverted, InvalidInput
from tests.chain_env import ChainEnv
from tests.test_contracts_consortium import CALLERS, World, build_world, reason_of

ZERO = b"\x00" * 32
YEAR = 365 * 24 * 3600
ACTIVE, SUSPENDED, REVOKED, ENDED = (CardStatus.ACTIVE, CardStatus.SUSPENDED,
                                     CardStatus.REVOKED, CardStatus.ENDED)
CARD_EVENTS = {"CardIssued", "CardStatusChanged", "CardKeyBound", "CardKeyRotated",
               "CardPortraitChanged", "CardValidityChanged"}


def rand32() -> bytes:
    return os.urandom(32)


@pytest.fixture(scope="module")
def world(module_chain: ChainEnv) -> World:
    """One world per backend and module (see test_contracts_consortium)."""
    return build_world(module_chain)


@pytest.fixture(scope="module")
def reg(world: World) -> IdentityRegistryContract:
    return IdentityRegistryContract.deploy(world.client, world.env.funder, world.consortium)


def issue(reg: IdentityRegistryContract, who: LocalAccount, kind: CardKind = CardKind.STUDENT,
          **kwargs) -> tuple[bytes, TxResult]:
    card_id = rand32()
    return card_id, reg.issue(who, card_id, kind, **kwargs)


def raw(reg: IdentityRegistryContract, who: LocalAccount, fn: str, *args) -> TxResult:
    """A call that skips the binding's own checks, so that the contract's are tested."""
    return reg.client.transact(who, reg.contract, fn, *args)


def head_time(world: World) -> int:
    return int(world.client.block("latest")["timestamp"])


def caller_rule(caller: str) -> str | None:
    if caller in ("suspended", "removed"):
        return "member-not-active"
    if caller == "retired_account":
        return "account-retired"
    if caller in ("non_member", "governor"):
        return "not-member"
    return None


# --- deployment ---------------------------------------------------------------------------


def test_deployment(world: World, reg: IdentityRegistryContract) -> None:
    assert reg.consortium_address() == world.consortium.address
    assert reg.max_batch() == MAX_CARD_BATCH == 100
    with pytest.raises(ContractReverted) as err:
        IdentityRegistryContract.deploy(world.client, world.env.funder, Account.create().address)
    assert err.value.reason == "not-a-contract"
    assert IdentityRegistryContract.at(world.client, reg.address).max_batch() == 100


# --- issue ----------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_issue_by_caller(world: World, reg: IdentityRegistryContract, caller: str) -> None:
    """Schools and the bureau issue; partners and auditors do not."""
    who, card_id, portrait = world.callers[caller], rand32(), rand32()
    expected = caller_rule(caller)
    if expected is None and caller not in ("bureau", "school", "other_school"):
        expected = "role-not-allowed"
    assert reason_of(lambda: reg.issue(who, card_id, CardKind.TEACHER, portrait=portrait)) == \
        expected
    info = reg.card(card_id)
    if expected is None:
        assert info is not None
        assert (info.issuer, info.kind, info.status, info.portrait) == (
            world.ids[caller], CardKind.TEACHER, ACTIVE, portrait)
    else:
        assert info is None
    # the batch is held to the same rule
    batch_id = rand32()
    assert reason_of(lambda: reg.issue_batch(who, [CardSpec(batch_id, CardKind.STUDENT)])) == \
        expected
    assert (reg.card(batch_id) is not None) == (expected is None)


def test_issue_event_and_card(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    card_id, portrait, now = rand32(), rand32(), head_time(world)
    tx = reg.issue(school, card_id, CardKind.STUDENT, portrait=portrait, valid_from=now - 10,
                   valid_until=now + 4 * YEAR)
    assert reg.events(tx) == [("CardIssued", {
        "cardId": card_id, "issuer": world.ids["school"], "predecessor": ZERO, "kind": 1,
        "portrait": portrait, "validFrom": now - 10, "validUntil": now + 4 * YEAR})]
    assert reg.card(card_id) == CardInfo(
        issuer=world.ids["school"], kind=CardKind.STUDENT, status=ACTIVE, reason=0,
        valid_from=now - 10, valid_until=now + 4 * YEAR, changed_block=tx.block_number,
        continued=False, card_id=card_id, holder_key=None, portrait=portrait, predecessor=None)
    assert reg.card(card_id, block=tx.block_number - 1) is None
    assert reg.valid_at_block(card_id, tx.block_number)
    assert not reg.valid_at_block(card_id, tx.block_number - 1)
    # a card issued with no portrait and an open window
    bare, tx2 = issue(reg, school, CardKind.GRADUATE)
    info = reg.card(bare)
    assert info is not None
    assert (info.portrait, info.valid_from, info.valid_until, info.holder_key) == (
        None, 0, None, None)
    assert reg.events(tx2)[0][1]["portrait"] == ZERO
    assert reg.valid_at_block(bare, tx2.block_number)


def test_issue_refusals(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    card_id = rand32()

    def attempt(cid=card_id, kind=1, portrait=ZERO, predecessor=ZERO, start=0, end=0):
        return reason_of(lambda: raw(reg, school, "issue", cid, kind, portrait, predecessor,
                                     start, end))

    assert attempt(cid=ZERO) == "zero-card-id"
    for kind in (0, 4, 255):
        assert attempt(kind=kind) == "invalid-kind"
    assert attempt(start=100, end=100) == "bad-validity"
    assert attempt(start=100, end=99) == "bad-validity"
    assert attempt(start=MAX_CARD_TIMESTAMP + 1) == "bad-validity"
    assert attempt(end=MAX_CARD_TIMESTAMP + 1) == "bad-validity"
    assert reg.card(card_id) is None
    assert attempt(start=MAX_CARD_TIMESTAMP - 1, end=MAX_CARD_TIMESTAMP) is None
    info = reg.card(card_id)
    assert info is not None
    assert (info.valid_from, info.valid_until) == (MAX_CARD_TIMESTAMP - 1, MAX_CARD_TIMESTAMP)
    # an id is issued once, ever, by anyone, of any kind
    assert attempt() == "card-exists"
    for who in ("other_school", "bureau"):
        assert reason_of(lambda w=who: reg.issue(world.callers[w], card_id, 2)) == "card-exists"
    assert reg.card(card_id) == info
    # the binding refuses what the contract would, before any call
    for bad in (dict(card_id=ZERO), dict(kind=0), dict(kind=4), dict(valid_from=5, valid_until=5),
                dict(valid_from=-1), dict(valid_until=MAX_CARD_TIMESTAMP + 1),
                dict(card_id=b"short"), dict(portrait="0x12")):
        spec = {"card_id": rand32(), "kind": 1, **bad}
        with pytest.raises(InvalidInput):
            reg.issue(school, spec.pop("card_id"), spec.pop("kind"), **spec)


# --- changes: who may -----------------------------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_change_by_caller(world: World, reg: IdentityRegistryContract, caller: str) -> None:
    """On a card issued by the school: the school itself and the bureau change it."""
    school, who = world.callers["school"], world.callers[caller]
    card_id, _ = issue(reg, school, portrait=rand32())
    expected = caller_rule(caller)
    if expected is None and caller not in ("school", "bureau"):
        expected = "not-card-issuer"
    now = head_time(world)
    changes: list[tuple[str, Callable[[], object]]] = [
        ("bind", lambda: reg.bind_key(who, card_id, rand32())),
        ("rotate", lambda: reg.rotate_key(who, card_id, rand32())),
        ("portrait", lambda: reg.set_portrait(who, card_id, rand32())),
        ("validity", lambda: reg.set_validity(who, card_id, now, now + YEAR)),
        ("suspend", lambda: reg.suspend(who, card_id, 3)),
        ("reinstate", lambda: reg.reinstate(who, card_id)),
        ("end", lambda: reg.end(who, card_id, 4)),
    ]
    before = reg.card(card_id)
    for name, change in changes:
        assert reason_of(change) == expected, name
    after = reg.card(card_id)
    assert after is not None and before is not None
    if expected is None:
        assert after.status == ENDED and after.reason == 4
        assert after.holder_key is not None and after.portrait != before.portrait
        assert (after.valid_from, after.valid_until) == (now, now + YEAR)
    else:
        assert after == before


def test_unknown_card(world: World, reg: IdentityRegistryContract) -> None:
    card_id = rand32()
    for who in (world.callers["school"], world.callers["bureau"]):
        for change in (lambda w=who: reg.bind_key(w, card_id, rand32()),
                       lambda w=who: reg.rotate_key(w, card_id, rand32()),
                       lambda w=who: reg.set_portrait(w, card_id, rand32()),
                       lambda w=who: reg.set_validity(w, card_id, 0, None),
                       lambda w=who: reg.suspend(w, card_id),
                       lambda w=who: reg.revoke(w, card_id)):
            assert reason_of(change) == "unknown-card"
    # membership is checked first
    assert reason_of(lambda: reg.suspend(world.callers["non_member"], card_id)) == "not-member"
    assert reg.card(card_id) is None and reg.holder_key_of(card_id) is None
    assert reg.card_states([card_id]) == [None] and reg.card_words([card_id]) == [0]
    assert not reg.valid_at_block(card_id, world.client.block_number())


# --- status ---------------------------------------------------------------------------------

FINAL = "status-final"


@pytest.mark.parametrize(("history", "new", "expected"), [
    ((), ACTIVE, "bad-transition"), ((), SUSPENDED, None), ((), REVOKED, None), ((), ENDED, None),
    ((), 0, "invalid-status"), ((), 5, "invalid-status"),
    ((SUSPENDED,), ACTIVE, None), ((SUSPENDED,), SUSPENDED, "bad-transition"),
    ((SUSPENDED,), REVOKED, None), ((SUSPENDED,), ENDED, None),
    ((SUSPENDED, ACTIVE), SUSPENDED, None),
    ((REVOKED,), ACTIVE, FINAL), ((REVOKED,), SUSPENDED, FINAL), ((REVOKED,), REVOKED, FINAL),
    ((REVOKED,), ENDED, FINAL), ((REVOKED,), 0, FINAL),
    ((ENDED,), ACTIVE, FINAL), ((ENDED,), SUSPENDED, FINAL), ((ENDED,), REVOKED, FINAL),
    ((ENDED,), ENDED, FINAL),
    ((SUSPENDED, REVOKED), ACTIVE, FINAL), ((SUSPENDED, ENDED), ACTIVE, FINAL),
])
def test_status_transitions(world: World, reg: IdentityRegistryContract, history, new,
                            expected) -> None:
    school = world.callers["school"]
    card_id, _ = issue(reg, school)
    for step in history:
        reg.set_status(school, card_id, step, 7)
    before = reg.card(card_id)
    assert reason_of(lambda: reg.set_status(school, card_id, new, 9)) == expected
    after = reg.card(card_id)
    assert after is not None
    if expected is None:
        assert (after.status, after.reason) == (new, 9)
    else:
        assert after == before
        # the bureau is held to the same rules
        assert reason_of(lambda: reg.set_status(world.callers["bureau"], card_id, new, 9)) == \
            expected


def test_status_event_and_reason(world: World, reg: IdentityRegistryContract) -> None:
    school, bureau = world.callers["school"], world.callers["bureau"]
    card_id, _ = issue(reg, school)
    tx = reg.suspend(bureau, card_id, reason=65535)
    assert reg.events(tx) == [("CardStatusChanged", {
        "cardId": card_id, "memberId": world.ids["bureau"], "oldStatus": 1, "status": 2,
        "reason": 65535})]
    info = reg.card(card_id)
    assert info is not None
    assert (info.status, info.reason, info.changed_block, info.issuer) == (
        SUSPENDED, 65535, tx.block_number, world.ids["school"])
    # the school reinstates what the bureau suspended; the reason is the last change's
    tx = reg.reinstate(school, card_id)
    assert reg.events(tx)[0][1] == {"cardId": card_id, "memberId": world.ids["school"],
                                    "oldStatus": 2, "status": 1, "reason": 0}
    info = reg.card(card_id)
    assert info is not None and (info.status, info.reason) == (ACTIVE, 0)
    with pytest.raises(InvalidInput):
        reg.suspend(school, card_id, reason=65536)


@pytest.mark.parametrize("final", [REVOKED, ENDED])
def test_final_cards_refuse_every_change(world: World, reg: IdentityRegistryContract,
                                         final: CardStatus) -> None:
    school = world.callers["school"]
    card_id, _ = issue(reg, school, portrait=rand32())
    reg.bind_key(school, card_id, rand32())
    reg.set_status(school, card_id, final, 1)
    before = reg.card(card_id)
    for who in (school, world.callers["bureau"]):
        for change in (lambda w=who: reg.bind_key(w, card_id, rand32()),
                       lambda w=who: reg.rotate_key(w, card_id, rand32()),
                       lambda w=who: reg.set_portrait(w, card_id, rand32()),
                       lambda w=who: reg.set_validity(w, card_id, 1, 2),
                       lambda w=who: reg.reinstate(w, card_id)):
            assert reason_of(change) == FINAL
    # rights are checked before the card's state
    assert reason_of(lambda: reg.rotate_key(world.callers["other_school"], card_id, rand32())) \
        == "not-card-issuer"
    assert reg.card(card_id) == before


# --- holder key -----------------------------------------------------------------------------


def test_holder_key_bind_and_rotate(world: World, reg: IdentityRegistryContract) -> None:
    school, bureau = world.callers["school"], world.callers["bureau"]
    card_id, issued = issue(reg, school)
    k1, k2, k3 = rand32(), rand32(), rand32()
    assert reason_of(lambda: reg.rotate_key(school, card_id, k1)) == "key-unbound"
    assert reason_of(lambda: reg.bind_key(school, card_id, ZERO)) == "zero-commitment"
    bound = reg.bind_key(school, card_id, k1)
    assert reg.events(bound) == [("CardKeyBound", {
        "cardId": card_id, "memberId": world.ids["school"], "commitment": k1})]
    assert reason_of(lambda: reg.bind_key(school, card_id, k2)) == "key-bound"
    assert reason_of(lambda: reg.bind_key(bureau, card_id, k2)) == "key-bound"
    assert reason_of(lambda: reg.rotate_key(school, card_id, ZERO)) == "zero-commitment"
    assert reason_of(lambda: reg.rotate_key(school, card_id, k1)) == "same-key"
    rotated = reg.rotate_key(bureau, card_id, k2)
    assert reg.events(rotated) == [("CardKeyRotated", {
        "cardId": card_id, "memberId": world.ids["bureau"], "previous": k1, "commitment": k2})]
    # the key in force at each block: a presentation made with k1 after the rotation fails
    assert reg.holder_key_of(card_id, block=issued.block_number) is None
    assert reg.holder_key_of(card_id, block=bound.block_number) == k1
    assert reg.holder_key_of(card_id, block=rotated.block_number - 1) == k1
    assert reg.holder_key_of(card_id, block=rotated.block_number) == k2
    info = reg.card(card_id)
    assert info is not None and info.holder_key == k2
    assert info.changed_block == rotated.block_number and info.status == ACTIVE
    # a suspended card's key can still be rotated (a lost phone), then the card reinstated
    reg.suspend(school, card_id, 2)
    reg.rotate_key(school, card_id, k3)
    reg.reinstate(school, card_id)
    assert reg.holder_key_of(card_id) == k3
    suspended, _ = issue(reg, school)
    reg.suspend(school, suspended)
    reg.bind_key(school, suspended, k1)  # the same key may be bound to another card
    assert reg.holder_key_of(suspended) == k1
    with pytest.raises(InvalidInput):
        reg.bind_key(school, card_id, b"\x01" * 31)


# --- portrait and validity ------------------------------------------------------------------


def test_portrait(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    card_id, _ = issue(reg, school)
    p1, p2 = rand32(), rand32()
    assert reason_of(lambda: reg.set_portrait(school, card_id, ZERO)) == "zero-commitment"
    tx = reg.set_portrait(school, card_id, p1)
    assert reg.events(tx) == [("CardPortraitChanged", {
        "cardId": card_id, "memberId": world.ids["school"], "previous": ZERO, "portrait": p1})]
    assert reason_of(lambda: reg.set_portrait(school, card_id, p1)) == "same-portrait"
    tx2 = reg.set_portrait(world.callers["bureau"], card_id, p2)
    assert reg.events(tx2)[0][1]["previous"] == p1
    info, old = reg.card(card_id), reg.card(card_id, block=tx2.block_number - 1)
    assert info is not None and old is not None
    assert (info.portrait, old.portrait, info.changed_block) == (p2, p1, tx2.block_number)


def test_validity_window(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    now = head_time(world)
    later, later_tx = issue(reg, school, valid_from=now + YEAR)
    assert not reg.valid_at_block(later, later_tx.block_number)
    expired, expired_tx = issue(reg, school, valid_from=1, valid_until=now - YEAR)
    assert not reg.valid_at_block(expired, expired_tx.block_number)
    current, current_tx = issue(reg, school, valid_from=now - YEAR, valid_until=now + YEAR)
    assert reg.valid_at_block(current, current_tx.block_number)
    info = reg.card(current)
    assert info is not None
    assert info.valid_at(now) and info.valid_at(now - YEAR) and not info.valid_at(now + YEAR)
    assert not info.valid_at(now - YEAR - 1)
    # renewed: the window changes, and reads at the old block still show the old window
    tx = reg.set_validity(school, expired, 1, now + YEAR)
    assert reg.events(tx) == [("CardValidityChanged", {
        "cardId": expired, "memberId": world.ids["school"], "validFrom": 1,
        "validUntil": now + YEAR})]
    assert reg.valid_at_block(expired, tx.block_number)
    assert not reg.valid_at_block(expired, tx.block_number - 1)
    opened = reg.set_validity(school, later, 0, None)
    assert reg.valid_at_block(later, opened.block_number)
    info = reg.card(later)
    assert info is not None and (info.valid_from, info.valid_until) == (0, None)
    for start, end in ((5, 5), (6, 5), (MAX_CARD_TIMESTAMP + 1, 0), (0, MAX_CARD_TIMESTAMP + 1)):
        assert reason_of(lambda s=start, e=end: raw(reg, school, "setValidity", later, s, e)) \
            == "bad-validity"
        with pytest.raises(InvalidInput):
            reg.set_validity(school, later, start, end)
    # a suspended card is not valid, whatever its window
    reg.suspend(school, current)
    assert not reg.valid_at_block(current, world.client.block_number())


# --- continuation: graduation and transfer --------------------------------------------------


def test_graduation_by_the_same_school(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    portrait, key = rand32(), rand32()
    student, _ = issue(reg, school, CardKind.STUDENT, portrait=portrait)
    reg.bind_key(school, student, key)
    graduate = rand32()
    tx = reg.issue(school, graduate, CardKind.GRADUATE, portrait=portrait, predecessor=student)
    assert reg.events(tx) == [
        ("CardStatusChanged", {"cardId": student, "memberId": world.ids["school"],
                               "oldStatus": 1, "status": 4, "reason": 0}),
        ("CardIssued", {"cardId": graduate, "issuer": world.ids["school"],
                        "predecessor": student, "kind": 3, "portrait": portrait,
                        "validFrom": 0, "validUntil": 0}),
    ]
    old, new = reg.card(student), reg.card(graduate)
    assert old is not None and new is not None
    # the student card keeps its history: ended, continued, its key and portrait unchanged
    assert (old.status, old.continued, old.changed_block, old.holder_key, old.portrait) == (
        ENDED, True, tx.block_number, key, portrait)
    assert (new.kind, new.status, new.predecessor, new.continued, new.holder_key) == (
        CardKind.GRADUATE, ACTIVE, student, False, None)
    before = reg.card(student, block=tx.block_number - 1)
    assert before is not None and (before.status, before.continued) == (ACTIVE, False)
    # one line of cards: a card is continued once
    assert reason_of(lambda: reg.issue(school, rand32(), 3, predecessor=student)) == \
        "predecessor-continued"
    assert reason_of(lambda: reg.issue(world.callers["other_school"], rand32(), 3,
                                       predecessor=student)) == "predecessor-continued"
    assert reason_of(lambda: reg.reinstate(school, student)) == FINAL


def test_continuing_a_suspended_card_and_by_the_bureau(world: World,
                                                       reg: IdentityRegistryContract) -> None:
    school, bureau = world.callers["school"], world.callers["bureau"]
    suspended, _ = issue(reg, school)
    reg.suspend(school, suspended, 5)
    successor, tx = issue(reg, school, CardKind.GRADUATE, predecessor=suspended)
    assert reg.events(tx)[0] == ("CardStatusChanged", {
        "cardId": suspended, "memberId": world.ids["school"], "oldStatus": 2, "status": 4,
        "reason": 0})
    info = reg.card(suspended)
    assert info is not None and (info.status, info.continued) == (ENDED, True)
    # the bureau may continue any school's active card
    active, _ = issue(reg, school)
    by_bureau, tx = issue(reg, bureau, CardKind.GRADUATE, predecessor=active)
    assert reg.events(tx)[0][1]["memberId"] == world.ids["bureau"]
    new = reg.card(by_bureau)
    assert new is not None and (new.issuer, new.predecessor) == (world.ids["bureau"], active)


def test_transfer_between_schools(world: World, reg: IdentityRegistryContract) -> None:
    """A teacher moves: the old school ends the card, the new one re-issues and links."""
    school, other = world.callers["school"], world.callers["other_school"]
    first, first_tx = issue(reg, school, CardKind.TEACHER, portrait=rand32())
    reg.bind_key(school, first, rand32())
    second = rand32()
    assert reason_of(lambda: reg.issue(other, second, 2, predecessor=first)) == \
        "predecessor-active"
    reg.suspend(school, first)
    assert reason_of(lambda: reg.issue(other, second, 2, predecessor=first)) == \
        "predecessor-active"
    ended = reg.end(school, first, reason=12)
    tx = reg.issue(other, second, CardKind.TEACHER, predecessor=first)
    assert [name for name, _ in reg.events(tx)] == ["CardIssued"]  # nothing left to end
    old, new = reg.card(first), reg.card(second)
    assert old is not None and new is not None
    assert (old.status, old.reason, old.continued, old.issuer) == (
        ENDED, 12, True, world.ids["school"])
    assert (new.issuer, new.predecessor) == (world.ids["other_school"], first)
    at_end = reg.card(first, block=ended.block_number)
    assert at_end is not None and (at_end.status, at_end.continued) == (ENDED, False)
    # the trace both ways: back through `predecessor`, forward by the indexed topic
    topic = next(t for t, abi in event_abis().items() if abi["name"] == "CardIssued")
    logs = world.client.get_logs(reg.address, first_tx.block_number, "latest",
                                 topics=[topic, None, None, "0x" + first.hex()])
    assert [args["cardId"] for _, args in decode_events(logs)] == [second]
    # a revoked card may be continued by another school too
    revoked, _ = issue(reg, school, CardKind.TEACHER)
    reg.revoke(school, revoked, 1)
    linked, _ = issue(reg, other, CardKind.TEACHER, predecessor=revoked)
    info = reg.card(revoked)
    assert info is not None and (info.status, info.continued) == (REVOKED, True)


def test_predecessor_refusals(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    card_id = rand32()
    assert reason_of(lambda: reg.issue(school, card_id, 3, predecessor=rand32())) == \
        "unknown-predecessor"
    assert reason_of(lambda: reg.issue(school, card_id, 3, predecessor=card_id)) == \
        "unknown-predecessor"
    assert reg.card(card_id) is None
    existing, _ = issue(reg, school)
    # issuance checks come before the link: the predecessor is left untouched
    assert reason_of(lambda: reg.issue(school, existing, 3, predecessor=existing)) == \
        "card-exists"
    assert reason_of(lambda: reg.issue(world.callers["partner"], rand32(), 3,
                                       predecessor=existing)) == "role-not-allowed"
    info = reg.card(existing)
    assert info is not None and (info.status, info.continued) == (ACTIVE, False)


# --- batches and gas ------------------------------------------------------------------------

ISSUE_GAS_PER_CARD_BUDGET = 55_000  # in a batch of 100: two new slots (word, portrait) and a log
GRADUATION_GAS_PER_CARD_BUDGET = 85_000  # ... plus the predecessor slot and its ending


def test_issue_batch_of_100_and_gas(world: World, reg: IdentityRegistryContract,
                                    record_property) -> None:
    school = world.callers["school"]
    now = head_time(world)
    students = [CardSpec(rand32(), CardKind.STUDENT, rand32(), valid_from=now - 1,
                         valid_until=now + 4 * YEAR) for _ in range(MAX_CARD_BATCH)]
    tx = reg.issue_batch(school, students)
    events = reg.events(tx)
    assert [args["cardId"] for _, args in events] == [s.card_id for s in students]
    assert {name for name, _ in events} == {"CardIssued"}
    ids = [s.card_id for s in students]
    states = reg.card_states(ids)
    assert all(s is not None and (s.issuer, s.kind, s.status, s.changed_block) ==
               (world.ids["school"], CardKind.STUDENT, ACTIVE, tx.block_number) for s in states)
    # the whole class graduates in one batch: every student card ends and is continued
    graduates = [CardSpec(rand32(), CardKind.GRADUATE, s.portrait, predecessor=s.card_id,
                          valid_from=now - 1) for s in students]
    grad_tx = reg.issue_batch(school, graduates)
    assert len(reg.events(grad_tx)) == 2 * MAX_CARD_BATCH
    assert all(s is not None and (s.status, s.continued) == (ENDED, True)
               for s in reg.card_states(ids))
    assert all(s is not None and s.status is ACTIVE
               for s in reg.card_states([g.card_id for g in graduates]))
    assert all(s is not None and s.status is ACTIVE
               for s in reg.card_states(ids, block=tx.block_number))
    single = reg.issue(school, rand32(), CardKind.STUDENT, portrait=rand32(),
                       valid_from=now - 1, valid_until=now + 4 * YEAR)
    figures = {"issue_one_card": single.gas_used, "issue_batch_100": tx.gas_used,
               "issue_batch_100_per_card": tx.gas_used // MAX_CARD_BATCH,
               "graduation_batch_100": grad_tx.gas_used,
               "graduation_batch_100_per_card": grad_tx.gas_used // MAX_CARD_BATCH}
    for name, gas in figures.items():
        record_property(name, gas)
        print(f"gas {world.env.name} {name}: {gas}")
    assert tx.gas_used < GAS_LIMIT and grad_tx.gas_used < GAS_LIMIT
    assert tx.gas_used <= ISSUE_GAS_PER_CARD_BUDGET * MAX_CARD_BATCH
    assert grad_tx.gas_used <= GRADUATION_GAS_PER_CARD_BUDGET * MAX_CARD_BATCH


def test_batch_refusals(world: World, reg: IdentityRegistryContract) -> None:
    school = world.callers["school"]
    with pytest.raises(InvalidInput) as err:
        reg.issue_batch(school, [])
    assert err.value.code == "empty_batch"
    assert reason_of(lambda: raw(reg, school, "issueBatch", [])) == "empty-batch"
    too_many = [CardSpec(rand32(), CardKind.STUDENT) for _ in range(MAX_CARD_BATCH + 1)]
    with pytest.raises(InvalidInput) as err:
        reg.issue_batch(school, too_many)
    assert err.value.code == "batch_too_large"
    # The contract's ABI bound refuses it too (while decoding, so with no reason string).
    with pytest.raises(ContractReverted):
        raw(reg, school, "issueBatch", [c.abi() for c in too_many])
    assert reg.card_states([c.card_id for c in too_many]) == [None] * (MAX_CARD_BATCH + 1)
    # all or none: one bad row (a duplicate, a bad kind, an unknown predecessor) refuses all
    taken, _ = issue(reg, school)
    good = [CardSpec(rand32(), CardKind.STUDENT) for _ in range(5)]
    for bad, reason in ((CardSpec(taken, 1), "card-exists"),
                        (CardSpec(good[0].card_id, 1), "card-exists"),
                        (CardSpec(rand32(), 1, predecessor=rand32()), "unknown-predecessor")):
        rows = [c.abi() for c in good] + [bad.abi()]
        assert reason_of(lambda r=rows: raw(reg, school, "issueBatch", r)) == reason
    rows = [c.abi() for c in good]
    rows.insert(2, (rand32(), 9, ZERO, ZERO, 0, 0))
    assert reason_of(lambda: raw(reg, school, "issueBatch", rows)) == "invalid-kind"
    assert reg.card_states([c.card_id for c in good]) == [None] * 5


# --- reads at past blocks ---------------------------------------------------------------------


def test_reads_at_past_blocks(world: World, reg: IdentityRegistryContract) -> None:
    """What a verifier asks later: was the card valid at block N, with which key?"""
    school = world.callers["school"]
    card_id, issued = issue(reg, school)
    k1, k2 = rand32(), rand32()
    steps = {
        "issued": issued,
        "bound": reg.bind_key(school, card_id, k1),
        "suspended": reg.suspend(school, card_id, 7),
        "reinstated": reg.reinstate(school, card_id, 8),
        "rotated": reg.rotate_key(school, card_id, k2),
        "revoked": reg.revoke(school, card_id, 9),
    }
    expect = {  # status, reason, key, valid
        "issued": (ACTIVE, 0, None, True), "bound": (ACTIVE, 0, k1, True),
        "suspended": (SUSPENDED, 7, k1, False), "reinstated": (ACTIVE, 8, k1, True),
        "rotated": (ACTIVE, 8, k2, True), "revoked": (REVOKED, 9, k2, False),
    }
    for name, tx in steps.items():
        info = reg.card(card_id, block=tx.block_number)
        assert info is not None
        assert (info.status, info.reason, info.holder_key, info.changed_block) == (
            *expect[name][:3], tx.block_number), name
        assert reg.valid_at_block(card_id, tx.block_number) is expect[name][3], name
        assert reg.card_states([card_id], block=tx.block_number) == [info.state]
    assert reg.card(card_id, block=issued.block_number - 1) is None


def test_rights_follow_membership_changes(world: World, reg: IdentityRegistryContract) -> None:
    w, bureau = world, world.callers["bureau"]
    mid, school = w.new_member(Role.SCHOOL)
    second = w.env.new_account()
    w.consortium.add_account(school, second)
    card_id, _ = issue(reg, second)  # any current account of the member acts for it
    reg.bind_key(school, card_id, rand32())
    w.govern(ProposalAction.SUSPEND, mid)
    for acct in (school, second):
        assert reason_of(lambda a=acct: reg.issue(a, rand32(), 1)) == "member-not-active"
        assert reason_of(lambda a=acct: reg.suspend(a, card_id)) == "member-not-active"
    reg.suspend(bureau, card_id, 1)  # the bureau still acts on a suspended school's cards
    w.govern(ProposalAction.REINSTATE, mid)
    reg.reinstate(school, card_id)
    w.govern(ProposalAction.CHANGE_ROLE, mid, Role.PARTNER)
    assert reason_of(lambda: reg.issue(school, rand32(), 1)) == "role-not-allowed"
    reg.rotate_key(school, card_id, rand32())  # it still manages the cards it issued
    w.consortium.retire_account(school, second)
    assert reason_of(lambda: reg.suspend(second, card_id)) == "account-retired"
    w.govern(ProposalAction.REMOVE, mid)
    assert reason_of(lambda: reg.suspend(school, card_id)) == "member-not-active"
    reg.revoke(bureau, card_id, 2)
    info = reg.card(card_id)
    assert info is not None and (info.issuer, info.status) == (mid, REVOKED)


# --- events for the indexer --------------------------------------------------------------------


def test_event_abis_and_raw_log_decoding(world: World, reg: IdentityRegistryContract) -> None:
    abis = {abi["name"]: (topic, abi) for topic, abi in event_abis().items()}
    assert CARD_EVENTS <= set(abis)
    for name in CARD_EVENTS:
        topic, abi = abis[name]
        assert topic == "0x" + keccak(
            text=f"{name}({','.join(i['type'] for i in abi['inputs'])})").hex()
    school = world.callers["school"]
    card_id, issued = issue(reg, school, portrait=rand32())
    changes = [reg.bind_key(school, card_id, rand32()), reg.rotate_key(school, card_id, rand32()),
               reg.set_portrait(school, card_id, rand32()), reg.set_validity(school, card_id, 1, 2),
               reg.suspend(school, card_id, 3)]
    expected = [event for tx in (issued, *changes) for event in reg.events(tx)]
    assert [name for name, _ in expected] == ["CardIssued", "CardKeyBound", "CardKeyRotated",
                                              "CardPortraitChanged", "CardValidityChanged",
                                              "CardStatusChanged"]
    # the same logs as a JSON-RPC node returns them from eth_getLogs (hex strings)
    logs = world.client.w3.provider.make_request("eth_getLogs", [{
        "fromBlock": hex(issued.block_number), "toBlock": hex(changes[-1].block_number),
        "address": reg.address}])["result"]
    assert isinstance(logs[0]["topics"][0], str)
    assert [e for e in decode_events(logs) if e[1]["cardId"] == card_id] == expected
    assert decode_events(issued.logs, address=world.consortium.address) == []


def test_packed_words_match_the_contract(world: World, reg: IdentityRegistryContract) -> None:
    """The binding's decoding of `cardWords` agrees with the contract's own `card` view."""
    school, now = world.callers["school"], head_time(world)
    plain, _ = issue(reg, school)
    windowed, _ = issue(reg, school, CardKind.TEACHER, valid_from=now, valid_until=now + YEAR)
    reasoned, _ = issue(reg, school)
    reg.suspend(school, reasoned, 40_000)
    continued, _ = issue(reg, school)
    issue(reg, school, CardKind.GRADUATE, predecessor=continued)
    ids = [plain, windowed, reasoned, continued, rand32()]
    states = reg.card_states(ids)
    for card_id, state in zip(ids, states, strict=True):
        info = reg.card(card_id)
        assert state == (info.state if info is not None else None)
    words = reg.card_words(ids)
    assert [CardState.unpack(w) for w in words] == states
    assert [s.pack() if s else 0 for s in states] == words


# --- the packed word, in Python alone --------------------------------------------------------

card_states = st.builds(
    CardState, issuer=st.integers(1, 2**64 - 1), kind=st.sampled_from(CardKind),
    status=st.sampled_from(CardStatus), reason=st.integers(0, 2**16 - 1),
    valid_from=st.integers(0, MAX_CARD_TIMESTAMP),
    valid_until=st.none() | st.integers(1, MAX_CARD_TIMESTAMP),
    changed_block=st.integers(0, 2**56 - 1), continued=st.booleans())


@given(card_states)
def test_card_word_round_trip(state: CardState) -> None:
    assume(state.valid_until is None or state.valid_until > state.valid_from)
    word = state.pack()
    assert 0 < word < 2**256
    assert CardState.unpack(word) == state


@given(issuer=st.integers(1, 2**64 - 1), kind=st.integers(1, 3), status=st.integers(1, 4),
       reason=st.integers(0, 2**16 - 1), start=st.integers(0, 2**48 - 1),
       end=st.integers(0, 2**48 - 1), block=st.integers(0, 2**56 - 1), flag=st.booleans())
def test_card_word_layout(issuer, kind, status, reason, start, end, block, flag) -> None:
    """The bit layout of the contract's docstring, restated here independently."""
    assume(end == 0 or end > start)
    word = (issuer | kind << 64 | status << 72 | reason << 80 | start << 96 | end << 144
            | block << 192 | int(flag) << 248)
    state = CardState.unpack(word)
    assert state == CardState(issuer, CardKind(kind), CardStatus(status), reason, start,
                              end or None, block, flag)
    assert state.pack() == word


def test_card_state_and_spec_checks() -> None:
    assert CardState.unpack(0) is None
    base = CardState(1, CardKind.STUDENT, ACTIVE, 0, 10, 20, 5, False)
    assert base.valid_at(10) and base.valid_at(19) and not base.valid_at(20)
    assert not base.valid_at(9)
    for status in (SUSPENDED, REVOKED, ENDED):
        changed = CardState(1, CardKind.STUDENT, status, 0, 10, 20, 5, False)
        assert changed.in_window(15) and not changed.valid_at(15)
        assert changed.is_final is (status in (REVOKED, ENDED))
    for bad in (dict(reason=2**16), dict(valid_until=10), dict(changed_block=2**56),
                dict(issuer=2**64), dict(valid_from=-1)):
        fields = {**base.__dict__, **bad}
        with pytest.raises(InvalidInput):
            CardState(**fields).pack()
    assert CardSpec(b"\x01" * 32, CardKind.TEACHER, "0x" + "02" * 32).abi() == (
        b"\x01" * 32, 2, b"\x02" * 32, ZERO, 0, 0)
    for spec in (CardSpec(ZERO, 1), CardSpec(b"\x01" * 32, 0), CardSpec("0xzz", 1),
                 CardSpec(b"\x01" * 32, 1, valid_from=3, valid_until=2)):
        with pytest.raises(InvalidInput):
            spec.abi()
