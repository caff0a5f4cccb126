"""Tables of signatures: every signature this node timestamped, by its leaf.

The leaf is anchored alone (a batch of one), so a verifier finds its anchor on chain from
the signature itself; this table is what the node keeps of it: which file (its SHA-256),
in which form, who signed (an organisation or a card) and which organisation anchored it.
No personal data: a card is named by its opaque id.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from ledger.store.columns import HEX32, UTCDateTime, lowercase, utcnow

__all__ = ["SignatureRecord"]


class SignatureRecord(SQLModel, table=True):
    __tablename__ = "signature_record"
    __table_args__ = (
        CheckConstraint("format IN ('pdf', 'jws', 'sm2')", name="format"),
        CheckConstraint("signer_kind IN ('member', 'card')", name="signer_kind"),
        Index("ix_signature_record_batch_id", "batch_id"),
        Index("ix_signature_record_document_sha256", "document_sha256"),
        lowercase("leaf_hash"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    leaf_hash: str = Field(max_length=HEX32, unique=True)
    format: str = Field(max_length=8)
    signer_kind: str = Field(max_length=8)
    signer: str = Field(max_length=128, description="the organisation's id, or the card's id")
    member_org: str = Field(max_length=64, description="the organisation that anchored it")
    document_sha256: str = Field(max_length=64)
    batch_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
