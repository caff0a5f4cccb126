"""shares: a short verification code a person can type (GET /verify)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# = ledger.credentials.service.VERIFY_CODE_ALPHABET (a migration does not import the code it
# migrates for: that code changes later, the migration must not)
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def upgrade() -> None:
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verify_code', sa.String(length=16), nullable=True))
    # Shares made before get a code too, so every live link can be typed in (random codes:
    # not in offline SQL, which has no rows to read).
    if not op.get_context().as_sql:
        share = sa.table('share', sa.column('id', sa.String), sa.column('verify_code', sa.String))
        bind = op.get_bind()
        for (share_id,) in bind.execute(sa.select(share.c.id)).all():
            code = "".join(secrets.choice(_ALPHABET) for _ in range(16))
            bind.execute(share.update().where(share.c.id == share_id).values(verify_code=code))
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.create_index('ix_share_verify_code', ['verify_code'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.drop_index('ix_share_verify_code')
        batch_op.drop_column('verify_code')
