"""integrity audit runs and their findings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:06:00.578460
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress_done", sa.BigInteger(), nullable=False),
        sa.Column("progress_total", sa.BigInteger(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("finding_count", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("registry_address", sa.String(length=42), nullable=True),
        sa.Column("from_block", sa.BigInteger(), nullable=True),
        sa.Column("head_block", sa.BigInteger(), nullable=True),
        sa.Column("index_block", sa.BigInteger(), nullable=True),
        sa.Column("report_json", sa.Text(), nullable=True),
        sa.Column("report_hash", sa.String(length=66), nullable=True),
        sa.Column("report_signature", sa.String(length=128), nullable=True),
        sa.Column("report_batch_id", sa.String(length=36), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')",
                           name=op.f("ck_audit_run_status")),
        sa.CheckConstraint("progress_done >= 0 AND progress_total >= 0",
                           name=op.f("ck_audit_run_progress_non_negative")),
        sa.CheckConstraint("report_hash = lower(report_hash)",
                           name=op.f("ck_audit_run_report_hash_lower")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_run")),
    )
    with op.batch_alter_table("audit_run", schema=None) as batch_op:
        batch_op.create_index("ix_audit_run_status", ["status"], unique=False)

    op.create_table(
        "audit_finding",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('offchain_data_changed', 'item_missing', 'batch_not_anchored', "
            "'status_differs', 'event_missing_from_index')",
            name=op.f("ck_audit_finding_kind")),
        sa.ForeignKeyConstraint(["run_id"], ["audit_run.id"],
                                name=op.f("fk_audit_finding_run_id_audit_run"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_audit_finding")),
        sa.UniqueConstraint("run_id", "kind", "item", name=op.f("uq_audit_finding_run_id_kind_item")),
    )


def downgrade() -> None:
    op.drop_table("audit_finding")
    with op.batch_alter_table("audit_run", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_run_status")
    op.drop_table("audit_run")
