"""Tables of identity cards: people (their wrapped data keys), cards, portraits, rosters,
recognition challenges, documents encrypted to holders and the holder proofs spent, and exam
sessions with their candidates, proctor links and check-ins.

Personal data is encrypted (``ledger.identity.personal``): a person's fields and portrait
under the person's data key, which ``identity_person`` holds wrapped by the node's master
key. Deleting that row erases the person: their ciphertexts stay but open no more, and the
chain holds only commitments. Person keys (HMACs of national numbers) are the only link
between a person's cards; one active or suspended card per person and kind.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ledger.store.columns import HEX32, UTCDateTime, lowercase, utcnow

__all__ = ["ExamCandidate", "ExamCheckIn", "ExamProctorLink", "ExamSession", "IdentityCard",
           "IdentityCardState", "IdentityChallenge", "IdentityDocument", "IdentityHolderProof",
           "IdentityPerson", "IdentityPortrait", "IdentityRoster"]

_LIVE = "status IN ('active', 'suspended')"


class IdentityPerson(SQLModel, table=True):
    """A person, by person key: their data key, wrapped by the node's master key."""

    __tablename__ = "identity_person"

    person_key: str = Field(primary_key=True, max_length=64)
    wrapped_key: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdentityRoster(SQLModel, table=True):
    """One request that issued cards (a roster, or one card): for idempotency and progress."""

    __tablename__ = "identity_roster"
    __table_args__ = (CheckConstraint("status IN ('pending', 'issued', 'failed')", name="status"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    issuer_org: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    count: int
    status: str = Field(default="pending", max_length=16)
    idempotency_key: str | None = Field(default=None, max_length=128, unique=True)
    request_hash: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdentityCard(SQLModel, table=True):
    """A card: where it is on chain (``chain_state``), whose it is, and its sealed content."""

    __tablename__ = "identity_card"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'revoked', 'ended')", name="status"),
        CheckConstraint("kind IN ('student', 'teacher', 'graduate')", name="kind"),
        CheckConstraint("chain_state IN ('pending', 'issued')", name="chain_state"),
        # one live card per person and kind, at any school
        Index("uq_identity_card_live_person_kind", "person_key", "kind", unique=True,
              sqlite_where=text(_LIVE), postgresql_where=text(_LIVE)),
        Index("ix_identity_card_issuer_org", "issuer_org"),
        Index("ix_identity_card_roster_id", "roster_id"),
        Index("ix_identity_card_person_key", "person_key"),
        lowercase("id"),
        lowercase("predecessor"),
    )

    id: str = Field(primary_key=True, max_length=HEX32)  # the opaque card id on chain
    kind: str = Field(max_length=16)
    issuer_org: str = Field(max_length=64)
    roster_id: str = Field(max_length=36)
    position: int
    person_key: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16)
    status_reason: int = 0
    chain_state: str = Field(default="pending", max_length=16)
    predecessor: str | None = Field(default=None, max_length=HEX32)
    # The card's fields (name, numbers, grade...) as JSON, encrypted under the person's key.
    sealed_fields: bytes = Field(sa_type=LargeBinary)
    # The salts of the commitments on chain: the portrait's (secret to issuer and holder,
    # sealed), and the holder key's (it travels in the card).
    sealed_portrait_salt: bytes = Field(sa_type=LargeBinary)
    key_salt: str = Field(max_length=HEX32)
    portrait_commitment: str = Field(max_length=HEX32)
    holder_jwk: str | None = Field(default=None, sa_type=Text)
    # The holder's X25519 public key (JWK) that documents are encrypted to (documents.py);
    # set at claim time, replaced (or cleared) by a claim that rotates the key.
    encryption_jwk: str | None = Field(default=None, sa_type=Text)
    # Set when a claim code is handed out; cleared once redeemed (re-issued to rotate a key).
    claim_code_hash: str | None = Field(default=None, max_length=64, unique=True)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    valid_from: datetime = Field(sa_type=UTCDateTime)
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdentityPortrait(SQLModel, table=True):
    """A card's portrait file, encrypted under its person's key."""

    __tablename__ = "identity_portrait"

    card_id: str = Field(primary_key=True, max_length=HEX32)
    media_type: str = Field(max_length=32)
    sealed_photo: bytes = Field(sa_type=LargeBinary)


class IdentityChallenge(SQLModel, table=True):
    """A relying party's challenge: answered once, by a key-bound presentation of a card."""

    __tablename__ = "identity_challenge"

    id: str = Field(primary_key=True, max_length=32)
    nonce: str = Field(max_length=64, unique=True)
    audience: str = Field(max_length=300)
    claims_json: str = Field(sa_type=Text)
    requested_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_card: str | None = Field(default=None, max_length=HEX32)
    # The holder's answer, when the wallet sends it here (it scanned the challenge's QR code)
    # rather than handing it to the relying party; checked when the relying party asks.
    answer: str | None = Field(default=None, sa_type=Text)
    # The relying party asks the wallet for the portrait photo file too (an exam's proctor).
    wants_photo: bool = False
    # The photo the wallet sent with its answer, sealed under a data key of its own
    # (PersonalCipher.seal_transient); cleared once the challenge is spent or expired.
    answer_photo: bytes | None = Field(default=None, sa_type=LargeBinary)


