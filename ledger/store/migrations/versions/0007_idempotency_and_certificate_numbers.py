"""request fingerprints of idempotent batches; certificate numbers unique per issuer

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("anchor_batch") as batch:
        batch.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "certificate_number",
        sa.Column("issuer_org", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("issuer_org", "type", "number", name=op.f("pk_certificate_number")),
    )
    op.create_index(op.f("ix_certificate_number_credential_id"), "certificate_number", ["credential_id"],
                    unique=False)
    if not context.is_offline_mode():  # offline SQL has no rows to read
        _claim_existing_numbers()


def downgrade() -> None:
    op.drop_index(op.f("ix_certificate_number_credential_id"), table_name="certificate_number")
    op.drop_table("certificate_number")
    with op.batch_alter_table("anchor_batch") as batch:
        batch.drop_column("request_hash")


def _claim_existing_numbers() -> None:
    """Credentials issued before this revision claim their certificate numbers: the number is
    a disclosure (``certificateNumber``) of the stored SD-JWT. Self-contained on purpose: a
    migration must not import today's application code. Of two live credentials that share
    a number (possible before this revision), the older keeps it."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, issuer_org, type, sd_jwt FROM credential "
        "WHERE type IN ('graduation', 'degree') AND status <> 'superseded' ORDER BY created_at, id"))
    claimed: set[tuple[str, str, str]] = set()
    for credential_id, issuer_org, ctype, sd_jwt in rows:
        number = _disclosed(sd_jwt, "certificateNumber")
        if not isinstance(number, str) or (issuer_org, ctype, number) in claimed:
            continue
        claimed.add((issuer_org, ctype, number))
        conn.execute(sa.text("INSERT INTO certificate_number (issuer_org, type, number, credential_id) "
                             "VALUES (:o, :t, :n, :c)"), {"o": issuer_org, "t": ctype, "n": number,
                                                          "c": credential_id})


def _disclosed(sd_jwt: str, name: str) -> object:
    for encoded in sd_jwt.split("~")[1:]:
        if not encoded:
            continue
        try:
            item = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except ValueError:
            continue
        if isinstance(item, list) and len(item) == 3 and item[1] == name:
            return item[2]
    return None
