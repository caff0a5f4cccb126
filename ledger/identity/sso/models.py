"""Tables of single sign-on: the relying parties an organisation registered, sign-ins waiting
for a card, authorization codes and access tokens.

Secrets (client secrets, codes, tokens, the browser binding of a sign-in) are kept as
SHA-256 hashes only. The card claims a sign-in disclosed live as long as its code or token,
encrypted (``ProviderKeys.seal_claims``); a spent code keeps its hash (to recognise a
replay) and loses its claims.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from ledger.store.columns import UTCDateTime, utcnow

__all__ = ["SsoAccessToken", "SsoClient", "SsoCode", "SsoSignIn"]


class SsoClient(SQLModel, table=True):
    """A relying party (OpenID Connect client) an organisation registered."""

    __tablename__ = "sso_client"
    __table_args__ = (
        CheckConstraint("auth_method IN ('client_secret_basic', 'client_secret_post', 'none')",
                        name="auth_method"),
        Index("ix_sso_client_org_id", "org_id"),
    )

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=120)
    org_id: str = Field(max_length=64)
    # None for a public client (auth_method "none": a native or browser app, PKCE alone).
    secret_hash: str | None = Field(default=None, max_length=64)
    auth_method: str = Field(max_length=32)
    redirect_uris_json: str = Field(sa_type=Text)
    # The pairwise subjects' sector (OpenID Connect Core 8.1): clients of one organisation
    # and one sector see the same `sub` for a person.
    sector: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SsoSignIn(SQLModel, table=True):
    """An authorization request waiting for the holder's card: the request as the client
    sent it (validated), the identity challenge that authenticates, the browser it binds."""

    __tablename__ = "sso_sign_in"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="status"),
        Index("ix_sso_sign_in_expires_at", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(max_length=64)
    params_json: str = Field(sa_type=Text)
    challenge_id: str = Field(max_length=32, unique=True)
    browser_hash: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SsoCode(SQLModel, table=True):
    """An authorization code: one use, minutes long, for one client and redirect URI."""

    __tablename__ = "sso_code"
    __table_args__ = (Index("ix_sso_code_expires_at", "expires_at"),)

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64)
    redirect_uri: str = Field(sa_type=Text)
    scope: str = Field(max_length=255)
    nonce: str | None = Field(default=None, max_length=255)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=16)
    subject: str = Field(max_length=64)
    card_id: str = Field(max_length=66)
    card_kind: str = Field(max_length=16)
    sealed_claims: bytes | None = Field(default=None, sa_type=LargeBinary)
    auth_time: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SsoAccessToken(SQLModel, table=True):
    """A bearer token for the UserInfo endpoint, from one code."""

    __tablename__ = "sso_access_token"
    __table_args__ = (Index("ix_sso_access_token_code_hash", "code_hash"),
                      Index("ix_sso_access_token_expires_at", "expires_at"))

    token_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64)
    code_hash: str = Field(max_length=64)
    scope: str = Field(max_length=255)
    subject: str = Field(max_length=64)
    card_kind: str = Field(max_length=16)
    sealed_claims: bytes = Field(sa_type=LargeBinary)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
