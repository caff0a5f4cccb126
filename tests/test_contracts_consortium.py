"""Consortium.vy through its bindings: governance, members, accounts, signing keys.

Every test runs on every chain backend (`module_chain`: embedded in memory, on disk,
through /rpc, anvil). The role matrix runs on one world per backend and module (deployed
once; every case uses fresh accounts, keys and proposals so the cases do not depend on
each other's order). Flows that need a clean state deploy a consortium of their own
(`fresh`) on the module's chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.contracts import (
    AnchorRegistryContract,
    ConsortiumContract,
    MemberStatus,
    ProposalAction,
    Role,
    decode_events,
)
from ledger.errors import ContractReverted
from tests.chain_env import ChainEnv

# --- a world with one member of every kind ------------------------------------------

CALLERS = [
    "bureau",  # active bureau member, also a governor
    "school",
    "other_school",
    "partner",
    "auditor",
    "suspended",  # a suspended school
    "removed",  # a removed school
    "non_member",
    "retired_account",  # a retired account of the active school
    "governor",  # a governor that is not a member
]
MEMBER_ROLES = {"bureau": Role.BUREAU, "school": Role.SCHOOL, "other_school": Role.SCHOOL,
                "partner": Role.PARTNER, "auditor": Role.AUDITOR,
                "suspended": Role.SCHOOL, "removed": Role.SCHOOL}


def new_key() -> bytes:
    return os.urandom(32)


@dataclass
class World:
    env: ChainEnv
    consortium: ConsortiumContract
    registry: AnchorRegistryContract
    governors: list[LocalAccount]  # [bureau, g2, g3]; threshold 2
    callers: dict[str, LocalAccount] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)  # one key per member, added early

    @property
    def client(self):
        return self.env.client

    def admit(self, name: str, role: Role, account: LocalAccount | str) -> int:
        """Admit through governance (bureau proposes, g2 approves); the new member id."""
        pid = self.consortium.propose_admit(self.governors[0], name, role, account)
        outcome = self.consortium.approve(self.governors[1], pid)
        assert outcome.executed
        assert outcome.member_id is not None
        return outcome.member_id

    def govern(self, action: ProposalAction, member_id: int, role: Role | int = 0) -> None:
        out = self.consortium.propose(self.governors[0], action, member_id=member_id,
                                      role=role)
        assert self.consortium.approve(self.governors[1], out.proposal_id).executed

    def new_member(self, role: Role, name: str | None = None) -> tuple[int, LocalAccount]:
        account = self.env.new_account()
        return self.admit(name or f"{role.name.title()} {account.address[2:8]}", role,
                          account), account


def build_world(env: ChainEnv) -> World:
    bureau, g2, g3 = env.new_account(), env.new_account(), env.new_account()
    consortium = ConsortiumContract.deploy(env.client, env.funder, "District Education Bureau",
                                           [bureau, g2, g3], 2, bureau_account=bureau)
    registry = AnchorRegistryContract.deploy(env.client, env.funder, consortium)
    w = World(env, consortium, registry, [bureau, g2, g3])
    w.callers["bureau"], w.ids["bureau"] = bureau, 1
    for kind in ("school", "other_school", "partner", "auditor", "suspended", "removed"):
        w.ids[kind], w.callers[kind] = w.new_member(MEMBER_ROLES[kind], f"{kind} org")
    for kind in ("bureau", "school", "other_school", "partner", "auditor", "suspended",
                 "removed"):
        w.keys[kind] = new_key()
        consortium.add_signing_key(w.callers[kind], w.keys[kind])
    retired = env.new_account()
    consortium.add_account(w.callers["school"], retired)
    consortium.retire_account(w.callers["school"], retired)
    w.callers["retired_account"] = retired
    w.callers["non_member"] = env.new_account()
    w.callers["governor"] = g2
    w.govern(ProposalAction.SUSPEND, w.ids["suspended"])
    w.govern(ProposalAction.REMOVE, w.ids["removed"])
    return w


@pytest.fixture(scope="module")
def world(module_chain: ChainEnv) -> World:
    """One world per backend and module."""
    return build_world(module_chain)


def reason_of(fn: Callable[[], object]) -> str | None:
    """None if the call went through, else the contract's revert reason."""
    try:
        fn()
    except ContractReverted as exc:
        return exc.reason
    return None


