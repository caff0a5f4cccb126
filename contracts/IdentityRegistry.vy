# pragma version ~=0.4.3
"""
@title eduledger identity registry
@notice Education identity cards (students, teachers, graduates) by opaque id: the issuing
        member, kind, status with reason, validity window, and commitments to the
        holder's current public key and to the holder's portrait. Nothing here identifies
        a person without the off-chain data: the card id is a salted hash (never a
        person's number), the portrait commitment is salted, the key commitment names
        only a key.
@dev Rights come from the Consortium's `anchorRights(account)` packed word (one SLOAD):
       bits 0..63 member id | 64..71 role | 72..79 status | bit 80 current account.
     The caller must be a current account of an active member. Issuing needs role school
     or bureau; changing a card needs to be its issuing member or the bureau.
     Every rejection is `assert cond, "<reason>"` with a short, stable reason string.

     Card storage (4 slots per card, written only when not zero):
       word         the packed word below (never 0 for an issued card)
       holderKey    commitment to the holder's current public key (0 until bound)
       portrait     salted commitment to the portrait (0 = none recorded)
       predecessor  the card this one continues (0 = none)
     Card word:
       bits   0..63  issuing member id
       bits  64..71  kind    (1 student, 2 teacher, 3 graduate)
       bits  72..79  status  (1 active, 2 suspended, 3 revoked, 4 ended)
       bits  80..95  reason of the last status change (0 at issuance)
       bits  96..143 validFrom  (unix seconds; 0 = open)
       bits 144..191 validUntil (unix seconds, exclusive; 0 = open)
       bits 192..247 block number of the last change to the card
       bit  248      1 = a later card continues this one (its successor links to it)
     A card is valid at time t when status is active, validFrom <= t and
     (validUntil == 0 or t < validUntil). Revoked and ended are final: nothing about the
     card changes after, except that one later card may link to it as its predecessor.

     Continuation (graduation, a teacher's move): a card issued with a predecessor links
     to it. When the predecessor is still active or suspended, only its issuer or the
     bureau may link to it, and the predecessor is ended in the same transaction
     (graduation by the same school). When it is already revoked or ended, any member
     that may issue may link to it (a transfer: the old school ended it first). A card is
     continued at most once, so one identity has one line of cards.
"""

interface Consortium:
    def anchorRights(account: address) -> uint256: view


# Consortium roles and member status
ROLE_BUREAU: constant(uint256) = 1
ROLE_SCHOOL: constant(uint256) = 2
MEMBER_ACTIVE: constant(uint256) = 1

# card kinds
KIND_STUDENT: constant(uint8) = 1
KIND_TEACHER: constant(uint8) = 2
KIND_GRADUATE: constant(uint8) = 3

# card status
ACTIVE: constant(uint8) = 1
SUSPENDED: constant(uint8) = 2
REVOKED: constant(uint8) = 3
ENDED: constant(uint8) = 4

MAX_BATCH: public(constant(uint256)) = 100
MASK64: constant(uint256) = 2**64 - 1
MASK48: constant(uint256) = 2**48 - 1
MASK56: constant(uint256) = 2**56 - 1
CURRENT_BIT: constant(uint256) = 1 << 80
CONTINUED_BIT: constant(uint256) = 1 << 248
# Everything but status (72..79), reason (80..95) and block (192..247).
KEEP_ON_STATUS: constant(uint256) = ~((255 << 72) | (65535 << 80) | (MASK56 << 192))
# Everything but the validity window (96..191) and block (192..247).
KEEP_ON_VALIDITY: constant(uint256) = ~((((1 << 96) - 1) << 96) | (MASK56 << 192))
# Everything but block (192..247).
KEEP_ON_TOUCH: constant(uint256) = ~(MASK56 << 192)


struct Card:
    word: uint256
    holderKey: bytes32
    portrait: bytes32
    predecessor: bytes32


struct CardSpec:
    cardId: bytes32
    kind: uint8
    portrait: bytes32
    predecessor: bytes32
    validFrom: uint64
    validUntil: uint64


