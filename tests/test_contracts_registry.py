"""AnchorRegistry.vy through its bindings: anchoring rules, leaf status, proofs, gas.

Every test runs on every chain backend (`module_chain`), on one world per backend and
module; each test anchors roots of its own.
"""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_utils import keccak

from ledger.contracts import (
    KIND_ROLES,
    AnchorKind,
    AnchorRegistryContract,
    LeafStatus,
    ProposalAction,
    Role,
    decode_events,
    event_abis,
)
from ledger.errors import ContractReverted, InvalidInput
from ledger.merkle import MerkleTree, verify_proof
from tests.chain_env import ChainEnv
from tests.test_contracts_consortium import CALLERS, World, build_world, reason_of

ZERO = b"\x00" * 32

# The spec's table, restated here independently of the bindings' KIND_ROLES.
SPEC_KIND_ROLES: dict[int, set[str]] = {
    1: {"school", "partner"},  # credential
    2: {"school"},  # learning record
    3: {"school"},  # evaluation data
    4: {"school", "partner"},  # resource
    5: {"auditor"},  # audit report
    6: {"bureau", "school", "partner", "auditor"},  # access-log checkpoint
    7: {"bureau", "school", "partner"},  # signature
}
CALLER_ROLE = {"bureau": "bureau", "school": "school", "other_school": "school",
               "partner": "partner", "auditor": "auditor"}


def rand32() -> bytes:
    return os.urandom(32)


def tree_of(n: int) -> MerkleTree:
    return MerkleTree([rand32() for _ in range(n)])


@pytest.fixture(scope="module")
def world(module_chain: ChainEnv) -> World:
    """One world per backend and module (see test_contracts_consortium)."""
    return build_world(module_chain)


def caller_rule(caller: str) -> str | None:
    if caller in ("suspended", "removed"):
        return "member-not-active"
    if caller == "retired_account":
        return "account-retired"
    if caller in ("non_member", "governor"):
        return "not-member"
    return None


# --- anchor: kind x role ----------------------------------------------------------------


def test_bindings_table_matches_spec() -> None:
    assert {int(k): {r.name.lower() for r in roles} for k, roles in KIND_ROLES.items()} == \
        SPEC_KIND_ROLES


@pytest.mark.parametrize("kind", sorted(SPEC_KIND_ROLES))
@pytest.mark.parametrize("caller", CALLERS)
def test_anchor_by_kind_and_role(world: World, caller: str, kind: int) -> None:
    reg, who = world.registry, world.callers[caller]
    root, meta = rand32(), rand32()
    expected = caller_rule(caller)
    if expected is None and CALLER_ROLE[caller] not in SPEC_KIND_ROLES[kind]:
        expected = "role-not-allowed"
    got = reason_of(lambda: reg.anchor(who, root, kind, 25, meta))
    assert got == expected
    info = reg.root_info(root)
    if got is None:
        assert (info.member_id, info.kind, info.count) == (world.ids[caller], kind, 25)
        assert reg.is_anchored(root)
    else:
        assert not info.anchored and not reg.is_anchored(root)


def test_anchor_event_and_root_info(world: World) -> None:
    reg, school = world.registry, world.callers["school"]
    root, meta = rand32(), rand32()
    tx = reg.anchor(school, root, AnchorKind.LEARNING_RECORD, 3000, meta)
    assert reg.events(tx) == [("Anchored", {
        "root": root, "memberId": world.ids["school"], "kind": 2, "count": 3000,
        "metadataHash": meta, "anchoredBy": school.address})]
    info = reg.root_info(root)
    assert (info.root, info.member_id, info.kind, info.count, info.block_number) == (
        root, world.ids["school"], AnchorKind.LEARNING_RECORD, 3000, tx.block_number)
    assert reg.root_info(root, block=tx.block_number - 1).anchored is False
    unknown = reg.root_info(rand32())
    assert (unknown.member_id, unknown.kind, unknown.count, unknown.block_number) == (
        0, None, 0, 0)
    assert reg.consortium_address() == world.consortium.address


