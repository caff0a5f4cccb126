"""signatures

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signature_record',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('leaf_hash', sa.String(length=66), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('signer_kind', sa.String(length=8), nullable=False),
    sa.Column('signer', sa.String(length=128), nullable=False),
    sa.Column('member_org', sa.String(length=64), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("format IN ('pdf', 'jws', 'sm2')", name=op.f('ck_signature_record_format')),
    sa.CheckConstraint("signer_kind IN ('member', 'card')", name=op.f('ck_signature_record_signer_kind')),
    sa.CheckConstraint('leaf_hash = lower(leaf_hash)', name=op.f('ck_signature_record_leaf_hash_lower')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signature_record')),
    sa.UniqueConstraint('leaf_hash', name=op.f('uq_signature_record_leaf_hash'))
    )
    op.create_index('ix_signature_record_batch_id', 'signature_record', ['batch_id'], unique=False)
    op.create_index('ix_signature_record_document_sha256', 'signature_record', ['document_sha256'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_signature_record_document_sha256', table_name='signature_record')
    op.drop_index('ix_signature_record_batch_id', table_name='signature_record')
    op.drop_table('signature_record')