struct CardView:
    issuer: uint256
    kind: uint8
    status: uint8
    reason: uint16
    validFrom: uint64
    validUntil: uint64
    changedBlock: uint256
    continued: bool
    holderKey: bytes32
    portrait: bytes32
    predecessor: bytes32


event CardIssued:
    cardId: indexed(bytes32)
    issuer: indexed(uint256)
    predecessor: indexed(bytes32)
    kind: uint8
    portrait: bytes32
    validFrom: uint64
    validUntil: uint64

event CardStatusChanged:
    cardId: indexed(bytes32)
    memberId: indexed(uint256)
    oldStatus: uint8
    status: uint8
    reason: uint16

event CardKeyBound:
    cardId: indexed(bytes32)
    memberId: indexed(uint256)
    commitment: bytes32

event CardKeyRotated:
    cardId: indexed(bytes32)
    memberId: indexed(uint256)
    previous: bytes32
    commitment: bytes32

event CardPortraitChanged:
    cardId: indexed(bytes32)
    memberId: indexed(uint256)
    previous: bytes32
    portrait: bytes32

event CardValidityChanged:
    cardId: indexed(bytes32)
    memberId: indexed(uint256)
    validFrom: uint64
    validUntil: uint64


CONSORTIUM: public(immutable(address))

_cards: HashMap[bytes32, Card]


@deploy
def __init__(consortium: address):
    assert consortium.is_contract, "not-a-contract"
    CONSORTIUM = consortium


# --- internals -------------------------------------------------------------------


@internal
@view
def _rights() -> uint256:
    """msg.sender's packed rights; it must be a current account of an active member."""
    word: uint256 = staticcall Consortium(CONSORTIUM).anchorRights(msg.sender)
    assert word != 0, "not-member"
    assert word & CURRENT_BIT != 0, "account-retired"
    assert (word >> 72) & 255 == MEMBER_ACTIVE, "member-not-active"
    return word


@internal
@pure
def _isBureau(rights: uint256) -> bool:
    return (rights >> 64) & 255 == ROLE_BUREAU


@internal
@view
def _issuerRights() -> uint256:
    rights: uint256 = self._rights()
    role: uint256 = (rights >> 64) & 255
    assert role == ROLE_SCHOOL or role == ROLE_BUREAU, "role-not-allowed"
    return rights


@internal
@view
def _changeable(cardId: bytes32) -> (uint256, uint256):
    """(caller's member id, the card's word) for a change by msg.sender to a card that is
    not final: the caller must be the card's issuer or the bureau."""
    rights: uint256 = self._rights()
    word: uint256 = self._cards[cardId].word
    assert word != 0, "unknown-card"
    callerId: uint256 = rights & MASK64
    assert word & MASK64 == callerId or self._isBureau(rights), "not-card-issuer"
    status: uint256 = (word >> 72) & 255
    assert status != convert(REVOKED, uint256) and status != convert(ENDED, uint256), \
        "status-final"
    return callerId, word


@internal
@pure
def _checkValidity(validFrom: uint64, validUntil: uint64):
    assert convert(validFrom, uint256) <= MASK48, "bad-validity"
    assert convert(validUntil, uint256) <= MASK48, "bad-validity"
    assert validUntil == 0 or validUntil > validFrom, "bad-validity"


@internal
@view
def _touched(word: uint256) -> uint256:
    """`word` with the block of the last change set to this block."""
    return (word & KEEP_ON_TOUCH) | ((block.number & MASK56) << 192)


@internal
def _link(predecessor: bytes32, callerId: uint256, bureau: bool):
    """Mark `predecessor` as continued, ending it first if it is still active or
    suspended (allowed for its issuer and the bureau only)."""
    word: uint256 = self._cards[predecessor].word
    assert word != 0, "unknown-predecessor"
    assert word & CONTINUED_BIT == 0, "predecessor-continued"
    status: uint256 = (word >> 72) & 255
    if status == convert(ACTIVE, uint256) or status == convert(SUSPENDED, uint256):
        assert word & MASK64 == callerId or bureau, "predecessor-active"
        word = (word & KEEP_ON_STATUS) | (convert(ENDED, uint256) << 72)
        log CardStatusChanged(
            cardId=predecessor,
            memberId=callerId,
            oldStatus=convert(status, uint8),
            status=ENDED,
            reason=0,
        )
    self._cards[predecessor].word = self._touched(word) | CONTINUED_BIT