def test_anchor_rejects(world: World) -> None:
    reg, school, partner = world.registry, world.callers["school"], world.callers["partner"]
    root = rand32()
    assert reason_of(lambda: reg.anchor(school, ZERO, 1, 1)) == "zero-root"
    assert reason_of(lambda: reg.anchor(school, root, 1, 0)) == "zero-count"
    assert reason_of(lambda: reg.anchor(school, root, 0, 1)) == "invalid-kind"
    assert reason_of(lambda: reg.anchor(school, root, 8, 1)) == "invalid-kind"
    assert reason_of(lambda: reg.anchor(school, root, 255, 1)) == "invalid-kind"
    reg.anchor(school, root, 1, 1)
    # a root is anchored once, by anyone, of any kind
    assert reason_of(lambda: reg.anchor(school, root, 1, 1)) == "root-exists"
    assert reason_of(lambda: reg.anchor(partner, root, 4, 9)) == "root-exists"
    assert reason_of(lambda: reg.anchor(world.callers["other_school"], root, 2, 1)) == \
        "root-exists"
    assert reg.root_info(root).member_id == world.ids["school"]
    with pytest.raises(InvalidInput):
        reg.anchor(school, rand32(), 1, 2**32)
    with pytest.raises(InvalidInput):
        reg.anchor(school, b"short", 1, 1)


def test_anchor_max_count(world: World) -> None:
    root = rand32()
    world.registry.anchor(world.callers["school"], root, 1, 2**32 - 1)
    assert world.registry.root_info(root).count == 2**32 - 1


def test_registry_requires_a_contract(module_chain: ChainEnv) -> None:
    with pytest.raises(ContractReverted) as err:
        AnchorRegistryContract.deploy(module_chain.client, module_chain.funder,
                                      Account.create().address)
    assert err.value.reason == "not-a-contract"


def test_rights_follow_membership_changes(world: World) -> None:
    w = world
    reg, c = w.registry, w.consortium
    mid, school = w.new_member(Role.SCHOOL)
    second = w.env.new_account()
    c.add_account(school, second)
    reg.anchor(second, rand32(), AnchorKind.EVALUATION_DATA, 1)
    w.govern(ProposalAction.SUSPEND, mid)
    for acct in (school, second):
        assert reason_of(lambda a=acct: reg.anchor(a, rand32(), 1, 1)) == "member-not-active"
    w.govern(ProposalAction.REINSTATE, mid)
    reg.anchor(school, rand32(), 1, 1)
    w.govern(ProposalAction.CHANGE_ROLE, mid, Role.PARTNER)
    assert reason_of(lambda: reg.anchor(second, rand32(), AnchorKind.LEARNING_RECORD, 1)) == \
        "role-not-allowed"
    reg.anchor(second, rand32(), AnchorKind.RESOURCE, 1)
    c.retire_account(school, second)
    assert reason_of(lambda: reg.anchor(second, rand32(), 1, 1)) == "account-retired"
    w.govern(ProposalAction.REMOVE, mid)
    assert reason_of(lambda: reg.anchor(school, rand32(), 1, 1)) == "member-not-active"


# --- setStatus: who may -------------------------------------------------------------------


def set_status_rule(caller: str) -> str | None:
    rule = caller_rule(caller)
    if rule is not None:
        return rule
    return None if caller in ("school", "bureau") else "not-root-owner"


@pytest.mark.parametrize("caller", CALLERS)
def test_set_status_by_role(world: World, caller: str) -> None:
    """On a root anchored by the school: the school itself and the bureau may."""
    reg, who = world.registry, world.callers[caller]
    tree = tree_of(5)
    reg.anchor(world.callers["school"], tree.root, AnchorKind.CREDENTIAL, 5)
    leaf, proof = tree.leaves[2], tree.proof(2)
    got = reason_of(lambda: reg.suspend(who, leaf, tree.root, proof, reason=11))
    assert got == set_status_rule(caller)
    st = reg.status_of(leaf, tree.root)
    if got is None:
        assert (st.status, st.reason) == (LeafStatus.SUSPENDED, 11)
        assert reg.status_changed_by(leaf, tree.root) == world.ids[caller]
    else:
        assert st.status == LeafStatus.VALID and st.block_number == 0


