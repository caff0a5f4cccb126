# pragma version ~=0.4.3
"""
@title eduledger consortium membership
@notice Members (bureau, schools, partners, auditors), their signing accounts and the
        ed25519 public keys they sign credentials with. Membership changes go through
        proposals approved by a threshold of governors.
@dev Every rejection is `assert cond, "<reason>"` with a short, stable reason string.
     Accounts are bound to one member forever: a retired account stays bound (with its
     "current" flag cleared) so that history always resolves to the member.

     Per-account packed word (`anchorRights`), kept in sync on every role/status change:
       bits   0..63  member id (never 0 for a bound account)
       bits  64..71  role    (0 when the account is retired)
       bits  72..79  status  (0 when the account is retired)
       bit   80      1 = a current (not retired) account of the member
     Per-key packed word (`keyInfo`):
       bits 0..63 member id | 64..127 validFrom block | 128..191 validUntil block (0 = open)
     A key is valid at block b when validFrom <= b and (validUntil == 0 or b < validUntil).
"""

# roles
ROLE_BUREAU: constant(uint8) = 1
ROLE_SCHOOL: constant(uint8) = 2
ROLE_PARTNER: constant(uint8) = 3
ROLE_AUDITOR: constant(uint8) = 4

# member status
ACTIVE: constant(uint8) = 1
SUSPENDED: constant(uint8) = 2
REMOVED: constant(uint8) = 3

# proposal actions
ACTION_ADMIT: constant(uint8) = 1
ACTION_SUSPEND: constant(uint8) = 2
ACTION_REINSTATE: constant(uint8) = 3
ACTION_REMOVE: constant(uint8) = 4
ACTION_CHANGE_ROLE: constant(uint8) = 5

MAX_GOVERNORS: constant(uint256) = 16
MAX_ACCOUNTS: constant(uint256) = 8
MASK64: constant(uint256) = 2**64 - 1
CURRENT_BIT: constant(uint256) = 1 << 80


struct Member:
    name: String[128]
    role: uint8
    status: uint8
    admittedBlock: uint256


struct MemberView:
    name: String[128]
    role: uint8
    status: uint8
    admittedBlock: uint256
    accounts: DynArray[address, MAX_ACCOUNTS]


struct Proposal:
    action: uint8
    memberId: uint256
    role: uint8
    account: address
    proposer: address
    approvals: uint256
    executed: bool
    createdBlock: uint256
    name: String[128]


event ProposalCreated:
    proposalId: indexed(uint256)
    memberId: indexed(uint256)
    proposer: indexed(address)
    action: uint8
    role: uint8
    account: address
    name: String[128]

event ProposalApproved:
    proposalId: indexed(uint256)
    approver: indexed(address)
    approvals: uint256

event ProposalExecuted:
    proposalId: indexed(uint256)
    memberId: indexed(uint256)
    action: uint8

event MemberAdmitted:
    memberId: indexed(uint256)
    account: indexed(address)
    role: uint8
    name: String[128]
    proposalId: uint256

event MemberStatusChanged:
    memberId: indexed(uint256)
    oldStatus: uint8
    newStatus: uint8
    proposalId: uint256

event MemberRoleChanged:
    memberId: indexed(uint256)
    oldRole: uint8
    newRole: uint8
    proposalId: uint256

event AccountAdded:
    memberId: indexed(uint256)
    account: indexed(address)
    addedBy: address

event AccountRetired:
    memberId: indexed(uint256)
    account: indexed(address)
    retiredBy: address

event SigningKeyAdded:
    memberId: indexed(uint256)
    key: indexed(bytes32)
    validFrom: uint256
    addedBy: address

event SigningKeyRetired:
    memberId: indexed(uint256)
    key: indexed(bytes32)
    validUntil: uint256
    retiredBy: address


memberCount: public(uint256)
threshold: public(uint256)
isGovernor: public(HashMap[address, bool])
proposalCount: public(uint256)

_governors: DynArray[address, MAX_GOVERNORS]
_members: HashMap[uint256, Member]
_accounts: HashMap[uint256, DynArray[address, MAX_ACCOUNTS]]
_accountWord: HashMap[address, uint256]
_keys: HashMap[bytes32, uint256]
_proposals: HashMap[uint256, Proposal]
_approved: HashMap[uint256, HashMap[address, bool]]