@dataclass
class Fresh:
    """A small clean consortium: bureau (governor 1) + governors g2, g3, threshold 2."""

    env: ChainEnv
    c: ConsortiumContract
    bureau: LocalAccount
    g2: LocalAccount
    g3: LocalAccount

    def admit(self, role: Role = Role.SCHOOL, name: str = "A School"
              ) -> tuple[int, LocalAccount]:
        account = self.env.new_account()
        pid = self.c.propose_admit(self.bureau, name, role, account)
        out = self.c.approve(self.g2, pid)
        assert out.executed and out.member_id is not None
        return out.member_id, account

    def govern(self, action: ProposalAction, member_id: int, role: Role | int = 0):
        out = self.c.propose(self.bureau, action, member_id=member_id, role=role)
        return self.c.approve(self.g2, out.proposal_id)


@pytest.fixture
def fresh(module_chain: ChainEnv) -> Fresh:
    bureau, g2, g3 = (module_chain.new_account() for _ in range(3))
    c = ConsortiumContract.deploy(module_chain.client, module_chain.funder, "Bureau",
                                  [bureau, g2, g3], 2, bureau_account=bureau)
    return Fresh(module_chain, c, bureau, g2, g3)


# --- role x function matrix ----------------------------------------------------------

GOVERNORS = {"bureau", "governor"}
ACTIVE_MEMBERS = {"bureau", "school", "other_school", "partner", "auditor"}


def member_rule(caller: str) -> str | None:
    """Expected outcome of a function open to any active member's current account."""
    if caller in ACTIVE_MEMBERS:
        return None
    if caller in ("suspended", "removed"):
        return "member-not-active"
    if caller == "retired_account":
        return "account-retired"
    return "not-member"


@pytest.mark.parametrize("caller", CALLERS)
def test_propose_by_role(world: World, caller: str) -> None:
    c, who = world.consortium, world.callers[caller]
    target = Account.create().address
    before = c.proposal_count()
    got = reason_of(lambda: c.propose_admit(who, "New Org", Role.PARTNER, target))
    assert got == (None if caller in GOVERNORS else "not-governor")
    if got is None:
        p = c.proposal(before + 1)
        assert (p.action, p.account, p.approvals, p.executed) == (
            ProposalAction.ADMIT, target, 1, False)
        assert c.has_approved(before + 1, who)
    # every action is governed by the same rule
    got = reason_of(lambda: c.propose_suspend(who, world.ids["school"]))
    assert got == (None if caller in GOVERNORS else "not-governor")


@pytest.mark.parametrize("caller", CALLERS)
def test_approve_by_role(world: World, caller: str) -> None:
    c, who = world.consortium, world.callers[caller]
    proposer = world.governors[2]  # g3; neither "bureau" nor "governor" (g2)
    target = Account.create().address
    pid = c.propose_admit(proposer, "Approved Org", Role.PARTNER, target)
    got = reason_of(lambda: c.approve(who, pid))
    assert got == (None if caller in GOVERNORS else "not-governor")
    if got is None:
        member_id = c.member_of(target)
        assert member_id > 0 and c.proposal(pid).executed
        assert c.proposal(pid).member_id == member_id
    else:
        assert c.member_of(target) == 0 and not c.proposal(pid).executed


@pytest.mark.parametrize("caller", CALLERS)
def test_add_account_by_role(world: World, caller: str) -> None:
    c, who = world.consortium, world.callers[caller]
    new = Account.create().address
    got = reason_of(lambda: c.add_account(who, new))
    assert got == member_rule(caller)
    if got is None:
        assert c.member_of(new) == world.ids[caller]
        assert c.is_active(new) and c.is_current_account(new)
        assert c.anchor_rights(new) == c.anchor_rights(who)
        assert new in c.member(world.ids[caller]).accounts
    else:
        assert c.member_of(new) == 0


