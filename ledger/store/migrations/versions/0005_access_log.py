"""access log: hash-chained rows, their head, anchored checkpoints

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ZERO_HASH = "0x" + "00" * 32


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("resource_kind", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=True),
        sa.Column("client", sa.String(length=128), nullable=True),
        sa.Column("prev_hash", sa.String(length=66), nullable=False),
        sa.Column("row_hash", sa.String(length=66), nullable=False),
        sa.CheckConstraint("seq > 0", name=op.f("ck_access_log_seq_positive")),
        sa.CheckConstraint("prev_hash = lower(prev_hash)", name=op.f("ck_access_log_prev_hash_lower")),
        sa.CheckConstraint("row_hash = lower(row_hash)", name=op.f("ck_access_log_row_hash_lower")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_access_log")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index("ix_access_log_resource", ["resource_kind", "resource_id"], unique=False)
        batch_op.create_index("ix_access_log_actor", ["actor"], unique=False)

    head = op.create_table(
        "access_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_access_log_head_single_row")),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_access_log_head_seq_non_negative")),
        sa.CheckConstraint("hash = lower(hash)", name=op.f("ck_access_log_head_hash_lower")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log_head")),
    )
    # The head exists from the start, so that appending only ever locks and updates it.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": ZERO_HASH}])

    op.create_table(
        "access_log_checkpoint",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("head_hash", sa.String(length=66), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("seq > 0", name=op.f("ck_access_log_checkpoint_seq_positive")),
        sa.CheckConstraint("head_hash = lower(head_hash)",
                           name=op.f("ck_access_log_checkpoint_head_hash_lower")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["anchor_batch.id"], name=op.f("fk_access_log_checkpoint_batch_id_anchor_batch")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_access_log_checkpoint")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_access_log_checkpoint_batch_id")),
    )


def downgrade() -> None:
    op.drop_table("access_log_checkpoint")
    op.drop_table("access_log_head")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_actor")
        batch_op.drop_index("ix_access_log_resource")

    op.drop_table("access_log")