@deploy
def __init__(
    bureauName: String[128],
    bureauAccount: address,
    governors: DynArray[address, MAX_GOVERNORS],
    threshold: uint256,
):
    """
    @param bureauName the bureau's public name
    @param bureauAccount the bureau's first signing account; zero address = the deployer
    @param governors accounts that propose and approve membership changes
    @param threshold approvals needed to execute a proposal (1..len(governors))
    """
    assert len(bureauName) > 0, "empty-name"
    assert len(governors) > 0, "no-governors"
    assert threshold >= 1 and threshold <= len(governors), "bad-threshold"
    for g: address in governors:
        assert g != empty(address), "zero-account"
        assert not self.isGovernor[g], "duplicate-governor"
        self.isGovernor[g] = True
    self._governors = governors
    self.threshold = threshold
    account: address = bureauAccount
    if account == empty(address):
        account = msg.sender
    self._admit(bureauName, ROLE_BUREAU, account, 0)


# --- internals -------------------------------------------------------------------


@internal
@pure
def _pack(memberId: uint256, role: uint8, status: uint8) -> uint256:
    return (
        memberId
        | (convert(role, uint256) << 64)
        | (convert(status, uint256) << 72)
        | CURRENT_BIT
    )


@internal
def _admit(name: String[128], role: uint8, account: address, proposalId: uint256) -> uint256:
    memberId: uint256 = self.memberCount + 1
    self.memberCount = memberId
    self._members[memberId] = Member(
        name=name, role=role, status=ACTIVE, admittedBlock=block.number
    )
    self._accounts[memberId].append(account)
    self._accountWord[account] = self._pack(memberId, role, ACTIVE)
    log MemberAdmitted(
        memberId=memberId, account=account, role=role, name=name, proposalId=proposalId
    )
    return memberId


@internal
def _sync(memberId: uint256):
    """Rewrite the packed word of every current account of the member."""
    m: Member = self._members[memberId]
    word: uint256 = self._pack(memberId, m.role, m.status)
    for a: address in self._accounts[memberId]:
        self._accountWord[a] = word


@internal
@view
def _validRole(role: uint8) -> bool:
    return role >= ROLE_BUREAU and role <= ROLE_AUDITOR


@internal
@view
def _check(action: uint8, memberId: uint256, name: String[128], role: uint8, account: address):
    """Rejects a proposal that could not execute now."""
    if action == ACTION_ADMIT:
        assert len(name) > 0, "empty-name"
        assert self._validRole(role), "invalid-role"
        assert account != empty(address), "zero-account"
        assert self._accountWord[account] == 0, "account-taken"
        return
    assert action >= ACTION_SUSPEND and action <= ACTION_CHANGE_ROLE, "invalid-action"
    assert memberId >= 1 and memberId <= self.memberCount, "unknown-member"
    status: uint8 = self._members[memberId].status
    if action == ACTION_SUSPEND:
        assert status == ACTIVE, "bad-transition"
    elif action == ACTION_REINSTATE:
        assert status == SUSPENDED, "bad-transition"
    elif action == ACTION_REMOVE:
        assert status != REMOVED, "bad-transition"
    else:  # change role
        assert status != REMOVED, "bad-transition"
        assert self._validRole(role), "invalid-role"
        assert role != self._members[memberId].role, "same-role"


@internal
def _setMemberStatus(memberId: uint256, newStatus: uint8, proposalId: uint256):
    old: uint8 = self._members[memberId].status
    self._members[memberId].status = newStatus
    self._sync(memberId)
    log MemberStatusChanged(
        memberId=memberId, oldStatus=old, newStatus=newStatus, proposalId=proposalId
    )


@internal
def _execute(proposalId: uint256):
    p: Proposal = self._proposals[proposalId]
    # Re-checked: membership may have changed since the proposal was made.
    self._check(p.action, p.memberId, p.name, p.role, p.account)
    memberId: uint256 = p.memberId
    if p.action == ACTION_ADMIT:
        memberId = self._admit(p.name, p.role, p.account, proposalId)
        self._proposals[proposalId].memberId = memberId
    elif p.action == ACTION_SUSPEND:
        self._setMemberStatus(memberId, SUSPENDED, proposalId)
    elif p.action == ACTION_REINSTATE:
        self._setMemberStatus(memberId, ACTIVE, proposalId)
    elif p.action == ACTION_REMOVE:
        self._setMemberStatus(memberId, REMOVED, proposalId)
    else:
        old: uint8 = self._members[memberId].role
        self._members[memberId].role = p.role
        self._sync(memberId)
        log MemberRoleChanged(
            memberId=memberId, oldRole=old, newRole=p.role, proposalId=proposalId
        )
    self._proposals[proposalId].executed = True
    log ProposalExecuted(proposalId=proposalId, memberId=memberId, action=p.action)


