"""identity card state: the indexer's projection of the registry's events

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:40:00

Cards issued before this revision have no row; the projection reads those from the chain
(a missing row is never taken for "no such card"), so nothing needs replaying here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('identity_card_state',
    sa.Column('card_id', sa.String(length=66), nullable=False),
    sa.Column('word', sa.String(length=66), nullable=False),
    sa.Column('holder_key', sa.String(length=66), nullable=True),
    sa.Column('portrait', sa.String(length=66), nullable=True),
    sa.Column('predecessor', sa.String(length=66), nullable=True),
    sa.CheckConstraint('card_id = lower(card_id)', name=op.f('ck_identity_card_state_card_id_lower')),
    sa.PrimaryKeyConstraint('card_id', name=op.f('pk_identity_card_state'))
    )


def downgrade() -> None:
    op.drop_table('identity_card_state')