@pytest.mark.parametrize("caller", CALLERS)
def test_set_status_on_partner_root_by_role(world: World, caller: str) -> None:
    reg, who = world.registry, world.callers[caller]
    tree = tree_of(2)
    reg.anchor(world.callers["partner"], tree.root, AnchorKind.RESOURCE, 2)
    got = reason_of(lambda: reg.revoke(who, tree.leaves[0], tree.root, tree.proof(0), 1))
    rule = caller_rule(caller)
    expected = rule if rule else (None if caller in ("partner", "bureau") else "not-root-owner")
    assert got == expected


def test_set_status_event_and_view(world: World) -> None:
    reg, school = world.registry, world.callers["school"]
    tree = tree_of(9)
    reg.anchor(school, tree.root, AnchorKind.CREDENTIAL, 9)
    new_leaf = rand32()
    tx = reg.supersede(school, tree.leaves[8], tree.root, tree.proof(8), new_leaf, reason=3)
    assert reg.events(tx) == [("StatusChanged", {
        "leaf": tree.leaves[8], "root": tree.root, "memberId": world.ids["school"],
        "status": 4, "reason": 3, "supersededBy": new_leaf, "changedBy": school.address})]
    st = reg.status_of(tree.leaves[8], tree.root)
    assert (st.status, st.reason, st.block_number, st.superseded_by) == (
        LeafStatus.SUPERSEDED, 3, tx.block_number, new_leaf)
    assert st.is_final and not st.is_valid
    untouched = reg.status_of(tree.leaves[0], tree.root)
    assert untouched.is_valid and untouched.superseded_by is None


def test_bureau_acts_on_any_root(world: World) -> None:
    reg = world.registry
    tree = tree_of(4)
    reg.anchor(world.callers["school"], tree.root, AnchorKind.CREDENTIAL, 4)
    reg.suspend(world.callers["bureau"], tree.leaves[1], tree.root, tree.proof(1), 5)
    # the school reinstates what the bureau suspended
    reg.reinstate(world.callers["school"], tree.leaves[1], tree.root, tree.proof(1))
    assert reg.status_of(tree.leaves[1], tree.root).status == LeafStatus.REINSTATED
    assert reg.status_changed_by(tree.leaves[1], tree.root) == world.ids["school"]
    # another school may not, even with a valid proof
    assert reason_of(lambda: reg.revoke(world.callers["other_school"], tree.leaves[1],
                                        tree.root, tree.proof(1))) == "not-root-owner"


def test_status_is_scoped_to_the_root(world: World) -> None:
    """Another member anchoring a root over somebody else's leaf cannot touch its status."""
    reg = world.registry
    mine = tree_of(3)
    reg.anchor(world.callers["school"], mine.root, AnchorKind.CREDENTIAL, 3)
    stolen = mine.leaves[0]
    theirs = MerkleTree([stolen, rand32()])
    other = world.callers["other_school"]
    reg.anchor(other, theirs.root, AnchorKind.CREDENTIAL, 2)
    reg.revoke(other, stolen, theirs.root, theirs.proof(0))
    assert reg.status_of(stolen, theirs.root).status == LeafStatus.REVOKED
    assert reg.status_of(stolen, mine.root).status == LeafStatus.VALID
    # and its own root's proof does not help it act on the school's root
    assert reason_of(lambda: reg.revoke(other, stolen, mine.root, mine.proof(0))) == \
        "not-root-owner"
    reg.suspend(world.callers["school"], stolen, mine.root, mine.proof(0))


# --- setStatus: inputs and proofs ---------------------------------------------------------


@pytest.fixture
def anchored(world: World):
    tree = tree_of(6)
    world.registry.anchor(world.callers["school"], tree.root, AnchorKind.CREDENTIAL, 6)
    return tree


def test_set_status_rejects_inputs(world: World, anchored: MerkleTree) -> None:
    reg, school, t = world.registry, world.callers["school"], anchored
    leaf, proof = t.leaves[0], t.proof(0)

    def attempt(status, superseded=None, root=t.root, leaf=leaf, proof=proof):
        return reason_of(lambda: reg.set_status(school, leaf, root, proof, status, 0,
                                                superseded))

    assert attempt(1, root=rand32()) == "unknown-root"
    assert attempt(0) == "invalid-status"
    assert attempt(5) == "invalid-status"
    assert attempt(LeafStatus.SUPERSEDED) == "missing-superseded-by"
    assert attempt(LeafStatus.SUPERSEDED, superseded=leaf) == "self-supersede"
    for status in (LeafStatus.REVOKED, LeafStatus.SUSPENDED, LeafStatus.REINSTATED):
        assert attempt(status, superseded=rand32()) == "unexpected-superseded-by"
    assert reg.status_of(leaf, t.root).status == LeafStatus.VALID