@internal
@view
def _activeCaller() -> uint256:
    """The member id of msg.sender, which must be a current account of an active member."""
    word: uint256 = self._accountWord[msg.sender]
    assert word != 0, "not-member"
    assert word & CURRENT_BIT != 0, "account-retired"
    assert (word >> 72) & 255 == convert(ACTIVE, uint256), "member-not-active"
    return word & MASK64


# --- governance ------------------------------------------------------------------


@external
def propose(
    action: uint8, memberId: uint256, name: String[128], role: uint8, account: address
) -> uint256:
    """
    @notice Propose a membership change; the proposer's approval counts as the first.
            Executes at once when the threshold is 1.
    @param action 1 admit (name, role, account), 2 suspend, 3 reinstate, 4 remove
           (memberId), 5 change role (memberId, role)
    @return the proposal id (1, 2, ...)
    """
    assert self.isGovernor[msg.sender], "not-governor"
    assert action >= ACTION_ADMIT and action <= ACTION_CHANGE_ROLE, "invalid-action"
    self._check(action, memberId, name, role, account)
    proposalId: uint256 = self.proposalCount + 1
    self.proposalCount = proposalId
    p: Proposal = empty(Proposal)
    p.action = action
    p.proposer = msg.sender
    p.approvals = 1
    p.createdBlock = block.number
    if action == ACTION_ADMIT:
        p.name = name
        p.role = role
        p.account = account
    else:
        p.memberId = memberId
        if action == ACTION_CHANGE_ROLE:
            p.role = role
    self._proposals[proposalId] = p
    self._approved[proposalId][msg.sender] = True
    log ProposalCreated(
        proposalId=proposalId,
        memberId=p.memberId,
        proposer=msg.sender,
        action=action,
        role=p.role,
        account=p.account,
        name=p.name,
    )
    log ProposalApproved(proposalId=proposalId, approver=msg.sender, approvals=1)
    if self.threshold <= 1:
        self._execute(proposalId)
    return proposalId


@external
def approve(proposalId: uint256):
    """
    @notice Approve a pending proposal; executes it when approvals reach the threshold.
    """
    assert self.isGovernor[msg.sender], "not-governor"
    assert proposalId >= 1 and proposalId <= self.proposalCount, "unknown-proposal"
    assert not self._proposals[proposalId].executed, "proposal-executed"
    assert not self._approved[proposalId][msg.sender], "already-approved"
    self._approved[proposalId][msg.sender] = True
    approvals: uint256 = self._proposals[proposalId].approvals + 1
    self._proposals[proposalId].approvals = approvals
    log ProposalApproved(proposalId=proposalId, approver=msg.sender, approvals=approvals)
    if approvals >= self.threshold:
        self._execute(proposalId)


# --- a member's own accounts and keys ---------------------------------------------


@external
def addAccount(account: address):
    """@notice Bind a new signing account to the caller's member (active members only)."""
    memberId: uint256 = self._activeCaller()
    assert account != empty(address), "zero-account"
    assert self._accountWord[account] == 0, "account-taken"
    assert len(self._accounts[memberId]) < MAX_ACCOUNTS, "too-many-accounts"
    self._accounts[memberId].append(account)
    m: Member = self._members[memberId]
    self._accountWord[account] = self._pack(memberId, m.role, m.status)
    log AccountAdded(memberId=memberId, account=account, addedBy=msg.sender)


@external
def retireAccount(account: address):
    """
    @notice Retire one of the caller's member's current accounts (possibly the caller's
            own); the last current account cannot be retired. It stays bound forever.
    """
    memberId: uint256 = self._activeCaller()
    word: uint256 = self._accountWord[account]
    assert word & MASK64 == memberId, "not-own-account"
    assert word & CURRENT_BIT != 0, "account-retired"
    accounts: DynArray[address, MAX_ACCOUNTS] = self._accounts[memberId]
    n: uint256 = len(accounts)
    assert n > 1, "last-account"
    kept: DynArray[address, MAX_ACCOUNTS] = []
    for a: address in accounts:
        if a != account:
            kept.append(a)
    self._accounts[memberId] = kept
    self._accountWord[account] = memberId  # bound, not current, no role/status
    log AccountRetired(memberId=memberId, account=account, retiredBy=msg.sender)