@pytest.mark.parametrize("caller", CALLERS)
def test_retire_account_by_role(world: World, caller: str) -> None:
    c, who = world.consortium, world.callers[caller]
    if caller in ACTIVE_MEMBERS:
        spare = Account.create().address
        c.add_account(who, spare)
    else:
        # some account of the caller's member if it has one, else the school's
        spare = world.callers["school"].address
    got = reason_of(lambda: c.retire_account(who, spare))
    assert got == member_rule(caller)
    if got is None:
        assert c.member_of(spare) == world.ids[caller]  # stays bound forever
        assert not c.is_current_account(spare) and not c.is_active(spare)
        assert spare not in c.member(world.ids[caller]).accounts


@pytest.mark.parametrize("caller", CALLERS)
def test_add_signing_key_by_role(world: World, caller: str) -> None:
    c, who = world.consortium, world.callers[caller]
    key = new_key()
    got = reason_of(lambda: c.add_signing_key(who, key))
    assert got == member_rule(caller)
    info = c.key_info(key)
    if got is None:
        assert info.member_id == world.ids[caller] and info.valid_until is None
    else:
        assert not info.known


def retire_key_rule(caller: str) -> str | None:
    if caller == "suspended":
        return None  # a suspended member may still retire its own (compromised) key
    return member_rule(caller)


@pytest.mark.parametrize("caller", CALLERS)
def test_retire_signing_key_by_role(world: World, caller: str) -> None:
    """Each caller retires its own member's key (or, without one, the school's)."""
    c, who = world.consortium, world.callers[caller]
    if caller in ACTIVE_MEMBERS:
        key = new_key()
        c.add_signing_key(who, key)
    else:
        key = world.keys.get(caller, world.keys["other_school"])
    got = reason_of(lambda: c.retire_signing_key(who, key))
    assert got == retire_key_rule(caller)
    info = c.key_info(key)
    assert (info.valid_until is not None) == (got is None)


@pytest.mark.parametrize("caller", CALLERS)
def test_retire_another_members_key_by_role(world: World, caller: str) -> None:
    """Only an active bureau member may retire another member's key."""
    c, who = world.consortium, world.callers[caller]
    owner = world.callers["partner"] if caller != "partner" else world.callers["school"]
    key = new_key()
    c.add_signing_key(owner, key)
    got = reason_of(lambda: c.retire_signing_key(who, key))
    expected = {"bureau": None, "non_member": "not-member", "governor": "not-member",
                "retired_account": "account-retired"}.get(caller, "not-key-owner")
    assert got == expected
    assert (c.key_info(key).valid_until is not None) == (got is None)


def test_world_views(world: World) -> None:
    c = world.consortium
    assert c.member_count() >= 7
    assert c.threshold() == 2
    assert c.governors() == [g.address for g in world.governors]
    assert all(c.is_governor(g) for g in world.governors)
    assert not c.is_governor(world.callers["school"])
    bureau = c.member(1)
    assert (bureau.name, bureau.role, bureau.status) == (
        "District Education Bureau", Role.BUREAU, MemberStatus.ACTIVE)
    for kind in ("school", "partner", "auditor", "suspended", "removed"):
        info = c.member(world.ids[kind])
        assert info.role == MEMBER_ROLES[kind]
        assert c.role_of(world.callers[kind]) == MEMBER_ROLES[kind]
        assert c.member_of(world.callers[kind]) == world.ids[kind]
    assert c.member(world.ids["suspended"]).status == MemberStatus.SUSPENDED
    assert c.member(world.ids["removed"]).status == MemberStatus.REMOVED
    assert not c.is_active(world.callers["suspended"])
    assert not c.is_active(world.callers["removed"])
    rights = c.anchor_rights(world.callers["partner"])
    assert (rights.member_id, rights.role, rights.status, rights.current, rights.can_act) == (
        world.ids["partner"], Role.PARTNER, MemberStatus.ACTIVE, True, True)
    retired = c.anchor_rights(world.callers["retired_account"])
    assert (retired.member_id, retired.role, retired.status, retired.current) == (
        world.ids["school"], None, None, False)
    assert c.role_of(world.callers["retired_account"]) == Role.SCHOOL
    assert c.member_of(world.callers["non_member"]) == 0
    assert c.role_of(world.callers["non_member"]) is None
    assert c.anchor_rights(world.callers["non_member"]).member_id == 0
    assert reason_of(lambda: c.member(0)) == "unknown-member"
    assert reason_of(lambda: c.member(10_000)) == "unknown-member"
    assert reason_of(lambda: c.proposal(10_000)) == "unknown-proposal"


