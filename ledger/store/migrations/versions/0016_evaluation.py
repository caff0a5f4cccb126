"""evaluation: frameworks, terms, classes, teachers' classes, records, evidence, objections,
scores and sealed term records; the audit's finding kind evaluation_record_changed

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = "kind IN ('offchain_data_changed', 'item_missing', 'batch_not_anchored', 'status_differs', 'event_missing_from_index')"
_KINDS_AFTER = "kind IN ('offchain_data_changed', 'item_missing', 'batch_not_anchored', 'status_differs', 'event_missing_from_index', 'evaluation_record_changed')"


def _finding_table(check: str) -> sa.Table:
    """audit_finding as it stands (SQLite rebuilds the table to change a CHECK; offline, from this)."""
    return sa.Table(
        "audit_finding",
        sa.MetaData(),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.CheckConstraint(check, name=op.f("ck_audit_finding_kind")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["audit_run.id"], name="fk_audit_finding_run_id_audit_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_audit_finding"),
        sa.UniqueConstraint("run_id", "kind", "item", name="uq_audit_finding_run_id_kind_item"),
    )


def _finding_kinds(before: str, after: str) -> None:
    with op.batch_alter_table("audit_finding", copy_from=_finding_table(before)) as batch_op:
        batch_op.drop_constraint(op.f("ck_audit_finding_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_audit_finding_kind"), after)


def upgrade() -> None:
    op.create_table(
        "evaluation_framework",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_org", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("school_year", sa.String(length=9), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.String(length=36), nullable=True),
        sa.Column("layer_json", sa.Text(), nullable=True),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('bureau', 'school')", name=op.f("ck_evaluation_framework_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_framework")),
        sa.UniqueConstraint(
            "owner_org",
            "school_year",
            "version",
            name=op.f("uq_evaluation_framework_owner_org_school_year_version"),
        ),
    )
    op.create_table(
        "evaluation_term",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("school_org", sa.String(length=64), nullable=False),
        sa.Column("term", sa.String(length=11), nullable=False),
        sa.Column("framework_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'sealing', 'sealed')", name=op.f("ck_evaluation_term_status")),
        sa.ForeignKeyConstraint(
            ["framework_id"],
            ["evaluation_framework.id"],
            name=op.f("fk_evaluation_term_framework_id_evaluation_framework"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_term")),
        sa.UniqueConstraint("school_org", "term", name=op.f("uq_evaluation_term_school_org_term")),
    )
    op.create_table(
        "evaluation_class",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("term_id", sa.String(length=36), nullable=False),
        sa.Column("class_name", sa.String(length=120), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("notice_from", sa.Date(), nullable=True),
        sa.Column("notice_until", sa.Date(), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "stage IN ('recording', 'notice', 'locked')", name=op.f("ck_evaluation_class_stage")
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["evaluation_term.id"], name=op.f("fk_evaluation_class_term_id_evaluation_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_class")),
        sa.UniqueConstraint("term_id", "class_name", name=op.f("uq_evaluation_class_term_id_class_name")),
    )
    op.create_table(
        "evaluation_record",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("term_id", sa.String(length=36), nullable=False),
        sa.Column("class_name", sa.String(length=120), nullable=False),
        sa.Column("student_card", sa.String(length=66), nullable=False),
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("indicator_code", sa.String(length=40), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        sa.Column("teacher_card", sa.String(length=66), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("sealed_content", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "author_role IN ('teacher', 'student')", name=op.f("ck_evaluation_record_author_role")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'selected', 'not_selected', 'in_notice', 'objected', 'locked')",
            name=op.f("ck_evaluation_record_status"),
        ),
        sa.CheckConstraint(
            "student_card = lower(student_card)", name=op.f("ck_evaluation_record_student_card_lower")
        ),
        sa.CheckConstraint(
            "teacher_card = lower(teacher_card)", name=op.f("ck_evaluation_record_teacher_card_lower")
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["evaluation_term.id"], name=op.f("fk_evaluation_record_term_id_evaluation_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_record")),
    )
    op.create_index(
        "ix_evaluation_record_term_student", "evaluation_record", ["term_id", "student_card"], unique=False
    )
    op.create_table(
        "evaluation_score",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("term_id", sa.String(length=36), nullable=False),
        sa.Column("class_name", sa.String(length=120), nullable=False),
        sa.Column("student_card", sa.String(length=66), nullable=False),
        sa.Column("indicator_code", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=8), nullable=False),
        sa.Column("teacher_card", sa.String(length=66), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "student_card = lower(student_card)", name=op.f("ck_evaluation_score_student_card_lower")
        ),
        sa.CheckConstraint(
            "teacher_card = lower(teacher_card)", name=op.f("ck_evaluation_score_teacher_card_lower")
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["evaluation_term.id"], name=op.f("fk_evaluation_score_term_id_evaluation_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_score")),
        sa.UniqueConstraint(
            "term_id",
            "student_card",
            "indicator_code",
            name=op.f("uq_evaluation_score_term_id_student_card_indicator_code"),
        ),
    )
    op.create_table(
        "evaluation_seal",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("term_id", sa.String(length=36), nullable=False),
        sa.Column("student_card", sa.String(length=66), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=66), nullable=False),
        sa.Column("leaf_hash", sa.String(length=66), nullable=False),
        sa.Column("sealed_document", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("leaf_hash = lower(leaf_hash)", name=op.f("ck_evaluation_seal_leaf_hash_lower")),
        sa.CheckConstraint(
            "student_card = lower(student_card)", name=op.f("ck_evaluation_seal_student_card_lower")
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["evaluation_term.id"], name=op.f("fk_evaluation_seal_term_id_evaluation_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_seal")),
        sa.UniqueConstraint("leaf_hash", name=op.f("uq_evaluation_seal_leaf_hash")),
        sa.UniqueConstraint("term_id", "student_card", name=op.f("uq_evaluation_seal_term_id_student_card")),
    )
    op.create_index("ix_evaluation_seal_batch_id", "evaluation_seal", ["batch_id"], unique=False)
    op.create_table(
        "evaluation_teaching",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("term_id", sa.String(length=36), nullable=False),
        sa.Column("teacher_card", sa.String(length=66), nullable=False),
        sa.Column("class_name", sa.String(length=120), nullable=False),
        sa.CheckConstraint(
            "teacher_card = lower(teacher_card)", name=op.f("ck_evaluation_teaching_teacher_card_lower")
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["evaluation_term.id"], name=op.f("fk_evaluation_teaching_term_id_evaluation_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_teaching")),
        sa.UniqueConstraint(
            "term_id",
            "teacher_card",
            "class_name",
            name=op.f("uq_evaluation_teaching_term_id_teacher_card_class_name"),
        ),
    )
    op.create_table(
        "evaluation_evidence",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("evidence_type", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sealed_file", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_name", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["evaluation_record.id"],
            name=op.f("fk_evaluation_evidence_record_id_evaluation_record"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_evidence")),
    )
    op.create_index("ix_evaluation_evidence_record_id", "evaluation_evidence", ["record_id"], unique=False)
    op.create_table(
        "evaluation_objection",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("raised_by", sa.String(length=16), nullable=False),
        sa.Column("sealed_reason", sa.LargeBinary(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("sealed_note", sa.LargeBinary(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('kept', 'amended', 'withdrawn')",
            name=op.f("ck_evaluation_objection_outcome"),
        ),
        sa.CheckConstraint(
            "raised_by IN ('student', 'parent')", name=op.f("ck_evaluation_objection_raised_by")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["evaluation_record.id"],
            name=op.f("fk_evaluation_objection_record_id_evaluation_record"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_objection")),
    )
    op.create_index("ix_evaluation_objection_record_id", "evaluation_objection", ["record_id"], unique=False)

    _finding_kinds(_KINDS_BEFORE, _KINDS_AFTER)


def downgrade() -> None:
    _finding_kinds(_KINDS_AFTER, _KINDS_BEFORE)
    op.drop_index("ix_evaluation_objection_record_id", table_name="evaluation_objection")
    op.drop_table("evaluation_objection")
    op.drop_index("ix_evaluation_evidence_record_id", table_name="evaluation_evidence")
    op.drop_table("evaluation_evidence")
    op.drop_table("evaluation_teaching")
    op.drop_index("ix_evaluation_seal_batch_id", table_name="evaluation_seal")
    op.drop_table("evaluation_seal")
    op.drop_table("evaluation_score")
    op.drop_index("ix_evaluation_record_term_student", table_name="evaluation_record")
    op.drop_table("evaluation_record")
    op.drop_table("evaluation_class")
    op.drop_table("evaluation_term")
    op.drop_table("evaluation_framework")