def test_bad_proofs(world: World, anchored: MerkleTree) -> None:
    reg, school, t = world.registry, world.callers["school"], anchored
    other = tree_of(6)
    reg.anchor(school, other.root, AnchorKind.CREDENTIAL, 6)

    def attempt(leaf, root, proof):
        return reason_of(lambda: reg.revoke(school, leaf, root, proof))

    assert attempt(rand32(), t.root, t.proof(0)) == "bad-proof"  # not a leaf
    assert attempt(t.leaves[0], t.root, t.proof(1)) == "bad-proof"  # another leaf's path
    assert attempt(t.leaves[0], t.root, t.proof(0)[:-1]) == "bad-proof"  # truncated
    assert attempt(t.leaves[0], t.root, [*t.proof(0), rand32()]) == "bad-proof"  # too long
    assert attempt(t.leaves[0], t.root, []) == "bad-proof"
    tampered = list(t.proof(0))
    tampered[1] = rand32()
    assert attempt(t.leaves[0], t.root, tampered) == "bad-proof"
    # a valid proof for a different (also anchored, same owner) root
    assert attempt(other.leaves[0], t.root, other.proof(0)) == "bad-proof"
    assert attempt(t.leaves[0], other.root, t.proof(0)) == "bad-proof"
    # an inner node is never accepted as a leaf (domain separation)
    level1 = keccak(b"\x01" + min(keccak(b"\x00" + t.leaves[0]), keccak(b"\x00" + t.leaves[1]))
                    + max(keccak(b"\x00" + t.leaves[0]), keccak(b"\x00" + t.leaves[1])))
    assert attempt(level1, t.root, t.proof(0)[1:]) == "bad-proof"
    # and the right one works
    reg.revoke(school, t.leaves[0], t.root, t.proof(0))


def test_proof_length_limit(world: World, anchored: MerkleTree) -> None:
    with pytest.raises(InvalidInput):
        world.registry.revoke(world.callers["school"], anchored.leaves[0], anchored.root,
                              [rand32()] * 33)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 1000])
def test_every_python_proof_verifies_on_chain(world: World, size: int) -> None:
    """ledger.merkle and the contract agree (checked by eth_call, nothing mined)."""
    reg, school = world.registry, world.callers["school"]
    tree = tree_of(size)
    reg.anchor(school, tree.root, AnchorKind.CREDENTIAL, size)
    fn = reg.contract.functions.setStatus
    indices = range(size) if size <= 64 else [0, 1, 2, 499, 500, 997, 998, 999]
    for i in indices:
        leaf, proof = tree.leaves[i], tree.proof(i)
        assert verify_proof(leaf, proof, tree.root)
        fn(leaf, tree.root, proof, 1, 0, ZERO).call({"from": school.address})
    with pytest.raises(Exception, match="bad-proof"):
        fn(rand32(), tree.root, tree.proof(0), 1, 0, ZERO).call({"from": school.address})


# --- status transitions -------------------------------------------------------------------

REV, SUS, REI, SUP = (LeafStatus.REVOKED, LeafStatus.SUSPENDED, LeafStatus.REINSTATED,
                      LeafStatus.SUPERSEDED)
FINAL = "status-final"