@internal
def _issue(callerId: uint256, bureau: bool, spec: CardSpec):
    assert spec.cardId != empty(bytes32), "zero-card-id"
    assert spec.kind >= KIND_STUDENT and spec.kind <= KIND_GRADUATE, "invalid-kind"
    self._checkValidity(spec.validFrom, spec.validUntil)
    assert self._cards[spec.cardId].word == 0, "card-exists"
    if spec.predecessor != empty(bytes32):
        self._link(spec.predecessor, callerId, bureau)
        self._cards[spec.cardId].predecessor = spec.predecessor
    self._cards[spec.cardId].word = (
        callerId
        | (convert(spec.kind, uint256) << 64)
        | (convert(ACTIVE, uint256) << 72)
        | (convert(spec.validFrom, uint256) << 96)
        | (convert(spec.validUntil, uint256) << 144)
        | ((block.number & MASK56) << 192)
    )
    if spec.portrait != empty(bytes32):
        self._cards[spec.cardId].portrait = spec.portrait
    log CardIssued(
        cardId=spec.cardId,
        issuer=callerId,
        predecessor=spec.predecessor,
        kind=spec.kind,
        portrait=spec.portrait,
        validFrom=spec.validFrom,
        validUntil=spec.validUntil,
    )


# --- issuance --------------------------------------------------------------------


@external
def issue(
    cardId: bytes32,
    kind: uint8,
    portrait: bytes32,
    predecessor: bytes32,
    validFrom: uint64,
    validUntil: uint64,
):
    """
    @notice Issue one card, active from this block, with no holder key yet (the holder
            claims the card later: `bindKey`).
    @param cardId the card's opaque id (a salted hash); issued once, ever
    @param kind 1 student, 2 teacher, 3 graduate
    @param portrait salted commitment to the portrait; 0 = none recorded
    @param predecessor 0, or the card this one continues (see the module doc)
    @param validFrom unix seconds, 0 = open
    @param validUntil unix seconds (exclusive), 0 = open
    """
    rights: uint256 = self._issuerRights()
    self._issue(
        rights & MASK64,
        self._isBureau(rights),
        CardSpec(
            cardId=cardId,
            kind=kind,
            portrait=portrait,
            predecessor=predecessor,
            validFrom=validFrom,
            validUntil=validUntil,
        ),
    )


@external
def issueBatch(cards: DynArray[CardSpec, MAX_BATCH]):
    """
    @notice Issue up to MAX_BATCH cards in one transaction (a roster), each as `issue`
            would; any refusal refuses the whole batch.
    @dev More than MAX_BATCH cards fail the ABI decoding of `cards` (a revert with no
         reason string, before any code here runs); the Python binding refuses such a
         batch before sending it.
    """
    rights: uint256 = self._issuerRights()
    assert len(cards) != 0, "empty-batch"
    callerId: uint256 = rights & MASK64
    bureau: bool = self._isBureau(rights)
    for spec: CardSpec in cards:
        self._issue(callerId, bureau, spec)


# --- changes ---------------------------------------------------------------------


@external
def setStatus(cardId: bytes32, status: uint8, reason: uint16):
    """
    @notice Change a card's status: active <-> suspended, or to revoked or ended (final).
    @param reason the reason's code (the meaning is the issuer's); kept until the next
           status change
    """
    callerId: uint256 = 0
    word: uint256 = 0
    callerId, word = self._changeable(cardId)
    assert status >= ACTIVE and status <= ENDED, "invalid-status"
    old: uint256 = (word >> 72) & 255
    assert convert(status, uint256) != old, "bad-transition"
    word = (word & KEEP_ON_STATUS) | (convert(status, uint256) << 72) \
        | (convert(reason, uint256) << 80)
    self._cards[cardId].word = self._touched(word)
    log CardStatusChanged(
        cardId=cardId,
        memberId=callerId,
        oldStatus=convert(old, uint8),
        status=status,
        reason=reason,
    )


