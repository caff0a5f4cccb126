"""Comprehensive quality evaluation (综合素质评价): the bureau publishes frameworks; a school
layers its own version, opens a term, enters factual records and scores (the school's key
acts, naming the teacher by their card), runs the procedure (selection, notice, objections,
lock) and seals the term on chain."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import ClientAddress, Services
from api.models import (
    AUTH_ERRORS,
    ClassView,
    Count,
    FrameworkList,
    FrameworkView,
    NewFramework,
    NewRecordBody,
    NewSchoolVersion,
    NewTerm,
    NoticeBody,
    ObjectionBody,
    ObjectionView,
    ProfileView,
    RecordView,
    ResolutionBody,
    ScoresBody,
    SealedRecordView,
    SealView,
    SelectionBody,
    TeacherClasses,
    TeacherClassesView,
    TermView,
    error_responses,
)
from ledger.consortium.models import ApiKey
from ledger.evaluation.models import EvaluationClass, EvaluationFramework, EvaluationObjection, EvaluationTerm
from ledger.evaluation.service import EvidenceFile, NewRecord, ScoreEntry, decode_evidence
from ledger.evaluation.types import SchoolLayerBody

router = APIRouter(prefix="/v1/evaluation")

Bureau = Annotated[ApiKey, Depends(require_role("bureau"))]
School = Annotated[ApiKey, Depends(require_role("school"))]
Member = Annotated[ApiKey, Depends(require_role("school", "partner", "bureau", "auditor"))]
Purpose = Annotated[str, Query(min_length=3, max_length=200, description="why the personal data is read")]

ROLE = {403: "`role_not_allowed`"}
SCHOOL_ONLY = {403: "`role_not_allowed` (a school's key)"}
TERM_NOT_FOUND = "`term_not_found` (this school has no such term)"
SEALED = "`term_sealed` (the term is sealed or being sealed: nothing in it changes)"
STUDENT = "`student_not_found` (no active student card of this school: another school's student too)"
TEACHER = "`teacher_not_found` (no active teacher card of this school)"
STAGE = "`class_in_notice`, `class_locked` (its records and scores do not change now)"


def _school_errors(codes: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route for a school's key: its own, and those of any such route."""
    return error_responses({**AUTH_ERRORS, **SCHOOL_ONLY, **codes})


def _framework(row: EvaluationFramework) -> FrameworkView:
    return FrameworkView(
        framework_id=row.id,
        owner_org=row.owner_org,
        kind=row.kind,  # type: ignore[arg-type]
        school_year=row.school_year,
        version=row.version,
        base_framework_id=row.base_id,
        content=json.loads(row.content_json),
        layer=json.loads(row.layer_json) if row.layer_json else None,
        content_sha256=row.content_sha256,
        published_at=row.published_at,
    )


def _class(row: EvaluationClass) -> ClassView:
    return ClassView(
        class_name=row.class_name,
        stage=row.stage,  # type: ignore[arg-type]
        notice_from=row.notice_from,
        notice_until=row.notice_until,
        locked_at=row.locked_at,
    )


def _objection(row: EvaluationObjection) -> ObjectionView:
    return ObjectionView(
        objection_id=row.id,
        record_id=row.record_id,
        raised_by=row.raised_by,  # type: ignore[arg-type]
        raised_at=row.raised_at,
        outcome=row.outcome,  # type: ignore[arg-type]
        resolved_at=row.resolved_at,
    )


def _term(services: Services, row: EvaluationTerm) -> TermView:
    return TermView(
        term=row.term,
        school_org=row.school_org,
        framework_id=row.framework_id,
        status=row.status,  # type: ignore[arg-type]
        batch_id=row.batch_id,
        sealed_at=row.sealed_at,
        classes=[_class(c) for c in services.evaluation.classes(row)],
    )


# -- frameworks ------------------------------------------------------------------------------


@router.post(
    "/frameworks",
    status_code=201,
    response_model=FrameworkView,
    responses=error_responses(
        {
            **AUTH_ERRORS,
            403: "`role_not_allowed` (the bureau's key)",
            422: "`invalid_input` (the body's shape), `bad_domains` (not the five "
            "domains once each), `duplicate_indicator`, `bad_weights` (a "
            "domain's weights do not sum to 100), `bad_scale`, "
            "`bad_school_year`",
        }
    ),
)
def publish_framework(body: NewFramework, key: Bureau, services: Services) -> FrameworkView:
    """A new version of the bureau's framework for a school year (earlier versions stay as they were)."""
    return _framework(services.evaluation.publish(key.org_id, body))


@router.post(
    "/school-frameworks",
    status_code=201,
    response_model=FrameworkView,
    responses=_school_errors(
        {
            404: "`framework_not_found` (the base version)",
            422: "`invalid_input`, `bad_base_framework` (not a bureau version), "
            "`duplicate_indicator` (a code the base uses), `bad_weights`, "
            "`bad_scale`",
        }
    ),
)
def publish_school_version(body: NewSchoolVersion, key: School, services: Services) -> FrameworkView:
    """A new version of the school's own framework: indicators added under a bureau version's domains."""
    layer = SchoolLayerBody.model_validate(body.model_dump(exclude={"title"}))
    return _framework(services.evaluation.publish_school_version(key.org_id, layer, body.title))