# --- deployment ---------------------------------------------------------------------


def test_deploy_defaults_bureau_account_to_deployer(module_chain: ChainEnv) -> None:
    g = module_chain.new_account()
    c = ConsortiumContract.deploy(module_chain.client, module_chain.funder, "Bureau", [g], 1)
    assert c.member_of(module_chain.funder) == 1
    assert c.member_count() == 1
    events = c.events(c.deploy_tx)
    assert events == [("MemberAdmitted", {"memberId": 1, "account": module_chain.funder.address,
                                          "role": 1, "name": "Bureau", "proposalId": 0})]


@pytest.mark.parametrize(("name", "governors", "threshold", "reason"), [
    ("", 2, 1, "empty-name"),
    ("Bureau", 0, 1, "no-governors"),
    ("Bureau", 2, 0, "bad-threshold"),
    ("Bureau", 2, 3, "bad-threshold"),
    ("Bureau", "zero", 1, "zero-account"),
    ("Bureau", "duplicate", 1, "duplicate-governor"),
])
def test_deploy_rejects(module_chain: ChainEnv, name, governors, threshold, reason) -> None:
    if governors == "zero":
        govs = [Account.create().address, "0x" + "00" * 20]
    elif governors == "duplicate":
        a = Account.create().address
        govs = [a, a]
    else:
        govs = [Account.create().address for _ in range(governors)]
    with pytest.raises(ContractReverted) as err:
        ConsortiumContract.deploy(module_chain.client, module_chain.funder, name, govs, threshold)
    assert err.value.reason == reason


# --- governance -----------------------------------------------------------------------


def test_threshold_flow_and_events(fresh: Fresh) -> None:
    c = fresh.c
    account = Account.create().address
    out = c.propose(fresh.bureau, ProposalAction.ADMIT, name="Yucai School", role=Role.SCHOOL,
                    account=account)
    assert not out.executed and out.member_id is None
    assert [n for n, _ in c.events(out.tx)] == ["ProposalCreated", "ProposalApproved"]
    created = c.events(out.tx)[0][1]
    assert created == {"proposalId": out.proposal_id, "memberId": 0,
                       "proposer": fresh.bureau.address, "action": 1, "role": 2,
                       "account": account, "name": "Yucai School"}
    assert c.member_of(account) == 0
    # the proposer's own approval already counts
    assert reason_of(lambda: c.approve(fresh.bureau, out.proposal_id)) == "already-approved"
    assert reason_of(lambda: c.approve(fresh.g2, 99)) == "unknown-proposal"
    assert reason_of(lambda: c.approve(fresh.g2, 0)) == "unknown-proposal"
    done = c.approve(fresh.g2, out.proposal_id)
    assert done.executed and done.member_id == 2
    assert [n for n, _ in c.events(done.tx)] == [
        "ProposalApproved", "MemberAdmitted", "ProposalExecuted"]
    assert c.events(done.tx)[0][1]["approvals"] == 2
    assert c.member(2).accounts == (account,)
    assert c.member(2).admitted_block == done.tx.block_number
    p = c.proposal(out.proposal_id)
    assert (p.executed, p.approvals, p.member_id, p.proposer) == (
        True, 2, 2, fresh.bureau.address)
    assert reason_of(lambda: c.approve(fresh.g3, out.proposal_id)) == "proposal-executed"
    assert reason_of(lambda: c.approve(fresh.g2, out.proposal_id)) == "proposal-executed"


def test_threshold_one_executes_on_propose(module_chain: ChainEnv) -> None:
    g = module_chain.new_account()
    c = ConsortiumContract.deploy(module_chain.client, module_chain.funder, "Bureau", [g], 1)
    account = Account.create().address
    out = c.propose(g, ProposalAction.ADMIT, name="Partner Co", role=Role.PARTNER,
                    account=account)
    assert out.executed and out.member_id == 2 and c.role_of(account) == Role.PARTNER


def test_threshold_three_of_three(module_chain: ChainEnv) -> None:
    gs = [module_chain.new_account() for _ in range(3)]
    c = ConsortiumContract.deploy(module_chain.client, module_chain.funder, "Bureau", gs, 3)
    pid = c.propose_admit(gs[0], "Auditor", Role.AUDITOR, Account.create().address)
    assert not c.approve(gs[1], pid).executed
    assert c.approve(gs[2], pid).executed