@external
def bindKey(cardId: bytes32, commitment: bytes32):
    """@notice Bind the holder's first key (its commitment), when the holder claims the card."""
    callerId: uint256 = 0
    word: uint256 = 0
    callerId, word = self._changeable(cardId)
    assert commitment != empty(bytes32), "zero-commitment"
    assert self._cards[cardId].holderKey == empty(bytes32), "key-bound"
    self._cards[cardId].holderKey = commitment
    self._cards[cardId].word = self._touched(word)
    log CardKeyBound(cardId=cardId, memberId=callerId, commitment=commitment)


@external
def rotateKey(cardId: bytes32, commitment: bytes32):
    """@notice Replace the holder's bound key (its commitment) from this block on."""
    callerId: uint256 = 0
    word: uint256 = 0
    callerId, word = self._changeable(cardId)
    assert commitment != empty(bytes32), "zero-commitment"
    previous: bytes32 = self._cards[cardId].holderKey
    assert previous != empty(bytes32), "key-unbound"
    assert previous != commitment, "same-key"
    self._cards[cardId].holderKey = commitment
    self._cards[cardId].word = self._touched(word)
    log CardKeyRotated(cardId=cardId, memberId=callerId, previous=previous, commitment=commitment)


@external
def setPortrait(cardId: bytes32, portrait: bytes32):
    """@notice Replace (or first record) the portrait commitment."""
    callerId: uint256 = 0
    word: uint256 = 0
    callerId, word = self._changeable(cardId)
    assert portrait != empty(bytes32), "zero-commitment"
    previous: bytes32 = self._cards[cardId].portrait
    assert previous != portrait, "same-portrait"
    self._cards[cardId].portrait = portrait
    self._cards[cardId].word = self._touched(word)
    log CardPortraitChanged(cardId=cardId, memberId=callerId, previous=previous, portrait=portrait)


@external
def setValidity(cardId: bytes32, validFrom: uint64, validUntil: uint64):
    """@notice Replace the validity window (e.g. a student card renewed for a year)."""
    callerId: uint256 = 0
    word: uint256 = 0
    callerId, word = self._changeable(cardId)
    self._checkValidity(validFrom, validUntil)
    word = (word & KEEP_ON_VALIDITY) | (convert(validFrom, uint256) << 96) \
        | (convert(validUntil, uint256) << 144)
    self._cards[cardId].word = self._touched(word)
    log CardValidityChanged(
        cardId=cardId, memberId=callerId, validFrom=validFrom, validUntil=validUntil
    )


# --- views -----------------------------------------------------------------------


@external
@view
def card(cardId: bytes32) -> CardView:
    """@notice Every field of a card, decoded; all 0 (status 0) for a card never issued."""
    c: Card = self._cards[cardId]
    w: uint256 = c.word
    return CardView(
        issuer=w & MASK64,
        kind=convert((w >> 64) & 255, uint8),
        status=convert((w >> 72) & 255, uint8),
        reason=convert((w >> 80) & 65535, uint16),
        validFrom=convert((w >> 96) & MASK48, uint64),
        validUntil=convert((w >> 144) & MASK48, uint64),
        changedBlock=(w >> 192) & MASK56,
        continued=w & CONTINUED_BIT != 0,
        holderKey=c.holderKey,
        portrait=c.portrait,
        predecessor=c.predecessor,
    )


@external
@view
def cardWords(cardIds: DynArray[bytes32, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """@notice The packed words of up to MAX_BATCH cards (0 for a card never issued)."""
    words: DynArray[uint256, MAX_BATCH] = []
    for cardId: bytes32 in cardIds:
        words.append(self._cards[cardId].word)
    return words


@external
@view
def holderKeyOf(cardId: bytes32) -> bytes32:
    """@notice The commitment to the holder's current key (0 until bound)."""
    return self._cards[cardId].holderKey
