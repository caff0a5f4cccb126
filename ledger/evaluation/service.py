"""Comprehensive quality evaluation (综合素质评价): frameworks, records, the procedure, sealing.

**Frameworks.** The bureau publishes a framework for a school year (``types.py``); a school
layers its own version on one. Publishing makes a new version (1, 2, ... per owner and year)
and never changes an old one.

**Who acts.** API keys belong to organisations, so the school's key acts, and a teacher is
named in the request by their identity card (``teacher_card``): it must be an active
teacher card this school issued, and assigned to the student's class for the term
(``assign_teacher``). A student's own record names the student's card as its author. A
student is named by their card: an active student card of this school (another school's is
"not found", exactly as an unknown id is); their class is the card's grade and class.

**The procedure**, per class: records are entered (写实记录, ``draft``); the school selects
which go into the archive (整理遴选: ``selected`` or ``not_selected``); a notice inside the
school (公示) runs for N working days (default 5, China working days, ``workdays.py``)
after the day it starts, during which a student or parent may object (the school enters
the objection); an objection holds its record (``objected``) until resolved with a note
(kept, amended or withdrawn); after the notice's last day, with no objection open, the class
is locked. While a class is in notice or locked its records and scores do not change.

**Sealing.** When every class with records or scores is locked, the school seals the term:
per student, a canonical JSON document (RFC 8785, ``ledger.canonical``) of their locked
records (with their evidence files' SHA-256) and scores, signed by the school (a JWS with
detached payload, by its credential-signing key), and its salted hash anchored (kind
evaluation_data) through anchoring, in one batch per term, accepted durably with the
seals in one transaction (idempotency key ``evaluation-seal:<term id>``), so a stop at any
point is finished by anchoring's resume and ``resume`` here (the node's duties): exactly
once. From acceptance on, the term refuses every change (409 ``term_sealed``); a change made
behind the service's back is found by the integrity audit (``seals_in_batch``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from ledger.anchoring.interfaces import AnchoringAPI
from ledger.anchoring.models import AnchorBatch, AnchorStatus
from ledger.canonical import canonical_json
from ledger.consortium.deployment import Deployment
from ledger.credentials import jose
from ledger.credentials.did import issuer_did, key_id
from ledger.errors import ChainUnavailable, Conflict, InvalidInput, LedgerError, NotFound, PermissionDenied
from ledger.evaluation.interfaces import Clock, SealCheck, StudentCards, SystemClock
from ledger.evaluation.models import (
    EvaluationClass,
    EvaluationEvidence,
    EvaluationFramework,
    EvaluationObjection,
    EvaluationRecord,
    EvaluationScore,
    EvaluationSeal,
    EvaluationTeaching,
    EvaluationTerm,
)
from ledger.evaluation.types import (
    TERM_RE,
    Domain,
    FrameworkBody,
    FrameworkNotFound,
    Indicator,
    NotTheirClass,
    RecordStatus,
    SchoolLayerBody,
    TermSealed,
    check_framework,
    check_value,
    fraction_of,
    indicators_of,
    level_of,
    merge_layer,
)
from ledger.evaluation.workdays import add_working_days, beijing_date
from ledger.identity.models import IdentityCard, IdentityPerson
from ledger.identity.personal import PersonalCipher
from ledger.keys import KeySource
from ledger.merkle import MerkleTree, record_hash
from ledger.store import session_scope
from ledger.store.columns import utcnow

__all__ = [
    "DOCUMENT_TYPE",
    "EvaluationService",
    "EvidenceFile",
    "NewRecord",
    "ScoreEntry",
    "SealResult",
    "SIGNATURE_TYP",
    "detached_signing_input",
]

DOCUMENT_TYPE = "eduledger-evaluation-term-record/1"
SIGNATURE_TYP = "eduledger-evaluation+jwt"
MAX_EVIDENCE_BYTES = 8 * 1024 * 1024
DEFAULT_NOTICE_DAYS = 5
_UUID_LEN = 36


@dataclass(frozen=True)
class EvidenceFile:
    evidence_type: str
    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class NewRecord:
    student_card: str
    indicator_code: str
    author_role: str  # teacher | student
    teacher_card: str | None
    occurred_on: date
    title: str
    text: str
    evidence: Sequence[EvidenceFile] = ()


@dataclass(frozen=True)
class ScoreEntry:
    student_card: str
    indicator_code: str
    value: str


@dataclass(frozen=True)
class SealResult:
    term: str
    status: str
    batch_id: str
    root: str
    count: int


def detached_signing_input(header_b64: str, document: bytes) -> bytes:
    """JWS signing input with the payload left out of the token (RFC 7515 appendix F)."""
    return (header_b64 + "." + jose.b64url(document)).encode("ascii")


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


class EvaluationService:
    def __init__(
        self,
        *,
        engine: Engine,
        deployment: Deployment,
        cards: StudentCards,
        cipher: PersonalCipher,
        keys: KeySource,
        anchoring: AnchoringAPI,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.deployment = deployment
        self.cards = cards
        self.cipher = cipher
        self.keys = keys
        self.anchoring = anchoring
        self.clock: Clock = clock or SystemClock()
        self._seal_lock = threading.Lock()

    # -- frameworks ------------------------------------------------------------------------

    def publish(self, org_id: str, body: FrameworkBody) -> EvaluationFramework:
        """The bureau publishes a new version of its framework for a school year."""
        check_framework(body)
        return self._add_version(org_id, "bureau", body, base_id=None, layer=None)

    def publish_school_version(self, org_id: str, layer: SchoolLayerBody, title: str) -> EvaluationFramework:
        """A school's own version, layered on a bureau version."""
        base = self.framework(layer.base_framework_id)
        if base.kind != "bureau":
            raise InvalidInput("a school's version layers on a bureau version", code="bad_base_framework")
        merged = merge_layer(self.content_of(base), layer, title)
        return self._add_version(
            org_id,
            "school",
            merged,
            base_id=base.id,
            layer=canonical_json(layer.model_dump(mode="json")).decode(),
        )

    def _add_version(
        self, org_id: str, kind: str, body: FrameworkBody, *, base_id: str | None, layer: str | None
    ) -> EvaluationFramework:
        content = canonical_json(body.model_dump(mode="json"))
        for _ in range(5):  # two publishers at once: the loser takes the next version
            with session_scope(self.engine) as session:
                latest = session.exec(
                    select(func.max(EvaluationFramework.version)).where(
                        EvaluationFramework.owner_org == org_id,
                        EvaluationFramework.school_year == body.school_year,
                    )
                ).one()
            row = EvaluationFramework(
                owner_org=org_id,
                kind=kind,
                school_year=body.school_year,
                version=int(latest or 0) + 1,
                base_id=base_id,
                layer_json=layer,
                content_json=content.decode(),
                content_sha256=hashlib.sha256(content).hexdigest(),
            )
            try:
                with session_scope(self.engine) as session:
                    session.add(row)
                return row
            except IntegrityError:
                continue
        raise Conflict(
            "another version was being published at the same time; try again", code="framework_busy"
        )

    def framework(self, framework_id: str) -> EvaluationFramework:
        if not isinstance(framework_id, str) or len(framework_id) > _UUID_LEN:
            raise FrameworkNotFound(str(framework_id))
        with session_scope(self.engine) as session:
            row = session.get(EvaluationFramework, framework_id)
        if row is None:
            raise FrameworkNotFound(framework_id)
        return row

    def frameworks(self, school_year: str | None = None) -> list[EvaluationFramework]:
        with session_scope(self.engine) as session:
            query = select(EvaluationFramework)
            if school_year is not None:
                query = query.where(EvaluationFramework.school_year == school_year)
            return list(
                session.exec(
                    query.order_by(
                        col(EvaluationFramework.school_year),
                        col(EvaluationFramework.owner_org),
                        col(EvaluationFramework.version),
                    )
                ).all()
            )

    @staticmethod
    def content_of(framework: EvaluationFramework) -> FrameworkBody:
        return FrameworkBody.model_validate_json(framework.content_json)

    # -- terms and teachers ----------------------------------------------------------------

    def open_term(self, org_id: str, term: str, framework_id: str) -> EvaluationTerm:
        match = TERM_RE.fullmatch(term) if isinstance(term, str) else None
        if match is None:
            raise InvalidInput("a term is <school year>-<1 or 2>: 2025-2026-1", code="bad_term")
        framework = self.framework(framework_id)
        usable = framework.school_year == match.group(1) and (
            framework.kind == "bureau" or framework.owner_org == org_id
        )
        if not usable:
            raise InvalidInput(
                "a term uses a bureau framework of its school year, or this school's own version of one",
                code="framework_not_usable",
            )
        row = EvaluationTerm(school_org=org_id, term=term, framework_id=framework.id)
        try:
            with session_scope(self.engine) as session:
                session.add(row)
        except IntegrityError:
            raise Conflict(f"term {term} is already open", code="term_exists") from None
        return row

    def term(self, org_id: str, term: str) -> EvaluationTerm:
        with session_scope(self.engine) as session:
            row = session.exec(
                select(EvaluationTerm).where(EvaluationTerm.school_org == org_id, EvaluationTerm.term == term)
            ).first()
        if row is None:
            raise NotFound(f"this school has no evaluation term {str(term)[:20]}", code="term_not_found")
        return row

    def _open_term(self, org_id: str, term: str) -> EvaluationTerm:
        row = self.term(org_id, term)
        if row.status != "open":
            raise TermSealed(term)
        return row

    def classes(self, term: EvaluationTerm) -> list[EvaluationClass]:
        with session_scope(self.engine) as session:
            return list(
                session.exec(
                    select(EvaluationClass)
                    .where(EvaluationClass.term_id == term.id)
                    .order_by(col(EvaluationClass.class_name))
                ).all()
            )

    def assign_teacher(self, org_id: str, term: str, teacher_card: str, classes: Sequence[str]) -> list[str]:
        row = self._open_term(org_id, term)
        self._teacher(org_id, teacher_card)
        names = sorted({c.strip() for c in classes})
        if not names or any(not 1 <= len(c) <= 120 for c in names):
            raise InvalidInput("name one to fifty classes (1 to 120 characters each)", code="bad_classes")
        with session_scope(self.engine) as session:
            have = set(
                session.exec(
                    select(EvaluationTeaching.class_name).where(
                        EvaluationTeaching.term_id == row.id, EvaluationTeaching.teacher_card == teacher_card
                    )
                ).all()
            )
            for name in names:
                if name not in have:
                    session.add(
                        EvaluationTeaching(term_id=row.id, teacher_card=teacher_card, class_name=name)
                    )
        return names

    # -- whose card -------------------------------------------------------------------------

    def _card(self, org_id: str, card_id: str, kind: str) -> IdentityCard:
        try:
            card = self.cards.get(card_id)
        except NotFound:
            card = None
        if card is None or card.kind != kind or card.issuer_org != org_id or card.status != "active":
            what = "student" if kind == "student" else "teacher"
            raise NotFound(
                f"no active {what} card {str(card_id)[:80]} of this school (a card of another "
                "school is not this school's to evaluate)",
                code=f"{what}_not_found",
            )
        return card

    def _teacher(self, org_id: str, card_id: str) -> IdentityCard:
        return self._card(org_id, card_id, "teacher")

    def _student(self, org_id: str, card_id: str) -> tuple[IdentityCard, str]:
        card = self._card(org_id, card_id, "student")
        fields = self.cards.fields_of(card)
        return card, f"{fields.get('grade', '')}{fields.get('className', '')}"

    def _check_teaches(
        self, session: Session, term: EvaluationTerm, teacher_card: str, class_name: str
    ) -> None:
        teaches = session.exec(
            select(EvaluationTeaching.id).where(
                EvaluationTeaching.term_id == term.id,
                EvaluationTeaching.teacher_card == teacher_card,
                EvaluationTeaching.class_name == class_name,
            )
        ).first()
        if teaches is None:
            raise NotTheirClass(class_name)

    def _class(
        self, session: Session, term: EvaluationTerm, class_name: str, *, create: bool
    ) -> EvaluationClass:
        row = session.exec(
            select(EvaluationClass).where(
                EvaluationClass.term_id == term.id, EvaluationClass.class_name == class_name
            )
        ).first()
        if row is None:
            if not create:
                raise NotFound(f"class {class_name[:120]} has nothing this term", code="class_not_found")
            row = EvaluationClass(term_id=term.id, class_name=class_name)
            session.add(row)
            session.flush()
        return row

    @staticmethod
    def _recording(klass: EvaluationClass) -> None:
        if klass.stage != "recording":
            where = "in its notice period" if klass.stage == "notice" else "locked"
            raise Conflict(
                f"class {klass.class_name} is {where}: its records and scores do not change now",
                code="class_locked" if klass.stage == "locked" else "class_in_notice",
            )

    def _wrapped(self, session: Session, card: IdentityCard) -> bytes:
        person = session.get(IdentityPerson, card.person_key)
        if person is None:
            raise NotFound("this person's data has been erased", code="person_erased")
        return person.wrapped_key

    def _seal_for(self, session: Session, card: IdentityCard, what: str, data: bytes) -> bytes:
        return self.cipher.encrypt(self._wrapped(session, card), card.person_key, what, data)

    def _open_for(self, session: Session, card: IdentityCard, what: str, data: bytes) -> bytes:
        return self.cipher.decrypt(self._wrapped(session, card), card.person_key, what, data)

    # -- records and scores ------------------------------------------------------------------

    def add_record(self, org_id: str, term: str, new: NewRecord) -> EvaluationRecord:
        row = self._open_term(org_id, term)
        domain, _indicator = self._indicator(row, new.indicator_code)
        card, class_name = self._student(org_id, new.student_card)
        if new.author_role == "teacher":
            if new.teacher_card is None:
                raise InvalidInput("a teacher's record names the teacher's card", code="teacher_card_missing")
            self._teacher(org_id, new.teacher_card)
        elif new.author_role == "student":
            if new.teacher_card is not None:
                raise InvalidInput("a student's own record names no teacher", code="invalid_input")
        else:
            raise InvalidInput("a record's author is a teacher or the student", code="invalid_input")
        if not 1 <= len(new.title) <= 200 or not 0 <= len(new.text) <= 5000:
            raise InvalidInput(
                "a record has a title of 1 to 200 characters and up to 5,000 of text", code="invalid_input"
            )
        if len(new.evidence) > 10 or any(
            len(e.content) > MAX_EVIDENCE_BYTES or not e.content for e in new.evidence
        ):
            raise InvalidInput("up to 10 evidence files of up to 8 MiB each", code="bad_evidence")
        with session_scope(self.engine) as session:
            klass = self._class(session, row, class_name, create=True)
            self._recording(klass)
            if new.teacher_card is not None:
                self._check_teaches(session, row, new.teacher_card, class_name)
            record = EvaluationRecord(
                term_id=row.id,
                class_name=class_name,
                student_card=card.id,
                domain=domain,
                indicator_code=new.indicator_code,
                author_role=new.author_role,
                teacher_card=new.teacher_card,
                occurred_on=new.occurred_on,
                sealed_content=b"",
            )
            record.sealed_content = self._seal_for(
                session,
                card,
                f"evaluation record {record.id}",
                json.dumps({"title": new.title, "text": new.text}, ensure_ascii=False).encode(),
            )
            session.add(record)
            session.flush()
            for position, file in enumerate(new.evidence):
                evidence = EvaluationEvidence(
                    record_id=record.id,
                    position=position,
                    evidence_type=file.evidence_type,
                    media_type=file.media_type,
                    sha256=hashlib.sha256(file.content).hexdigest(),
                    size=len(file.content),
                    sealed_file=b"",
                    sealed_name=b"",
                )
                evidence.sealed_file = self._seal_for(
                    session, card, f"evaluation evidence {evidence.id}", file.content
                )
                evidence.sealed_name = self._seal_for(
                    session, card, f"evaluation evidence {evidence.id} name", file.filename.encode()
                )
                session.add(evidence)
        return record

    def _indicator(self, term: EvaluationTerm, code: str) -> tuple[str, Indicator]:
        found = indicators_of(self.content_of(self.framework(term.framework_id))).get(code)
        if found is None:
            raise InvalidInput(
                f"indicator {str(code)[:40]!r} is not in this term's framework version",
                code="indicator_not_in_framework",
            )
        return found[0].value, found[1]

    def enter_scores(self, org_id: str, term: str, teacher_card: str, entries: Sequence[ScoreEntry]) -> int:
        """A teacher's scores (all or none): each on its indicator's scale, for students of a class
        the teacher teaches; a second score of the same indicator replaces the first."""
        row = self._open_term(org_id, term)
        self._teacher(org_id, teacher_card)
        if not 1 <= len(entries) <= 5000:
            raise InvalidInput("one to 5,000 scores at once", code="invalid_input")
        indicators = indicators_of(self.content_of(self.framework(row.framework_id)))
        checked = []
        classes: dict[str, str] = {}
        for entry in entries:
            found = indicators.get(entry.indicator_code)
            if found is None:
                raise InvalidInput(
                    f"indicator {entry.indicator_code[:40]!r} is not in this term's framework version",
                    code="indicator_not_in_framework",
                )
            value = check_value(found[1], entry.value)
            if entry.student_card not in classes:
                classes[entry.student_card] = self._student(org_id, entry.student_card)[1]
            checked.append((entry, value))
        with session_scope(self.engine) as session:
            for class_name in sorted(set(classes.values())):
                self._recording(self._class(session, row, class_name, create=True))
                self._check_teaches(session, row, teacher_card, class_name)
            for entry, value in checked:
                score = session.exec(
                    select(EvaluationScore).where(
                        EvaluationScore.term_id == row.id,
                        EvaluationScore.student_card == entry.student_card,
                        EvaluationScore.indicator_code == entry.indicator_code,
                    )
                ).first()
                if score is None:
                    score = EvaluationScore(
                        term_id=row.id,
                        class_name=classes[entry.student_card],
                        student_card=entry.student_card,
                        indicator_code=entry.indicator_code,
                        value=value,
                        teacher_card=teacher_card,
                    )
                score.value, score.teacher_card, score.updated_at = value, teacher_card, utcnow()
                session.add(score)
        return len(checked)

    def record(self, org_id: str, record_id: str) -> tuple[EvaluationTerm, EvaluationRecord]:
        with session_scope(self.engine) as session:
            record = session.get(EvaluationRecord, record_id) if len(record_id) <= _UUID_LEN else None
            term = session.get(EvaluationTerm, record.term_id) if record is not None else None
        if record is None or term is None or term.school_org != org_id:
            raise NotFound(f"no record {record_id[:40]} of this school", code="record_not_found")
        return term, record

    def record_view(self, record: EvaluationRecord, *, personal: bool) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            evidence = session.exec(
                select(EvaluationEvidence)
                .where(EvaluationEvidence.record_id == record.id)
                .order_by(col(EvaluationEvidence.position))
            ).all()
            view: dict[str, Any] = {
                "record_id": record.id,
                "student_card": record.student_card,
                "class_name": record.class_name,
                "domain": record.domain,
                "indicator_code": record.indicator_code,
                "author_role": record.author_role,
                "teacher_card": record.teacher_card,
                "occurred_on": record.occurred_on,
                "status": record.status,
                "evidence": [
                    {
                        "evidence_type": e.evidence_type,
                        "media_type": e.media_type,
                        "sha256": e.sha256,
                        "size": e.size,
                    }
                    for e in evidence
                ],
            }
            if personal:
                card = self.cards.get(record.student_card)
                view.update(
                    json.loads(
                        self._open_for(session, card, f"evaluation record {record.id}", record.sealed_content)
                    )
                )
        return view

    # -- the procedure ----------------------------------------------------------------------

    def select(self, org_id: str, term: str, selected: Sequence[str], not_selected: Sequence[str]) -> int:
        """整理遴选: which draft (or already chosen) records go into the archive."""
        row = self._open_term(org_id, term)
        if set(selected) & set(not_selected):
            raise InvalidInput("a record is either selected or not", code="invalid_input")
        wanted = {
            **dict.fromkeys(selected, RecordStatus.SELECTED.value),
            **dict.fromkeys(not_selected, RecordStatus.NOT_SELECTED.value),
        }
        with session_scope(self.engine) as session:
            records = session.exec(
                select(EvaluationRecord).where(
                    col(EvaluationRecord.id).in_(list(wanted)), EvaluationRecord.term_id == row.id
                )
            ).all()
            if len(records) != len(wanted):
                missing = sorted(set(wanted) - {r.id for r in records})
                raise NotFound(f"no record {missing[0][:40]} in this term", code="record_not_found")
            for record in records:
                self._recording(self._class(session, row, record.class_name, create=False))
                record.status, record.updated_at = wanted[record.id], utcnow()
                session.add(record)
        return len(records)

    def start_notice(
        self, org_id: str, term: str, class_name: str, days: int = DEFAULT_NOTICE_DAYS
    ) -> EvaluationClass:
        """公示: the class's selected records go on notice for `days` working days after today."""
        row = self._open_term(org_id, term)
        today = beijing_date(self.clock.now())
        until = add_working_days(today, days)
        with session_scope(self.engine) as session:
            klass = self._class(session, row, class_name, create=False)
            self._recording(klass)
            records = session.exec(
                select(EvaluationRecord).where(
                    EvaluationRecord.term_id == row.id, EvaluationRecord.class_name == class_name
                )
            ).all()
            if any(r.status == RecordStatus.DRAFT.value for r in records):
                raise Conflict(
                    "some records of the class are not selected or set aside yet (整理遴选 first)",
                    code="selection_unfinished",
                )
            for record in records:
                if record.status == RecordStatus.SELECTED.value:
                    record.status, record.updated_at = RecordStatus.IN_NOTICE.value, utcnow()
                    session.add(record)
            klass.stage, klass.notice_from, klass.notice_until = "notice", today, until
            session.add(klass)
        return klass

    def _noticed(self, session: Session, term: EvaluationTerm, record: EvaluationRecord) -> EvaluationClass:
        klass = self._class(session, term, record.class_name, create=False)
        if klass.stage != "notice" or klass.notice_until is None:
            raise Conflict("the record's class is not in its notice period", code="not_in_notice")
        return klass

    def object(self, org_id: str, record_id: str, raised_by: str, reason: str) -> EvaluationObjection:
        """A student or parent objects to a record on notice (the school enters it): the record
        is held until the objection is resolved."""
        term, record = self.record(org_id, record_id)
        if term.status != "open":
            raise TermSealed(term.term)
        if raised_by not in ("student", "parent") or not 1 <= len(reason) <= 2000:
            raise InvalidInput(
                "an objection is raised by the student or a parent, with a reason of 1 to 2,000 characters",
                code="invalid_input",
            )
        card = self.cards.get(record.student_card)
        with session_scope(self.engine) as session:
            klass = self._noticed(session, term, record)
            if beijing_date(self.clock.now()) > klass.notice_until:  # type: ignore[operator]
                raise Conflict(f"the notice ended on {klass.notice_until}", code="notice_over")
            live = session.get(EvaluationRecord, record.id)
            assert live is not None
            if live.status not in (RecordStatus.IN_NOTICE.value, RecordStatus.OBJECTED.value):
                raise Conflict("only a record on notice can be objected to", code="not_in_notice")
            objection = EvaluationObjection(record_id=record.id, raised_by=raised_by, sealed_reason=b"")
            objection.sealed_reason = self._seal_for(
                session, card, f"evaluation objection {objection.id}", reason.encode()
            )
            live.status, live.updated_at = RecordStatus.OBJECTED.value, utcnow()
            session.add(objection)
            session.add(live)
        return objection

    def resolve(self, org_id: str, objection_id: str, outcome: str, note: str) -> EvaluationObjection:
        """Resolve an objection with a note: the record is kept (or amended: it goes back on
        notice as it is, the amendment told in the note) or withdrawn from the archive."""
        with session_scope(self.engine) as session:
            objection = (
                session.get(EvaluationObjection, objection_id) if len(objection_id) <= _UUID_LEN else None
            )
        if objection is None:
            raise NotFound("no such objection", code="objection_not_found")
        term, record = self.record(org_id, objection.record_id)
        if term.status != "open":
            raise TermSealed(term.term)
        if outcome not in ("kept", "amended", "withdrawn") or not 1 <= len(note) <= 2000:
            raise InvalidInput(
                "resolve with an outcome (kept, amended or withdrawn) and a note of 1 to 2,000 characters",
                code="invalid_input",
            )
        if objection.resolved_at is not None:
            raise Conflict("this objection is resolved already", code="objection_resolved")
        card = self.cards.get(record.student_card)
        with session_scope(self.engine) as session:
            live = session.get(EvaluationObjection, objection.id)
            assert live is not None
            live.outcome, live.resolved_at = outcome, utcnow()
            live.sealed_note = self._seal_for(
                session, card, f"evaluation objection {live.id} note", note.encode()
            )
            session.add(live)
            session.flush()
            still_open = session.exec(
                select(EvaluationObjection.id).where(
                    EvaluationObjection.record_id == record.id, col(EvaluationObjection.resolved_at).is_(None)
                )
            ).first()
            held = session.get(EvaluationRecord, record.id)
            assert held is not None
            if outcome == "withdrawn":
                held.status = RecordStatus.NOT_SELECTED.value
            elif still_open is None:
                held.status = RecordStatus.IN_NOTICE.value
            held.updated_at = utcnow()
            session.add(held)
        return live

    def lock(self, org_id: str, term: str, class_name: str) -> EvaluationClass:
        """After the notice's last working day, with no objection open: the class is locked."""
        row = self._open_term(org_id, term)
        today = beijing_date(self.clock.now())
        with session_scope(self.engine) as session:
            klass = self._class(session, row, class_name, create=False)
            if klass.stage == "locked":
                return klass
            if klass.stage != "notice" or klass.notice_until is None:
                raise Conflict("a class is locked after its notice period", code="not_in_notice")
            if today <= klass.notice_until:
                raise Conflict(
                    f"the notice runs until {klass.notice_until} (Beijing date)", code="notice_not_over"
                )
            records = session.exec(
                select(EvaluationRecord).where(
                    EvaluationRecord.term_id == row.id, EvaluationRecord.class_name == class_name
                )
            ).all()
            if any(r.status == RecordStatus.OBJECTED.value for r in records):
                raise Conflict(
                    "an objection to a record of this class is not resolved", code="objection_open"
                )
            for record in records:
                if record.status == RecordStatus.IN_NOTICE.value:
                    record.status, record.updated_at = RecordStatus.LOCKED.value, utcnow()
                    session.add(record)
            klass.stage, klass.locked_at = "locked", utcnow()
            session.add(klass)
        return klass

    # -- results: levels and profiles ---------------------------------------------------------

    def profile(self, org_id: str, term: str, student_card: str) -> dict[str, Any]:
        """A student's term profile: per domain, the indicators' values and a level (A-D) from
        their weighted place on their scales; records counted. No ranks, no class positions."""
        row = self.term(org_id, term)
        card, class_name = self._student(org_id, student_card)
        with session_scope(self.engine) as session:
            scores = {
                s.indicator_code: s.value
                for s in session.exec(
                    select(EvaluationScore).where(
                        EvaluationScore.term_id == row.id, EvaluationScore.student_card == card.id
                    )
                ).all()
            }
            records = session.exec(
                select(EvaluationRecord.domain, EvaluationRecord.status).where(
                    EvaluationRecord.term_id == row.id, EvaluationRecord.student_card == card.id
                )
            ).all()
        return {
            "term": row.term,
            "student_card": card.id,
            "class_name": class_name,
            "status": row.status,
            "domains": _profile(
                self.content_of(self.framework(row.framework_id)),
                scores,
                [d for d, s in records if s != RecordStatus.NOT_SELECTED.value],
            ),
        }

    # -- sealing ------------------------------------------------------------------------------

    def seal(self, org_id: str, term: str) -> SealResult:
        """Seal the term: every student's record signed, hashed and anchored, exactly once. A
        repeated request answers with the same seal; with the chain unreachable the seal is
        accepted (status sealing) and the node's duties anchor it when the chain is back."""
        with self._seal_lock:
            row = self.term(org_id, term)
            if row.status == "open":
                seals = self._seals(org_id, row)
                try:  # a batch the contract refuses is discarded with its seals (_SealRows.detach)
                    self.anchoring.anchor(
                        org_id,
                        "evaluation_data",
                        [s.leaf_hash for s in seals],
                        idempotency_key=f"evaluation-seal:{row.id}",
                        records=_SealRows(row.id, seals),
                    )
                except ChainUnavailable:
                    pass
            elif row.status == "sealing":
                try:
                    self.anchoring.process(str(row.batch_id))
                except ChainUnavailable:
                    pass
            row = self._mark_sealed(self.term(org_id, term))
        batch = self.anchoring.get(str(row.batch_id))
        return SealResult(
            term=row.term, status=row.status, batch_id=batch.id, root=batch.root, count=batch.leaf_count
        )

    def _seals(self, org_id: str, row: EvaluationTerm) -> list[EvaluationSeal]:
        classes = self.classes(row)
        if not classes:
            raise Conflict("the term has no records or scores to seal", code="term_empty")
        unlocked = [c.class_name for c in classes if c.stage != "locked"]
        if unlocked:
            raise Conflict(f"classes not locked yet: {', '.join(unlocked)[:200]}", code="term_not_locked")
        keys = self.keys.keys_for(org_id)
        member = self.deployment.member(org_id)
        if member is None:
            raise PermissionDenied(f"{org_id} is not a member of this network", code="unknown_member")
        did = issuer_did(self.deployment.chain_id, self.deployment.consortium, member["member_id"])
        kid = key_id(did, keys.ed25519_public_bytes)
        header = jose.b64url(jose.json_dumps({"alg": "EdDSA", "typ": SIGNATURE_TYP, "kid": kid}))
        framework = self.framework(row.framework_id)
        seals: list[EvaluationSeal] = []
        with session_scope(self.engine) as session:
            students = sorted(
                set(
                    session.exec(
                        select(EvaluationRecord.student_card).where(EvaluationRecord.term_id == row.id)
                    ).all()
                )
                | set(
                    session.exec(
                        select(EvaluationScore.student_card).where(EvaluationScore.term_id == row.id)
                    ).all()
                )
            )
            for student in students:
                card = self.cards.get(student)
                document = canonical_json(self._document(session, row, framework, card, did))
                salt = secrets.token_bytes(32)
                signature = (
                    header
                    + ".."
                    + jose.b64url(keys.ed25519_private.sign(detached_signing_input(header, document)))
                )
                seals.append(
                    EvaluationSeal(
                        term_id=row.id,
                        student_card=student,
                        batch_id="",
                        position=0,
                        salt=_hex(salt),
                        leaf_hash=_hex(record_hash(salt, document)),
                        signature=signature,
                        sealed_document=self._seal_for(
                            session, card, f"evaluation seal {row.id} {student}", document
                        ),
                    )
                )
        return seals

    def _mark_sealed(self, row: EvaluationTerm) -> EvaluationTerm:
        batch = self.anchoring.get(str(row.batch_id))
        if batch.status != AnchorStatus.ANCHORED.value:
            return row
        with session_scope(self.engine) as session:
            live = session.get(EvaluationTerm, row.id)
            assert live is not None
            if live.status == "sealing":
                live.status, live.sealed_at = "sealed", batch.block_time or utcnow()
                session.add(live)
        return live

    def resume(self) -> int:
        """Terms whose seal batch was accepted: marked sealed once anchoring has anchored it
        (anchoring's own resume sends it). Returns how many were finished."""
        with session_scope(self.engine) as session:
            sealing = session.exec(select(EvaluationTerm).where(EvaluationTerm.status == "sealing")).all()
        done = 0
        for row in sealing:
            if self._mark_sealed(row).status == "sealed":
                done += 1
        return done

    def _document(
        self,
        session: Session,
        term: EvaluationTerm,
        framework: EvaluationFramework,
        card: IdentityCard,
        did: str,
    ) -> dict[str, Any]:
        """A student's term record as sealed: built from the rows alone, so that the audit can
        rebuild it and compare."""
        records = session.exec(
            select(EvaluationRecord)
            .where(
                EvaluationRecord.term_id == term.id,
                EvaluationRecord.student_card == card.id,
                EvaluationRecord.status == RecordStatus.LOCKED.value,
            )
            .order_by(col(EvaluationRecord.id))
        ).all()
        ids = [r.id for r in records]
        evidence: dict[str, list[EvaluationEvidence]] = defaultdict(list)
        objections: dict[str, list[EvaluationObjection]] = defaultdict(list)
        if ids:
            for e in session.exec(
                select(EvaluationEvidence)
                .where(col(EvaluationEvidence.record_id).in_(ids))
                .order_by(col(EvaluationEvidence.position))
            ).all():
                evidence[e.record_id].append(e)
            for o in session.exec(
                select(EvaluationObjection)
                .where(col(EvaluationObjection.record_id).in_(ids))
                .order_by(col(EvaluationObjection.id))
            ).all():
                objections[o.record_id].append(o)
        scores = session.exec(
            select(EvaluationScore)
            .where(EvaluationScore.term_id == term.id, EvaluationScore.student_card == card.id)
            .order_by(col(EvaluationScore.indicator_code))
        ).all()
        class_names = {r.class_name for r in records} | {s.class_name for s in scores}
        body = self.content_of(framework)
        out_records = []
        for r in records:
            content = json.loads(self._open_for(session, card, f"evaluation record {r.id}", r.sealed_content))
            out_records.append(
                {
                    "id": r.id,
                    "domain": r.domain,
                    "indicator": r.indicator_code,
                    "author": {
                        "role": r.author_role,
                        **({"teacherCard": r.teacher_card} if r.teacher_card else {}),
                    },
                    "occurredOn": r.occurred_on.isoformat(),
                    "title": content["title"],
                    "text": content["text"],
                    "evidence": [
                        {
                            "type": e.evidence_type,
                            "mediaType": e.media_type,
                            "sha256": e.sha256,
                            "size": e.size,
                        }
                        for e in evidence[r.id]
                    ],
                    "objections": [{"raisedBy": o.raised_by, "outcome": o.outcome} for o in objections[r.id]],
                }
            )
        values = {s.indicator_code: s.value for s in scores}
        return {
            "type": DOCUMENT_TYPE,
            "issuer": did,
            "school": term.school_org,
            "term": term.term,
            "framework": {
                "id": framework.id,
                "owner": framework.owner_org,
                "version": framework.version,
                "sha256": framework.content_sha256,
            },
            "student": {"cardId": card.id, "className": sorted(class_names)[0] if class_names else ""},
            "records": out_records,
            "scores": [
                {"indicator": s.indicator_code, "value": s.value, "teacherCard": s.teacher_card}
                for s in scores
            ],
            "profile": {
                d: {"level": v["level"], "scored": v["scored"]}
                for d, v in _profile(body, values, [r.domain for r in records]).items()
            },
        }

    def sealed_record(self, org_id: str, term: str, student_card: str) -> dict[str, Any]:
        """A student's sealed term record: the document, the school's signature, the salt, the
        leaf and its anchor proof (None until the batch is anchored)."""
        row = self.term(org_id, term)
        card = self._card(org_id, student_card, "student")
        with session_scope(self.engine) as session:
            seal = session.exec(
                select(EvaluationSeal).where(
                    EvaluationSeal.term_id == row.id, EvaluationSeal.student_card == card.id
                )
            ).first()
            if seal is None:
                raise NotFound("this student's term record is not sealed", code="seal_not_found")
            document = self._open_for(
                session, card, f"evaluation seal {row.id} {card.id}", seal.sealed_document
            )
        proof = self.anchoring.proof_for(seal.leaf_hash)
        return {
            "term": row.term,
            "student_card": card.id,
            "status": row.status,
            "document": json.loads(document),
            "document_canonical": document.decode(),
            "signature": seal.signature,
            "salt": seal.salt,
            "leaf": seal.leaf_hash,
            "anchor": proof.to_dict() if proof is not None else None,
        }

    # -- what the integrity audit asks ---------------------------------------------------------

    def seals_in_batch(self, batch_id: str) -> list[SealCheck]:
        checks = []
        with session_scope(self.engine) as session:
            seals = session.exec(
                select(EvaluationSeal)
                .where(EvaluationSeal.batch_id == batch_id)
                .order_by(col(EvaluationSeal.position))
            ).all()
            for seal in seals:
                term = session.get(EvaluationTerm, seal.term_id)
                framework = session.get(EvaluationFramework, term.framework_id) if term is not None else None
                card = session.get(IdentityCard, seal.student_card)
                salt = bytes.fromhex(seal.salt[2:]) if len(seal.salt) == 66 else b""
                document = live = None
                try:
                    if card is None or len(salt) != 32:
                        raise NotFound("card gone", code="card_not_found")
                    document = self._open_for(
                        session, card, f"evaluation seal {seal.term_id} {card.id}", seal.sealed_document
                    )
                    if term is not None and framework is not None:
                        issuer = json.loads(document).get("issuer", "")
                        live = canonical_json(self._document(session, term, framework, card, str(issuer)))
                except (LedgerError, ValueError, KeyError):  # a row that does not open is a finding
                    pass
                kid, valid = _check_signature(seal.signature, document)
                checks.append(
                    SealCheck(
                        seal_id=seal.id,
                        term=term.term if term else "",
                        student_card=seal.student_card,
                        position=seal.position,
                        leaf_hash=seal.leaf_hash,
                        document_leaf=_hex(record_hash(salt, document)) if document is not None else None,
                        live_leaf=_hex(record_hash(salt, live)) if live is not None else None,
                        signature_valid=valid,
                        kid=kid,
                    )
                )
        return checks


