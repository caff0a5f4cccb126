"""standard wallets: OpenID4VCI access tokens and nonces, OpenID4VP presentation requests

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('oid4vci_token',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_oid4vci_token'))
    )
    with op.batch_alter_table('oid4vci_token', schema=None) as batch_op:
        batch_op.create_index('ix_oid4vci_token_code_hash', ['code_hash'], unique=False)

    op.create_table('oid4vc_nonce',
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('nonce_hash', name=op.f('pk_oid4vc_nonce'))
    )

    op.create_table('presentation_request',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('credential_type', sa.String(length=32), nullable=False),
    sa.Column('claims_json', sa.Text(), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_hash', sa.String(length=64), nullable=True),
    sa.Column('result_json', sa.Text(), nullable=True),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_presentation_request'))
    )
    with op.batch_alter_table('presentation_request', schema=None) as batch_op:
        batch_op.create_index('ix_presentation_request_org_id', ['org_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('presentation_request', schema=None) as batch_op:
        batch_op.drop_index('ix_presentation_request_org_id')
    op.drop_table('presentation_request')
    op.drop_table('oid4vc_nonce')
    with op.batch_alter_table('oid4vci_token', schema=None) as batch_op:
        batch_op.drop_index('ix_oid4vci_token_code_hash')
    op.drop_table('oid4vci_token')
