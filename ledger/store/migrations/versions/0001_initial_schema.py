"""Initial schema: chain_event, indexer_cursor, anchor_batch, anchor_leaf.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Plain SQLAlchemy types only (no application imports), so this file keeps working
whatever later happens to ledger/store/models.py. Every name is wrapped in op.f(): it is
final, not fed through the metadata's naming convention a second time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEX32 = sa.String(length=66)
ADDRESS = sa.String(length=42)
UTC_TIME = sa.DateTime(timezone=True)


def _lower(table: str, column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} = lower({column})", name=op.f(f"ck_{table}_{column}_lower"))


def upgrade() -> None:
    op.create_table(
        "anchor_batch",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("root", HEX32, nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("metadata_hash", HEX32, nullable=True),
        sa.Column("member_org", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("tx_hash", HEX32, nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_time", UTC_TIME, nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("contract_address", ADDRESS, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'submitted', 'anchored', 'failed')",
            name=op.f("ck_anchor_batch_status"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('submitted', 'anchored') OR tx_hash IS NOT NULL",
            name=op.f("ck_anchor_batch_tx_hash_when_submitted"),
        ),
        sa.CheckConstraint(
            "status <> 'anchored' OR (block_number IS NOT NULL AND chain_id IS NOT NULL"
            " AND contract_address IS NOT NULL)",
            name=op.f("ck_anchor_batch_block_when_anchored"),
        ),
        sa.CheckConstraint("leaf_count > 0", name=op.f("ck_anchor_batch_leaf_count_positive")),
        _lower("anchor_batch", "root"),
        _lower("anchor_batch", "metadata_hash"),
        _lower("anchor_batch", "tx_hash"),
        _lower("anchor_batch", "contract_address"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchor_batch")),
        sa.UniqueConstraint("root", name=op.f("uq_anchor_batch_root")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_anchor_batch_idempotency_key")),
    )
    op.create_index(op.f("ix_anchor_batch_member_org"), "anchor_batch", ["member_org"])
    op.create_index(op.f("ix_anchor_batch_status"), "anchor_batch", ["status"])

    op.create_table(
        "chain_event",
        # BIGINT on PostgreSQL; SQLite auto-increments only an INTEGER primary key
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", ADDRESS, nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", HEX32, nullable=False),
        sa.Column("block_time", UTC_TIME, nullable=False),
        sa.Column("tx_hash", HEX32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("args_json", sa.Text(), nullable=False),
        _lower("chain_event", "contract"),
        _lower("chain_event", "tx_hash"),
        _lower("chain_event", "block_hash"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_event")),
        sa.UniqueConstraint(
            "chain_id", "tx_hash", "log_index", name=op.f("uq_chain_event_chain_id_tx_hash_log_index")
        ),
    )
    op.create_index(op.f("ix_chain_event_contract_event"), "chain_event", ["contract", "event"])
    op.create_index(op.f("ix_chain_event_block_number"), "chain_event", ["block_number"])

    op.create_table(
        "indexer_cursor",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block_hash", HEX32, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        _lower("indexer_cursor", "last_block_hash"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_cursor")),
    )

    op.create_table(
        "anchor_leaf",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("leaf_hash", HEX32, nullable=False),
        sa.Column("proof_json", sa.Text(), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_anchor_leaf_position_non_negative")),
        _lower("anchor_leaf", "leaf_hash"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["anchor_batch.id"],
            name=op.f("fk_anchor_leaf_batch_id_anchor_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "position", name=op.f("pk_anchor_leaf")),
        sa.UniqueConstraint("leaf_hash", name=op.f("uq_anchor_leaf_leaf_hash")),
    )


def downgrade() -> None:
    op.drop_table("anchor_leaf")
    op.drop_table("indexer_cursor")
    op.drop_index(op.f("ix_chain_event_block_number"), table_name="chain_event")
    op.drop_index(op.f("ix_chain_event_contract_event"), table_name="chain_event")
    op.drop_table("chain_event")
    op.drop_index(op.f("ix_anchor_batch_status"), table_name="anchor_batch")
    op.drop_index(op.f("ix_anchor_batch_member_org"), table_name="anchor_batch")
    op.drop_table("anchor_batch")