def _check_signature(signature: str, document: bytes | None) -> tuple[str | None, bool]:
    """The kid of a detached JWS, and whether it signs `document` with the key the kid names."""
    kid: str | None = None
    try:
        head, empty, sig = signature.split(".")
        header = jose.json_loads(jose.b64url_decode(head), "JWS header")
        found = header.get("kid") if isinstance(header, dict) else None
        kid = found if isinstance(found, str) else None
        if empty or kid is None or document is None:
            return kid, False
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(kid.rsplit("#ed25519-", 1)[1]))
        jose.check_signature(header, detached_signing_input(head, document), jose.b64url_decode(sig), public)
    except (LedgerError, ValueError, IndexError, binascii.Error):
        return kid, False
    return kid, True


def _profile(body: FrameworkBody, scores: dict[str, str], record_domains: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in body.domains:
        weighted = total = 0.0
        indicators = []
        for indicator in entry.indicators:
            value = scores.get(indicator.code)
            indicators.append(
                {"code": indicator.code, "name": indicator.name, "weight": indicator.weight, "value": value}
            )
            if value is not None:
                weighted += indicator.weight * fraction_of(indicator, value)
                total += indicator.weight
        out[entry.domain.value] = {
            "label_zh": Domain(entry.domain).label_zh,
            "level": level_of(weighted / total) if total else None,
            "scored": sum(1 for i in indicators if i["value"] is not None),
            "records": sum(1 for d in record_domains if d == entry.domain.value),
            "indicators": indicators,
        }
    return out


class _SealRows:
    """``BatchRecords``: the seals and the term's new status, in the batch's own transaction."""

    def __init__(self, term_id: str, seals: list[EvaluationSeal]) -> None:
        self.term_id = term_id
        self.seals = seals

    def attach(self, session: Session, batch: AnchorBatch, tree: MerkleTree) -> None:
        positions = {_hex(leaf): i for i, leaf in enumerate(tree.leaves)}
        term = session.get(EvaluationTerm, self.term_id)
        if term is None or term.status != "open":
            raise Conflict("the term was sealed by another request", code="term_sealed")
        for seal in self.seals:
            seal.batch_id, seal.position = batch.id, positions[seal.leaf_hash]
            session.add(seal)
        term.status, term.batch_id = "sealing", batch.id
        session.add(term)

    def detach(self, session: Session, batch_id: str) -> None:
        session.exec(delete(EvaluationSeal).where(col(EvaluationSeal.batch_id) == batch_id))
        term = session.get(EvaluationTerm, self.term_id)
        if term is not None:
            term.status, term.batch_id = "open", None
            session.add(term)


def decode_evidence(content_base64: str) -> bytes:
    try:
        return base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("an evidence file's content_base64 is not base64", code="bad_evidence") from None