def test_status_transitions(fresh: Fresh) -> None:
    c = fresh.c
    mid, account = fresh.admit()
    out = fresh.govern(ProposalAction.SUSPEND, mid)
    assert c.member(mid).status == MemberStatus.SUSPENDED and not c.is_active(account)
    assert ("MemberStatusChanged", {"memberId": mid, "oldStatus": 1, "newStatus": 2,
                                    "proposalId": out.proposal_id}) in c.events(out.tx)
    assert reason_of(lambda: c.propose_suspend(fresh.bureau, mid)) == "bad-transition"
    fresh.govern(ProposalAction.REINSTATE, mid)
    assert c.member(mid).status == MemberStatus.ACTIVE and c.is_active(account)
    assert reason_of(lambda: c.propose_reinstate(fresh.bureau, mid)) == "bad-transition"
    fresh.govern(ProposalAction.SUSPEND, mid)
    fresh.govern(ProposalAction.REMOVE, mid)  # suspended -> removed
    assert c.member(mid).status == MemberStatus.REMOVED
    for action in (ProposalAction.SUSPEND, ProposalAction.REINSTATE, ProposalAction.REMOVE):
        assert reason_of(lambda a=action: c.propose(fresh.bureau, a, member_id=mid)) == \
            "bad-transition"
    assert reason_of(lambda: c.propose_change_role(fresh.bureau, mid, Role.PARTNER)) == \
        "bad-transition"
    # removed keeps its accounts bound: they cannot be admitted again
    assert reason_of(lambda: c.propose_admit(fresh.bureau, "Again", Role.SCHOOL, account)) \
        == "account-taken"
    # active -> removed directly
    mid2, _ = fresh.admit()
    fresh.govern(ProposalAction.REMOVE, mid2)
    assert c.member(mid2).status == MemberStatus.REMOVED


def test_change_role_syncs_every_account(fresh: Fresh) -> None:
    c = fresh.c
    mid, account = fresh.admit(Role.SCHOOL)
    second = Account.create().address
    c.add_account(account, second)
    out = fresh.govern(ProposalAction.CHANGE_ROLE, mid, Role.PARTNER)
    assert ("MemberRoleChanged", {"memberId": mid, "oldRole": 2, "newRole": 3,
                                  "proposalId": out.proposal_id}) in c.events(out.tx)
    assert c.member(mid).role == Role.PARTNER
    for a in (account.address, second):
        assert c.anchor_rights(a).role == Role.PARTNER and c.role_of(a) == Role.PARTNER
    assert reason_of(lambda: c.propose_change_role(fresh.bureau, mid, Role.PARTNER)) == \
        "same-role"
    fresh.govern(ProposalAction.SUSPEND, mid)
    for a in (account.address, second):
        assert c.anchor_rights(a).status == MemberStatus.SUSPENDED
    # a suspended member may change role; the status is kept
    fresh.govern(ProposalAction.CHANGE_ROLE, mid, Role.AUDITOR)
    rights = c.anchor_rights(second)
    assert (rights.role, rights.status) == (Role.AUDITOR, MemberStatus.SUSPENDED)