@router.get(
    "/frameworks",
    response_model=FrameworkList,
    responses=error_responses({**AUTH_ERRORS, 422: "`invalid_input` (school_year not 2025-2026)"}),
)
def list_frameworks(
    key: Member,
    services: Services,
    school_year: Annotated[str | None, Query(pattern=r"^20[0-9]{2}-20[0-9]{2}$")] = None,
) -> FrameworkList:
    """Every published version (old ones stay readable)."""
    return FrameworkList(frameworks=[_framework(f) for f in services.evaluation.frameworks(school_year)])


@router.get(
    "/frameworks/{framework_id}",
    response_model=FrameworkView,
    responses=error_responses({**AUTH_ERRORS, 404: "`framework_not_found`"}),
)
def get_framework(framework_id: str, key: Member, services: Services) -> FrameworkView:
    return _framework(services.evaluation.framework(framework_id))


# -- terms -------------------------------------------------------------------------------------


@router.post(
    "/terms",
    status_code=201,
    response_model=TermView,
    responses=_school_errors(
        {
            404: "`framework_not_found`",
            409: "`term_exists`",
            422: "`invalid_input`, `framework_not_usable` (another school year's, "
            "or another school's version)",
        }
    ),
)
def open_term(body: NewTerm, key: School, services: Services) -> TermView:
    return _term(services, services.evaluation.open_term(key.org_id, body.term, body.framework_id))


@router.get(
    "/terms/{term}",
    response_model=TermView,
    responses=error_responses({**AUTH_ERRORS, **SCHOOL_ONLY, 404: TERM_NOT_FOUND}),
)
def get_term(term: str, key: School, services: Services) -> TermView:
    return _term(services, services.evaluation.term(key.org_id, term))


@router.post(
    "/terms/{term}/teachers",
    response_model=TeacherClassesView,
    responses=_school_errors(
        {
            404: f"{TERM_NOT_FOUND}, {TEACHER}",
            409: SEALED,
            422: "`invalid_input`, `bad_classes`",
        }
    ),
)
def assign_teacher(term: str, body: TeacherClasses, key: School, services: Services) -> TeacherClassesView:
    """The classes a teacher (by card) teaches this term: they enter those classes' records and scores."""
    classes = services.evaluation.assign_teacher(key.org_id, term, body.teacher_card.lower(), body.classes)
    return TeacherClassesView(teacher_card=body.teacher_card.lower(), classes=classes)


@router.post(
    "/terms/{term}/records",
    status_code=201,
    response_model=RecordView,
    responses=error_responses(
        {
            **AUTH_ERRORS,
            403: "`role_not_allowed`, `not_their_class` (the teacher does not teach "
            "the student's class this term)",
            404: f"{TERM_NOT_FOUND}, {STUDENT}, {TEACHER}",
            409: f"{SEALED}, {STAGE}",
            422: "`invalid_input`, `indicator_not_in_framework` (not in the term's framework version), "
            "`teacher_card_missing`, `bad_evidence` (not base64, empty, or over 8 MiB)",
        }
    ),
)
async def add_record(term: str, body: NewRecordBody, key: School, services: Services) -> RecordView:
    """A factual record (写实记录) of a student, with evidence files (hashed, kept encrypted off chain)."""
    new = NewRecord(
        student_card=body.student_card.lower(),
        indicator_code=body.indicator_code,
        author_role=body.author_role,
        teacher_card=body.teacher_card.lower() if body.teacher_card else None,
        occurred_on=body.occurred_on,
        title=body.title,
        text=body.text,
        evidence=[
            EvidenceFile(e.evidence_type, e.filename, e.media_type, decode_evidence(e.content_base64))
            for e in body.evidence
        ],
    )

    def run() -> dict[str, Any]:
        record = services.evaluation.add_record(key.org_id, term, new)
        return services.evaluation.record_view(record, personal=False)

    return RecordView.model_validate(await run_in_threadpool(run))


@router.post(
    "/terms/{term}/scores",
    response_model=Count,
    responses=error_responses(
        {
            **AUTH_ERRORS,
            403: "`role_not_allowed`, `not_their_class`",
            404: f"{TERM_NOT_FOUND}, {STUDENT}, {TEACHER}",
            409: f"{SEALED}, {STAGE}",
            422: "`invalid_input`, `indicator_not_in_framework`, `score_out_of_scale`",
        }
    ),
)
def enter_scores(term: str, body: ScoresBody, key: School, services: Services) -> Count:
    """A teacher's indicator scores, all or none; a score given again replaces the first."""
    entries = [ScoreEntry(s.student_card.lower(), s.indicator_code, s.value) for s in body.scores]
    return Count(count=services.evaluation.enter_scores(key.org_id, term, body.teacher_card.lower(), entries))


