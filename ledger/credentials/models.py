"""Tables of credentials: issued credentials, their claim codes, and holders' shares.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, Text
from sqlmodel import Field, SQLModel

from ledger.store.columns import HEX32, UTCDateTime, lowercase, utcnow

__all__ = ["CertificateNumber", "ClaimCode", "CredentialRecord", "Oid4vcNonce", "Oid4vciToken",
           "PresentationRequest", "Share"]


class CredentialRecord(SQLModel, table=True):
    """An issued credential: the full SD-JWT (all disclosures), its leaf and its status.

    The leaf is keccak256 of the canonical issuer-signed payload without `cnf`, so binding
    the credential to a holder key at redemption does not change what was anchored.
    """

    __tablename__ = "credential"
    __table_args__ = (
        ForeignKeyConstraint(["batch_id"], ["anchor_batch.id"]),
        Index("ix_credential_issuer_org", "issuer_org"),
        Index("ix_credential_batch_id", "batch_id"),
        Index("ix_credential_student_id", "issuer_org", "student_id"),
        lowercase("leaf_hash"),
    )

    id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=32)
    issuer_org: str = Field(max_length=64)
    batch_id: str = Field(max_length=36)
    position: int
    leaf_hash: str = Field(max_length=HEX32, unique=True)
    student_id: str | None = Field(default=None, max_length=64)
    sd_jwt: str = Field(sa_type=Text)
    valid_from: datetime = Field(sa_type=UTCDateTime)
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="valid", max_length=16)
    status_reason: int | None = None
    status_note: str | None = Field(default=None, max_length=500)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    supersedes: str | None = Field(default=None, max_length=64)
    superseded_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CertificateNumber(SQLModel, table=True):
    """A certificate number in use: one live credential per issuer, type and number. A
    correction hands the number on to the credential that supersedes the old one."""

    __tablename__ = "certificate_number"
    __table_args__ = (Index("ix_certificate_number_credential_id", "credential_id"),)

    issuer_org: str = Field(primary_key=True, max_length=64)
    type: str = Field(primary_key=True, max_length=32)
    number: str = Field(primary_key=True, max_length=64)
    credential_id: str = Field(max_length=64)


class ClaimCode(SQLModel, table=True):
    """A one-time code a holder redeems for a credential; only its hash is kept."""

    __tablename__ = "claim_code"
    __table_args__ = (Index("ix_claim_code_credential_id", "credential_id"),)

    code_hash: str = Field(primary_key=True, max_length=64)
    credential_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    redeemed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    holder_jwk: str | None = Field(default=None, sa_type=Text)


class Share(SQLModel, table=True):
    """A presentation a holder shares by link and QR code, until it expires or is withdrawn."""

    __tablename__ = "share"
    __table_args__ = (Index("ix_share_verify_code", "verify_code", unique=True),)

    id: str = Field(primary_key=True, max_length=32)
    # The short code a person types on GET /verify instead of scanning (16 characters of
    # ledger.credentials.service.VERIFY_CODE_ALPHABET; null only in a row being migrated).
    verify_code: str | None = Field(default=None, max_length=16)
    presentation: str = Field(sa_type=Text)
    anchor_json: str = Field(sa_type=Text)
    # The key-binding audience the presentation was made for (this service's URL).
    audience: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdraw_token_hash: str = Field(max_length=64)


class Oid4vciToken(SQLModel, table=True):
    """An OpenID4VCI access token, got for a claim code (the pre-authorised code); only its
    hash is kept. A new token for the same code replaces the old one."""

    __tablename__ = "oid4vci_token"
    __table_args__ = (Index("ix_oid4vci_token_code_hash", "code_hash"),)

    token_hash: str = Field(primary_key=True, max_length=64)
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class Oid4vcNonce(SQLModel, table=True):
    """A c_nonce of the OpenID4VCI nonce endpoint: a proof of possession may use it once."""

    __tablename__ = "oid4vc_nonce"

    nonce_hash: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PresentationRequest(SQLModel, table=True):
    """An OpenID4VP request a member organisation made, and the verdict on the wallet's answer."""

    __tablename__ = "presentation_request"
    __table_args__ = (Index("ix_presentation_request_org_id", "org_id"),)

    id: str = Field(primary_key=True, max_length=32)
    org_id: str = Field(max_length=64)
    credential_type: str = Field(max_length=32)
    claims_json: str = Field(sa_type=Text)
    nonce: str = Field(max_length=64)
    client_id: str = Field(max_length=400)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The wallet's answer: its hash (a replay is recognised), the verdict, or why it was refused.
    response_hash: str | None = Field(default=None, max_length=64)
    result_json: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, max_length=64)