@pytest.mark.parametrize(("action", "member", "name", "role", "account", "reason"), [
    (ProposalAction.ADMIT, 0, "", Role.SCHOOL, "new", "empty-name"),
    (ProposalAction.ADMIT, 0, "X", 0, "new", "invalid-role"),
    (ProposalAction.ADMIT, 0, "X", 5, "new", "invalid-role"),
    (ProposalAction.ADMIT, 0, "X", Role.SCHOOL, None, "zero-account"),
    (ProposalAction.ADMIT, 0, "X", Role.SCHOOL, "bureau", "account-taken"),
    (ProposalAction.SUSPEND, 0, "", 0, None, "unknown-member"),
    (ProposalAction.SUSPEND, 99, "", 0, None, "unknown-member"),
    (ProposalAction.REINSTATE, 99, "", 0, None, "unknown-member"),
    (ProposalAction.REMOVE, 99, "", 0, None, "unknown-member"),
    (ProposalAction.CHANGE_ROLE, 99, "", Role.SCHOOL, None, "unknown-member"),
    (ProposalAction.CHANGE_ROLE, 1, "", 0, None, "invalid-role"),
    (ProposalAction.CHANGE_ROLE, 1, "", 9, None, "invalid-role"),
    (ProposalAction.CHANGE_ROLE, 1, "", Role.BUREAU, None, "same-role"),
    (ProposalAction.REINSTATE, 1, "", 0, None, "bad-transition"),
    (0, 1, "", 0, None, "invalid-action"),
    (6, 1, "", 0, None, "invalid-action"),
])
def test_propose_rejects(fresh: Fresh, action, member, name, role, account, reason) -> None:
    acct = {"new": Account.create().address, "bureau": fresh.bureau.address}.get(account)
    got = reason_of(lambda: fresh.c.propose(fresh.bureau, action, member_id=member, name=name,
                                            role=role, account=acct))
    assert got == reason
    assert fresh.c.proposal_count() == 0


def test_execution_rechecks_the_proposal(fresh: Fresh) -> None:
    """Approvals gathered on a stale proposal cannot execute it."""
    c = fresh.c
    account = Account.create().address
    first = c.propose_admit(fresh.bureau, "First", Role.SCHOOL, account)
    second = c.propose_admit(fresh.g3, "Second", Role.PARTNER, account)
    assert c.approve(fresh.g2, first).executed
    assert reason_of(lambda: c.approve(fresh.g2, second)) == "account-taken"
    assert not c.proposal(second).executed
    mid = c.member_of(account)
    suspend = c.propose_suspend(fresh.g3, mid)
    fresh.govern(ProposalAction.REMOVE, mid)
    assert reason_of(lambda: c.approve(fresh.g2, suspend)) == "bad-transition"
    assert c.member(mid).status == MemberStatus.REMOVED


def test_non_governor_member_cannot_govern(fresh: Fresh) -> None:
    mid, school = fresh.admit()
    assert reason_of(lambda: fresh.c.propose_suspend(school, mid)) == "not-governor"
    pid = fresh.c.propose_suspend(fresh.bureau, mid)
    assert reason_of(lambda: fresh.c.approve(school, pid)) == "not-governor"


# --- accounts -----------------------------------------------------------------------------


def test_accounts_lifecycle(fresh: Fresh) -> None:
    c = fresh.c
    mid, first = fresh.admit()
    other_mid, other = fresh.admit(Role.PARTNER, "Partner")
    second = fresh.env.new_account()
    tx = c.add_account(first, second)
    assert c.events(tx) == [("AccountAdded", {"memberId": mid, "account": second.address,
                                              "addedBy": first.address})]
    assert reason_of(lambda: c.add_account(first, second)) == "account-taken"
    assert reason_of(lambda: c.add_account(first, other)) == "account-taken"
    assert reason_of(lambda: c.add_account(first, None)) == "zero-account"
    assert reason_of(lambda: c.retire_account(first, other)) == "not-own-account"
    assert reason_of(lambda: c.retire_account(first, Account.create().address)) == \
        "not-own-account"
    # the new account acts for the member and may retire the first one
    tx = c.retire_account(second, first)
    assert c.events(tx) == [("AccountRetired", {"memberId": mid, "account": first.address,
                                                "retiredBy": second.address})]
    assert c.member(mid).accounts == (second.address,)
    assert c.member_of(first) == mid and not c.is_current_account(first)
    assert reason_of(lambda: c.add_account(first, Account.create().address)) == \
        "account-retired"
    assert reason_of(lambda: c.retire_account(second, first)) == "account-retired"
    assert reason_of(lambda: c.retire_account(second, second)) == "last-account"
    # bound forever: neither this member nor another may take a retired account back
    assert reason_of(lambda: c.add_account(second, first)) == "account-taken"
    assert reason_of(lambda: c.add_account(other, first)) == "account-taken"
    assert c.member_of(other) == other_mid


