"""Tables of comprehensive quality evaluation: published frameworks (immutable versions), a
school's terms and their classes (where the procedure stands), teachers' classes, factual
records with their evidence files and objections, indicator scores, and each student's
sealed term record.

Personal content (a record's title and text, an evidence file and its name, an objection's
reason and resolution note, a sealed term record) is encrypted under the student's data key
(``ledger.identity.personal``), so erasing the person erases it too. Scores and statuses are
plain: they name a student only by the opaque card id.

Any change here needs a new migration in ledger/store/migrations/versions (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.store.columns import HEX32, UTCDateTime, lowercase, utcnow

__all__ = [
    "EvaluationClass",
    "EvaluationEvidence",
    "EvaluationFramework",
    "EvaluationObjection",
    "EvaluationRecord",
    "EvaluationScore",
    "EvaluationSeal",
    "EvaluationTeaching",
    "EvaluationTerm",
]

_RECORD_STATUSES = "'draft', 'selected', 'not_selected', 'in_notice', 'objected', 'locked'"


def _id() -> str:
    return str(uuid.uuid4())


class EvaluationFramework(SQLModel, table=True):
    """A published version of an indicator system: never updated, a change is a new version."""

    __tablename__ = "evaluation_framework"
    __table_args__ = (
        UniqueConstraint("owner_org", "school_year", "version"),
        CheckConstraint("kind IN ('bureau', 'school')", name="kind"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    owner_org: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    school_year: str = Field(max_length=9)
    version: int
    base_id: str | None = Field(default=None, max_length=36)  # a school's: the bureau version it layers on
    layer_json: str | None = Field(default=None, sa_type=Text)  # what the school added (canonical)
    content_json: str = Field(sa_type=Text)  # the effective framework (canonical JSON)
    content_sha256: str = Field(max_length=64)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EvaluationTerm(SQLModel, table=True):
    """A school's evaluation term under one framework version; sealed once, at its end."""

    __tablename__ = "evaluation_term"
    __table_args__ = (
        UniqueConstraint("school_org", "term"),
        CheckConstraint("status IN ('open', 'sealing', 'sealed')", name="status"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    school_org: str = Field(max_length=64)
    term: str = Field(max_length=11)  # 2025-2026-1
    framework_id: str = Field(max_length=36, foreign_key="evaluation_framework.id")
    status: str = Field(default="open", max_length=16)
    batch_id: str | None = Field(default=None, max_length=36)
    sealed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EvaluationClass(SQLModel, table=True):
    """Where a class's procedure stands: recording, notice (公示) until a Beijing date, locked."""

    __tablename__ = "evaluation_class"
    __table_args__ = (
        UniqueConstraint("term_id", "class_name"),
        CheckConstraint("stage IN ('recording', 'notice', 'locked')", name="stage"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    term_id: str = Field(max_length=36, foreign_key="evaluation_term.id")
    class_name: str = Field(max_length=120)
    stage: str = Field(default="recording", max_length=16)
    notice_from: date | None = Field(default=None, sa_type=Date)
    notice_until: date | None = Field(default=None, sa_type=Date)  # the notice's last working day
    locked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EvaluationTeaching(SQLModel, table=True):
    """A teacher (by card) teaches a class this term: what lets them enter its records and scores."""

    __tablename__ = "evaluation_teaching"
    __table_args__ = (UniqueConstraint("term_id", "teacher_card", "class_name"), lowercase("teacher_card"))

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    term_id: str = Field(max_length=36, foreign_key="evaluation_term.id")
    teacher_card: str = Field(max_length=HEX32)
    class_name: str = Field(max_length=120)


class EvaluationRecord(SQLModel, table=True):
    """A factual record (写实记录) of a student, and where it is in the procedure."""

    __tablename__ = "evaluation_record"
    __table_args__ = (
        CheckConstraint(f"status IN ({_RECORD_STATUSES})", name="status"),
        CheckConstraint("author_role IN ('teacher', 'student')", name="author_role"),
        Index("ix_evaluation_record_term_student", "term_id", "student_card"),
        lowercase("student_card"),
        lowercase("teacher_card"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    term_id: str = Field(max_length=36, foreign_key="evaluation_term.id")
    class_name: str = Field(max_length=120)
    student_card: str = Field(max_length=HEX32)
    domain: str = Field(max_length=16)
    indicator_code: str = Field(max_length=40)
    author_role: str = Field(max_length=16)
    teacher_card: str | None = Field(default=None, max_length=HEX32)
    occurred_on: date = Field(sa_type=Date)
    sealed_content: bytes = Field(sa_type=LargeBinary)  # {"title", "text"}, under the student's key
    status: str = Field(default="draft", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EvaluationEvidence(SQLModel, table=True):
    """An evidence file of a record, kept off chain (encrypted); the chain sees its SHA-256 only
    inside a sealed record's salted hash."""

    __tablename__ = "evaluation_evidence"
    __table_args__ = (Index("ix_evaluation_evidence_record_id", "record_id"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    record_id: str = Field(max_length=36, foreign_key="evaluation_record.id")
    position: int
    evidence_type: str = Field(max_length=200)
    media_type: str = Field(max_length=127)
    sha256: str = Field(max_length=64)
    size: int
    sealed_file: bytes = Field(sa_type=LargeBinary)
    sealed_name: bytes = Field(sa_type=LargeBinary)


class EvaluationObjection(SQLModel, table=True):
    """An objection raised during the notice: it holds its record until resolved with a note."""

    __tablename__ = "evaluation_objection"
    __table_args__ = (
        CheckConstraint("raised_by IN ('student', 'parent')", name="raised_by"),
        CheckConstraint("outcome IS NULL OR outcome IN ('kept', 'amended', 'withdrawn')", name="outcome"),
        Index("ix_evaluation_objection_record_id", "record_id"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    record_id: str = Field(max_length=36, foreign_key="evaluation_record.id")
    raised_by: str = Field(max_length=16)
    sealed_reason: bytes = Field(sa_type=LargeBinary)
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=16)
    sealed_note: bytes | None = Field(default=None, sa_type=LargeBinary)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EvaluationScore(SQLModel, table=True):
    """A teacher's score of a student on an indicator, this term (one per indicator)."""

    __tablename__ = "evaluation_score"
    __table_args__ = (
        UniqueConstraint("term_id", "student_card", "indicator_code"),
        lowercase("student_card"),
        lowercase("teacher_card"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    term_id: str = Field(max_length=36, foreign_key="evaluation_term.id")
    class_name: str = Field(max_length=120)
    student_card: str = Field(max_length=HEX32)
    indicator_code: str = Field(max_length=40)
    value: str = Field(max_length=8)
    teacher_card: str = Field(max_length=HEX32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EvaluationSeal(SQLModel, table=True):
    """A student's sealed term record: the signed canonical document (encrypted), its salt and
    leaf, and its place in the anchored batch. Written with the batch, in its transaction."""

    __tablename__ = "evaluation_seal"
    __table_args__ = (
        UniqueConstraint("term_id", "student_card"),
        UniqueConstraint("leaf_hash"),
        Index("ix_evaluation_seal_batch_id", "batch_id"),
        lowercase("student_card"),
        lowercase("leaf_hash"),
    )

    id: str = Field(default_factory=_id, primary_key=True, max_length=36)
    term_id: str = Field(max_length=36, foreign_key="evaluation_term.id")
    student_card: str = Field(max_length=HEX32)
    batch_id: str = Field(max_length=36)
    position: int
    salt: str = Field(max_length=HEX32)
    leaf_hash: str = Field(max_length=HEX32)
    sealed_document: bytes = Field(sa_type=LargeBinary)  # canonical JSON, under the student's key
    signature: str = Field(sa_type=Text)  # JWS with detached payload (RFC 7515 appendix F)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