@pytest.mark.parametrize(("history", "new", "expected"), [
    ((), REV, None), ((), SUS, None), ((), REI, "bad-transition"), ((), SUP, None),
    ((SUS,), REV, None), ((SUS,), SUS, "bad-transition"), ((SUS,), REI, None),
    ((SUS,), SUP, None),
    ((SUS, REI), REV, None), ((SUS, REI), SUS, None), ((SUS, REI), REI, "bad-transition"),
    ((SUS, REI), SUP, None),
    ((SUS, REI, SUS), REI, None),
    ((REV,), REV, FINAL), ((REV,), SUS, FINAL), ((REV,), REI, FINAL), ((REV,), SUP, None),
    ((REV, SUP), REV, FINAL), ((REV, SUP), SUP, FINAL),
    ((SUP,), REV, FINAL), ((SUP,), SUS, FINAL), ((SUP,), REI, FINAL), ((SUP,), SUP, FINAL),
    ((SUS, REV), REI, FINAL), ((SUS, SUP), REI, FINAL),
])
def test_status_transitions(world: World, history, new, expected) -> None:
    reg, school = world.registry, world.callers["school"]
    tree = tree_of(3)
    reg.anchor(school, tree.root, AnchorKind.CREDENTIAL, 3)
    leaf, proof = tree.leaves[1], tree.proof(1)

    def change(status, actor=school):
        sup = rand32() if status == SUP else None
        return reg.set_status(actor, leaf, tree.root, proof, status, 7, sup)

    for step in history:
        change(step)
    before = reg.status_of(leaf, tree.root)
    assert reason_of(lambda: change(new)) == expected
    after = reg.status_of(leaf, tree.root)
    if expected is None:
        assert after.status == new
    else:
        assert after == before
        # the bureau is held to the same rules
        assert reason_of(lambda: change(new, world.callers["bureau"])) == expected


# --- events for the indexer ----------------------------------------------------------------


def test_event_abis_and_raw_log_decoding(world: World) -> None:
    abis = event_abis()
    assert {a["name"] for a in abis.values()} == {
        "ProposalCreated", "ProposalApproved", "ProposalExecuted", "MemberAdmitted",
        "MemberStatusChanged", "MemberRoleChanged", "AccountAdded", "AccountRetired",
        "SigningKeyAdded", "SigningKeyRetired", "Anchored", "StatusChanged",
        # IdentityRegistry's (tests/test_contracts_identity.py)
        "CardIssued", "CardStatusChanged", "CardKeyBound", "CardKeyRotated",
        "CardPortraitChanged", "CardValidityChanged"}
    for topic, abi in abis.items():
        sig = f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"
        assert topic == "0x" + keccak(text=sig).hex()
    root, meta = rand32(), rand32()
    school = world.callers["school"]
    tx = world.registry.anchor(school, root, AnchorKind.CREDENTIAL, 4, meta)
    # the same logs as a JSON-RPC node returns them from eth_getLogs (hex strings)
    raw = world.client.w3.provider.make_request(
        "eth_getLogs", [{"fromBlock": hex(tx.block_number), "toBlock": hex(tx.block_number),
                         "address": world.registry.address}])["result"]
    assert isinstance(raw[0]["topics"][0], str)
    expected = ("Anchored", {"root": root, "memberId": world.ids["school"], "kind": 1,
                             "count": 4, "metadataHash": meta, "anchoredBy": school.address})
    assert decode_events(raw) == [expected]
    assert decode_events(tx.logs, address=world.registry.address) == [expected]
    assert decode_events(tx.logs, address=world.consortium.address) == []
    foreign = {"address": world.registry.address, "topics": ["0x" + "11" * 32], "data": "0x"}
    assert decode_events([foreign]) == []


# --- gas -------------------------------------------------------------------------------------

ANCHOR_GAS_BUDGET = 60_000


def test_gas_budget(world: World, record_property) -> None:
    """Anchor stays within the spec's budget for any batch size; figures are recorded."""
    reg, school = world.registry, world.callers["school"]
    figures: dict[str, int] = {}
    for count in (1, 100, 10_000):
        tx = reg.anchor(school, rand32(), AnchorKind.CREDENTIAL, count, rand32())
        figures[f"anchor_count_{count}"] = tx.gas_used
        assert tx.gas_used <= ANCHOR_GAS_BUDGET, (count, tx.gas_used)
    single = MerkleTree([rand32()])
    reg.anchor(school, single.root, AnchorKind.CREDENTIAL, 1)
    assert single.proof(0) == []
    figures["set_status_proof_0"] = reg.revoke(school, single.leaves[0], single.root, []).gas_used
    big = MerkleTree([rand32() for _ in range(10_000)])
    reg.anchor(school, big.root, AnchorKind.CREDENTIAL, 10_000)
    proof = big.proof(1234)
    assert len(proof) == 14
    figures["set_status_proof_14"] = reg.revoke(school, big.leaves[1234], big.root,
                                                proof).gas_used
    for name, gas in figures.items():
        record_property(name, gas)
        print(f"gas {name}: {gas}")