class IdentityDocument(SQLModel, table=True):
    """A document an organisation sent to a card's holder: only its JWE (the plaintext and
    its file name are encrypted to the holder's key; the node cannot open either)."""

    __tablename__ = "identity_document"
    __table_args__ = (Index("ix_identity_document_card_id", "card_id", "created_at"), lowercase("card_id"))

    id: str = Field(primary_key=True, max_length=32)
    card_id: str = Field(max_length=HEX32)
    sender_org: str = Field(max_length=64)
    media_type: str = Field(max_length=127)
    size: int = Field(description="bytes of the plaintext")
    kid: str = Field(max_length=64)  # RFC 7638 thumbprint of the key it is encrypted to
    jwe: str = Field(sa_type=Text)  # compact JWE of the document
    name_jwe: str = Field(sa_type=Text)  # compact JWE of the file name
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdentityHolderProof(SQLModel, table=True):
    """A holder proof (holder_auth.py) already used: its jti, kept until the proof would
    have expired anyway, so that it cannot be replayed."""

    __tablename__ = "identity_holder_proof"
    __table_args__ = (Index("ix_identity_holder_proof_expires_at", "expires_at"),)

    jti: str = Field(primary_key=True, max_length=64)
    card_id: str = Field(max_length=HEX32)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class IdentityCardState(SQLModel, table=True):
    """The registry's state of a card, projected by the indexer from the registry's events
    (``ledger.identity.projection``) so that recognising a holder reads a row instead of
    running the contract. `word` is the contract's packed word, as 0x-hex."""

    __tablename__ = "identity_card_state"
    __table_args__ = (lowercase("card_id"),)

    card_id: str = Field(primary_key=True, max_length=HEX32)
    word: str = Field(max_length=HEX32)
    holder_key: str | None = Field(default=None, max_length=HEX32)
    portrait: str | None = Field(default=None, max_length=HEX32)
    predecessor: str | None = Field(default=None, max_length=HEX32)


class ExamSession(SQLModel, table=True):
    """An exam sitting an organisation (school or partner) holds: where, when, who may sit it."""

    __tablename__ = "exam_session"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="window"),
                      Index("ix_exam_session_organiser_org", "organiser_org"))

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    organiser_org: str = Field(max_length=64)
    name: str = Field(max_length=200)
    room: str = Field(max_length=100)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExamCandidate(SQLModel, table=True):
    """A candidate of a session, by card; checked in at most once (``checked_in_at``)."""

    __tablename__ = "exam_candidate"
    __table_args__ = (UniqueConstraint("exam_id", "card_id"), UniqueConstraint("exam_id", "candidate_number"),
                      lowercase("card_id"))

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    exam_id: str = Field(max_length=36, foreign_key="exam_session.id")
    position: int
    card_id: str = Field(max_length=HEX32)
    candidate_number: str = Field(max_length=32)
    seat: str | None = Field(default=None, max_length=16)
    checked_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    check_in_id: str | None = Field(default=None, max_length=36)


class ExamProctorLink(SQLModel, table=True):
    """A proctor's bearer link to a session's check-in page: only the token's SHA-256 is kept."""

    __tablename__ = "exam_proctor_link"
    __table_args__ = (Index("ix_exam_proctor_link_exam_id", "exam_id"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    exam_id: str = Field(max_length=36, foreign_key="exam_session.id")
    token_hash: str = Field(max_length=64, unique=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class ExamCheckIn(SQLModel, table=True):
    """One check-in attempt at a session's desk: the challenge the proctor showed, and once
    the wallet answered, the card, the candidate and the verdict. ``sealed_view`` holds what
    the proctor was shown of a checked-in candidate (name and the photo the wallet sent),
    sealed, and only until the session ends."""

    __tablename__ = "exam_check_in"
    __table_args__ = (
        CheckConstraint("state IN ('waiting', 'checking', 'decided')", name="state"),
        Index("ix_exam_check_in_exam_id", "exam_id"),
        lowercase("card_id"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    exam_id: str = Field(max_length=36, foreign_key="exam_session.id")
    proctor_link_id: str = Field(max_length=36)
    challenge_id: str = Field(max_length=32, unique=True)
    state: str = Field(default="waiting", max_length=16)
    card_id: str | None = Field(default=None, max_length=HEX32)
    candidate_id: str | None = Field(default=None, max_length=36)
    verdict: str | None = Field(default=None, max_length=32)
    failures_json: str | None = Field(default=None, sa_type=Text)
    sealed_view: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