def test_too_many_accounts(fresh: Fresh) -> None:
    c = fresh.c
    _, first = fresh.admit()
    for _ in range(7):
        c.add_account(first, Account.create().address)
    assert reason_of(lambda: c.add_account(first, Account.create().address)) == \
        "too-many-accounts"
    # retiring one frees a slot (the retired account stays bound)
    c.retire_account(first, c.member(2).accounts[-1])
    c.add_account(first, Account.create().address)


def test_account_changes_follow_member_status(fresh: Fresh) -> None:
    c = fresh.c
    mid, first = fresh.admit()
    fresh.govern(ProposalAction.SUSPEND, mid)
    assert reason_of(lambda: c.add_account(first, Account.create().address)) == \
        "member-not-active"
    fresh.govern(ProposalAction.REINSTATE, mid)
    new = Account.create().address
    c.add_account(first, new)
    assert c.is_active(new)


# --- signing keys -------------------------------------------------------------------------


def test_key_validity_by_block(fresh: Fresh) -> None:
    c = fresh.c
    mid, school = fresh.admit()
    key = new_key()
    added = c.add_signing_key(school, key)
    assert c.events(added) == [("SigningKeyAdded", {
        "memberId": mid, "key": key, "validFrom": added.block_number,
        "addedBy": school.address})]
    a = added.block_number
    assert c.key_info(key).valid_until is None
    assert c.key_valid_at(mid, key, a) and c.key_valid_at(mid, key, a + 1000)
    assert not c.key_valid_at(mid, key, a - 1)
    fresh.env.new_account()  # a block in between
    retired = c.retire_signing_key(school, key)
    r = retired.block_number
    assert r > a + 1
    assert c.events(retired) == [("SigningKeyRetired", {
        "memberId": mid, "key": key, "validUntil": r, "retiredBy": school.address})]
    info = c.key_info(key)
    assert (info.member_id, info.valid_from, info.valid_until) == (mid, a, r)
    assert [c.key_valid_at(mid, key, b) for b in (a - 1, a, r - 1, r, r + 5)] == [
        False, True, True, False, False]
    assert [info.valid_at(b) for b in (a - 1, a, r - 1, r)] == [False, True, True, False]
    # as seen at a past block, the key was still open
    assert c.key_info(key, block=r - 1).valid_until is None
    assert not c.key_valid_at(1, key, a)  # someone else's key
    assert not c.key_valid_at(mid, new_key(), a)  # unknown key
    assert reason_of(lambda: c.retire_signing_key(school, key)) == "key-retired"
    # a retired key is never registered again, by anyone
    assert reason_of(lambda: c.add_signing_key(school, key)) == "key-exists"
    assert reason_of(lambda: c.add_signing_key(fresh.bureau, key)) == "key-exists"


def test_key_rejects(fresh: Fresh) -> None:
    c = fresh.c
    mid, school = fresh.admit()
    _, partner = fresh.admit(Role.PARTNER, "Partner")
    key = new_key()
    c.add_signing_key(school, key)
    assert reason_of(lambda: c.add_signing_key(partner, key)) == "key-exists"
    assert reason_of(lambda: c.add_signing_key(school, b"\x00" * 32)) == "zero-key"
    assert reason_of(lambda: c.retire_signing_key(school, new_key())) == "unknown-key"
    assert reason_of(lambda: c.retire_signing_key(partner, key)) == "not-key-owner"
    # the bureau may retire any member's key
    tx = c.retire_signing_key(fresh.bureau, key)
    assert decode_events(tx.logs)[0][1]["memberId"] == mid
    assert decode_events(tx.logs)[0][1]["retiredBy"] == fresh.bureau.address


def test_suspended_member_keeps_keys_but_cannot_add(fresh: Fresh) -> None:
    c = fresh.c
    mid, school = fresh.admit()
    k1, k2 = new_key(), new_key()
    c.add_signing_key(school, k1)
    c.add_signing_key(school, k2)
    fresh.govern(ProposalAction.SUSPEND, mid)
    assert reason_of(lambda: c.add_signing_key(school, new_key())) == "member-not-active"
    c.retire_signing_key(school, k1)
    fresh.govern(ProposalAction.REMOVE, mid)
    assert reason_of(lambda: c.retire_signing_key(school, k2)) == "member-not-active"
    # the bureau can still close a removed member's key
    c.retire_signing_key(fresh.bureau, k2)
    assert c.key_info(k2).valid_until is not None