@external
def addSigningKey(key: bytes32):
    """
    @notice Register an ed25519 public key the caller's member signs credentials with,
            valid from this block. A key is registered once, ever, by one member.
    """
    memberId: uint256 = self._activeCaller()
    assert key != empty(bytes32), "zero-key"
    assert self._keys[key] == 0, "key-exists"
    self._keys[key] = memberId | (block.number << 64)
    log SigningKeyAdded(memberId=memberId, key=key, validFrom=block.number, addedBy=msg.sender)


@external
def retireSigningKey(key: bytes32):
    """
    @notice End a key's validity at this block (exclusive). Allowed for the key's own
            member while active or suspended (a compromised key can always be retired),
            and for an active bureau member (for any member's key).
    """
    word: uint256 = self._accountWord[msg.sender]
    assert word != 0, "not-member"
    assert word & CURRENT_BIT != 0, "account-retired"
    callerId: uint256 = word & MASK64
    info: uint256 = self._keys[key]
    assert info != 0, "unknown-key"
    owner: uint256 = info & MASK64
    status: uint256 = (word >> 72) & 255
    if owner == callerId:
        assert status != convert(REMOVED, uint256), "member-not-active"
    else:
        assert (word >> 64) & 255 == convert(ROLE_BUREAU, uint256), "not-key-owner"
        assert status == convert(ACTIVE, uint256), "member-not-active"
    assert info >> 128 == 0, "key-retired"
    self._keys[key] = info | (block.number << 128)
    log SigningKeyRetired(memberId=owner, key=key, validUntil=block.number, retiredBy=msg.sender)


# --- views -----------------------------------------------------------------------


@external
@view
def anchorRights(account: address) -> uint256:
    """@notice The account's packed word (see the module doc); 0 for an unknown account."""
    return self._accountWord[account]


@external
@view
def memberOf(account: address) -> uint256:
    """@notice The member an account is (or was) bound to; 0 if none."""
    return self._accountWord[account] & MASK64


@external
@view
def isCurrentAccount(account: address) -> bool:
    return self._accountWord[account] & CURRENT_BIT != 0


@external
@view
def roleOf(account: address) -> uint8:
    """@notice Role of the account's member (also for a retired account); 0 if none."""
    memberId: uint256 = self._accountWord[account] & MASK64
    if memberId == 0:
        return 0
    return self._members[memberId].role


@external
@view
def isActive(account: address) -> bool:
    """@notice True for a current account of an active member."""
    word: uint256 = self._accountWord[account]
    return word & CURRENT_BIT != 0 and (word >> 72) & 255 == convert(ACTIVE, uint256)


@external
@view
def member(memberId: uint256) -> MemberView:
    assert memberId >= 1 and memberId <= self.memberCount, "unknown-member"
    m: Member = self._members[memberId]
    return MemberView(
        name=m.name,
        role=m.role,
        status=m.status,
        admittedBlock=m.admittedBlock,
        accounts=self._accounts[memberId],
    )


@external
@view
def keyInfo(key: bytes32) -> (uint256, uint256, uint256):
    """@notice (memberId, validFrom, validUntil); all 0 for an unknown key."""
    info: uint256 = self._keys[key]
    return info & MASK64, (info >> 64) & MASK64, info >> 128


@external
@view
def keyValidAt(memberId: uint256, key: bytes32, blockNumber: uint256) -> bool:
    """@notice True when `key` is `memberId`'s and was valid at `blockNumber`."""
    info: uint256 = self._keys[key]
    if info == 0 or info & MASK64 != memberId:
        return False
    validFrom: uint256 = (info >> 64) & MASK64
    validUntil: uint256 = info >> 128
    return validFrom <= blockNumber and (validUntil == 0 or blockNumber < validUntil)


@external
@view
def governors() -> DynArray[address, MAX_GOVERNORS]:
    return self._governors


@external
@view
def proposal(proposalId: uint256) -> Proposal:
    assert proposalId >= 1 and proposalId <= self.proposalCount, "unknown-proposal"
    return self._proposals[proposalId]


@external
@view
def hasApproved(proposalId: uint256, governor: address) -> bool:
    return self._approved[proposalId][governor]