@router.post(
    "/terms/{term}/selection",
    response_model=Count,
    responses=_school_errors(
        {
            404: f"{TERM_NOT_FOUND}, `record_not_found`",
            409: f"{SEALED}, {STAGE}",
            422: "`invalid_input`",
        }
    ),
)
def select_records(term: str, body: SelectionBody, key: School, services: Services) -> Count:
    """整理遴选: which records go into the archive."""
    return Count(count=services.evaluation.select(key.org_id, term, body.selected, body.not_selected))


@router.post(
    "/terms/{term}/classes/{class_name}/notice",
    response_model=ClassView,
    responses=_school_errors(
        {
            404: f"{TERM_NOT_FOUND}, `class_not_found`",
            409: f"{SEALED}, {STAGE}, `selection_unfinished` (draft records left)",
            422: "`invalid_input`",
        }
    ),
)
def start_notice(
    term: str, class_name: str, key: School, services: Services, body: NoticeBody | None = None
) -> ClassView:
    """公示: the class's selected records on notice inside the school for N working days (default 5)."""
    days = body.days if body is not None else 5
    return _class(services.evaluation.start_notice(key.org_id, term, class_name, days))


@router.post(
    "/terms/{term}/classes/{class_name}/lock",
    response_model=ClassView,
    responses=_school_errors(
        {
            404: f"{TERM_NOT_FOUND}, `class_not_found`",
            409: f"{SEALED}, `not_in_notice`, `notice_not_over`, `objection_open`",
        }
    ),
)
def lock_class(term: str, class_name: str, key: School, services: Services) -> ClassView:
    return _class(services.evaluation.lock(key.org_id, term, class_name))


@router.post(
    "/records/{record_id}/objections",
    status_code=201,
    response_model=ObjectionView,
    responses=_school_errors(
        {
            404: "`record_not_found`",
            409: f"{SEALED}, `not_in_notice`, `notice_over`",
            422: "`invalid_input`",
        }
    ),
)
def object_to_record(record_id: str, body: ObjectionBody, key: School, services: Services) -> ObjectionView:
    """A student's or parent's objection during the notice (the school enters it): it holds the record."""
    return _objection(services.evaluation.object(key.org_id, record_id, body.raised_by, body.reason))


@router.post(
    "/objections/{objection_id}/resolve",
    response_model=ObjectionView,
    responses=_school_errors(
        {
            404: "`objection_not_found`",
            409: f"{SEALED}, `objection_resolved`",
            422: "`invalid_input`",
        }
    ),
)
def resolve_objection(
    objection_id: str, body: ResolutionBody, key: School, services: Services
) -> ObjectionView:
    return _objection(services.evaluation.resolve(key.org_id, objection_id, body.outcome, body.note))


@router.post(
    "/terms/{term}/seal",
    response_model=SealView,
    responses=_school_errors(
        {
            404: TERM_NOT_FOUND,
            409: "`term_not_locked` (a class is not locked), `term_empty`",
        }
    ),
)
async def seal_term(term: str, key: School, services: Services) -> SealView:
    """Seal the term: each student's record signed by the school, its salted hash anchored, once
    (asking again answers with the same seal)."""
    result = await run_in_threadpool(services.evaluation.seal, key.org_id, term)
    return SealView(
        term=result.term,
        status=result.status,  # type: ignore[arg-type]
        batch_id=result.batch_id,
        root=result.root,
        count=result.count,
    )


@router.get(
    "/terms/{term}/students/{card_id}/profile",
    response_model=ProfileView,
    responses=error_responses({**AUTH_ERRORS, **SCHOOL_ONLY, 404: f"{TERM_NOT_FOUND}, {STUDENT}"}),
)
def profile(term: str, card_id: str, key: School, services: Services) -> ProfileView:
    """A student's term profile: levels per domain, indicators' values; never a rank."""
    return ProfileView.model_validate(services.evaluation.profile(key.org_id, term, card_id.lower()))


@router.get(
    "/terms/{term}/students/{card_id}/sealed",
    response_model=SealedRecordView,
    responses=_school_errors(
        {
            404: f"{TERM_NOT_FOUND}, {STUDENT}, `seal_not_found`",
            422: "`invalid_input`: purpose missing or not 3 to 200 characters",
        }
    ),
)
def sealed_record(
    term: str, card_id: str, key: School, services: Services, client: ClientAddress, purpose: Purpose
) -> SealedRecordView:
    """A student's sealed term record with the school's signature, its salt and its anchor proof
    (personal data: the read is logged with its purpose)."""
    found = services.evaluation.sealed_record(key.org_id, term, card_id.lower())
    services.record_access(
        key.org_id,
        key.role,
        "read",
        "evaluation_record",
        f"{term}:{found['student_card']}",
        purpose,
        client=client,
    )
    return SealedRecordView.model_validate(found)
