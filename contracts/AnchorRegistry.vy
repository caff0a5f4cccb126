# pragma version ~=0.4.3
"""
@title eduledger anchor registry
@notice Merkle roots of batches of leaf hashes, by kind, with the anchoring member and
        the batch size; and the status of single leaves (revoked, suspended, reinstated,
        superseded), changed by the member that anchored the root or by the bureau, on a
        Merkle proof checked here.
@dev Rights come from the Consortium's `anchorRights(account)` packed word (one SLOAD):
       bits 0..63 member id | 64..71 role | 72..79 status | bit 80 current account.
     Root word (`rootInfo`), never 0 once anchored:
       bits 0..63 member id | 64..71 kind | 72..103 count | 104..167 block number
     Leaf status word, per (root, leaf):
       bits 0..7 status | 8..23 reason | 24..87 block number | 88..151 acting member id
     Leaf status is kept per (root, leaf), not per leaf alone: a member can only ever
     change the status of leaves under its own roots, so another member who anchors a root
     containing somebody else's leaf cannot revoke that leaf's credential.
     Merkle rules (the same as ledger/merkle.py):
       node = keccak256(0x00 ++ leaf)
       node = keccak256(0x01 ++ min(node, sib) ++ max(node, sib))   for sib in proof
       valid when node == root
"""

interface Consortium:
    def anchorRights(account: address) -> uint256: view


# roles (Consortium)
ROLE_BUREAU: constant(uint256) = 1
ACTIVE: constant(uint256) = 1

# anchor kinds
KIND_CREDENTIAL: constant(uint8) = 1
KIND_LEARNING_RECORD: constant(uint8) = 2
KIND_EVALUATION_DATA: constant(uint8) = 3
KIND_RESOURCE: constant(uint8) = 4
KIND_AUDIT_REPORT: constant(uint8) = 5
KIND_ACCESS_LOG: constant(uint8) = 6
KIND_SIGNATURE: constant(uint8) = 7

# Which role may anchor which kind: bit (kind * 8 + role) set = allowed.
#   1 credential: school, partner      2 learning record: school
#   3 evaluation data: school          4 resource: school, partner
#   5 audit report: auditor            6 access-log checkpoint: any member role
#   7 signature (a document signed or sealed, timestamped): bureau, school, partner
KIND_ROLES: constant(uint256) = (
    (1 << (1 * 8 + 2)) | (1 << (1 * 8 + 3))
    | (1 << (2 * 8 + 2))
    | (1 << (3 * 8 + 2))
    | (1 << (4 * 8 + 2)) | (1 << (4 * 8 + 3))
    | (1 << (5 * 8 + 4))
    | (1 << (6 * 8 + 1)) | (1 << (6 * 8 + 2)) | (1 << (6 * 8 + 3)) | (1 << (6 * 8 + 4))
    | (1 << (7 * 8 + 1)) | (1 << (7 * 8 + 2)) | (1 << (7 * 8 + 3))
)

# leaf status
REVOKED: constant(uint8) = 1
SUSPENDED: constant(uint8) = 2
REINSTATED: constant(uint8) = 3
SUPERSEDED: constant(uint8) = 4

MAX_PROOF: constant(uint256) = 32
MASK64: constant(uint256) = 2**64 - 1
CURRENT_BIT: constant(uint256) = 1 << 80


event Anchored:
    root: indexed(bytes32)
    memberId: indexed(uint256)
    kind: uint8
    count: uint32
    metadataHash: bytes32
    anchoredBy: address

event StatusChanged:
    leaf: indexed(bytes32)
    root: indexed(bytes32)
    memberId: indexed(uint256)
    status: uint8
    reason: uint16
    supersededBy: bytes32
    changedBy: address


CONSORTIUM: public(immutable(address))

_roots: HashMap[bytes32, uint256]
_status: HashMap[bytes32, HashMap[bytes32, uint256]]
_supersededBy: HashMap[bytes32, HashMap[bytes32, bytes32]]


@deploy
def __init__(consortium: address):
    assert consortium.is_contract, "not-a-contract"
    CONSORTIUM = consortium


@internal
@view
def _rights() -> uint256:
    """msg.sender's packed rights; it must be a current account of an active member."""
    word: uint256 = staticcall Consortium(CONSORTIUM).anchorRights(msg.sender)
    assert word != 0, "not-member"
    assert word & CURRENT_BIT != 0, "account-retired"
    assert (word >> 72) & 255 == ACTIVE, "member-not-active"
    return word


@external
def anchor(root: bytes32, kind: uint8, count: uint32, metadataHash: bytes32):
    """
    @notice Anchor the Merkle root of a batch of `count` leaves of one kind.
    @param metadataHash hash of the batch's off-chain metadata (emitted, not stored)
    """
    word: uint256 = self._rights()
    assert kind >= KIND_CREDENTIAL and kind <= KIND_SIGNATURE, "invalid-kind"
    role: uint256 = (word >> 64) & 255
    assert (KIND_ROLES >> (convert(kind, uint256) * 8 + role)) & 1 != 0, "role-not-allowed"
    assert root != empty(bytes32), "zero-root"
    assert count != 0, "zero-count"
    assert self._roots[root] == 0, "root-exists"
    memberId: uint256 = word & MASK64
    self._roots[root] = (
        memberId
        | (convert(kind, uint256) << 64)
        | (convert(count, uint256) << 72)
        | (block.number << 104)
    )
    log Anchored(
        root=root,
        memberId=memberId,
        kind=kind,
        count=count,
        metadataHash=metadataHash,
        anchoredBy=msg.sender,
    )


@internal
@pure
def _verify(leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF], root: bytes32) -> bool:
    node: bytes32 = keccak256(concat(b"\x00", leaf))
    for sib: bytes32 in proof:
        if convert(node, uint256) <= convert(sib, uint256):
            node = keccak256(concat(b"\x01", node, sib))
        else:
            node = keccak256(concat(b"\x01", sib, node))
    return node == root


@external
def setStatus(
    leaf: bytes32,
    root: bytes32,
    proof: DynArray[bytes32, MAX_PROOF],
    status: uint8,
    reason: uint16,
    supersededBy: bytes32,
):
    """
    @notice Change the status of `leaf` under `root`: 1 revoked, 2 suspended,
            3 reinstated (valid again; only from suspended), 4 superseded by
            `supersededBy`. Revoked and superseded are final.
    @dev Allowed for the member that anchored `root` and for an active bureau member.
    """
    word: uint256 = self._rights()
    info: uint256 = self._roots[root]
    assert info != 0, "unknown-root"
    callerId: uint256 = word & MASK64
    assert info & MASK64 == callerId or (word >> 64) & 255 == ROLE_BUREAU, "not-root-owner"
    assert status >= REVOKED and status <= SUPERSEDED, "invalid-status"
    if status == SUPERSEDED:
        assert supersededBy != empty(bytes32), "missing-superseded-by"
        assert supersededBy != leaf, "self-supersede"
    else:
        assert supersededBy == empty(bytes32), "unexpected-superseded-by"
    assert self._verify(leaf, proof, root), "bad-proof"
    current: uint256 = self._status[root][leaf] & 255
    # Superseded is final. Revoked is final too, except that a revoked credential may
    # still be superseded by its correction, so that the record points to the new one.
    assert current != convert(SUPERSEDED, uint256), "status-final"
    assert current != convert(REVOKED, uint256) or status == SUPERSEDED, "status-final"
    if status == REINSTATED:
        assert current == convert(SUSPENDED, uint256), "bad-transition"
    elif status == SUSPENDED:
        assert current != convert(SUSPENDED, uint256), "bad-transition"
    self._status[root][leaf] = (
        convert(status, uint256)
        | (convert(reason, uint256) << 8)
        | (block.number << 24)
        | (callerId << 88)
    )
    if status == SUPERSEDED:
        self._supersededBy[root][leaf] = supersededBy
    log StatusChanged(
        leaf=leaf,
        root=root,
        memberId=callerId,
        status=status,
        reason=reason,
        supersededBy=supersededBy,
        changedBy=msg.sender,
    )


@external
@view
def isAnchored(root: bytes32) -> bool:
    return self._roots[root] != 0


@external
@view
def rootInfo(root: bytes32) -> (uint256, uint8, uint32, uint256):
    """@notice (memberId, kind, count, blockNumber); all 0 for a root never anchored."""
    info: uint256 = self._roots[root]
    return (
        info & MASK64,
        convert((info >> 64) & 255, uint8),
        convert((info >> 72) & 4294967295, uint32),
        (info >> 104) & MASK64,
    )


@external
@view
def statusOf(leaf: bytes32, root: bytes32) -> (uint8, uint16, uint256, bytes32):
    """
    @notice (status, reason, blockNumber, supersededBy) of `leaf` under `root`;
            status 0 = never changed (valid), 3 = reinstated (valid).
    """
    word: uint256 = self._status[root][leaf]
    return (
        convert(word & 255, uint8),
        convert((word >> 8) & 65535, uint16),
        (word >> 24) & MASK64,
        self._supersededBy[root][leaf],
    )


@external
@view
def statusChangedBy(leaf: bytes32, root: bytes32) -> uint256:
    """@notice The member id that made the last status change (0 if none)."""
    return (self._status[root][leaf] >> 88) & MASK64
