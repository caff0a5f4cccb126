"""Exam check-in, the worked example of identity recognition: a session's roster of
candidates by card, a proctor's link to its check-in desk, and each candidate checked in by
their card.

An organiser (a school or a partner, active on chain) creates a session: name, room, start
and end, and its candidates, each by card id with a candidate number (准考证号) and a seat.
Every card is looked up on chain first: an unknown card, or one that is revoked, ended or
expires before the exam, refuses the whole roster (such a card can never check in; the
organiser must name the card that replaced it); a suspended card is accepted with a warning,
because a suspension is often lifted, and the check-in reads the chain again anyway.

A proctor link is a bearer token shown once; only its SHA-256 is kept, and it expires when
the session ends. With it the proctor's page asks for a challenge whose audience is the
session (``urn:eduledger:exam:<id>``) and which asks the wallet for the portrait file; the
candidate's wallet answers it (``eduledger wallet present --challenge``); the verdict is
decided when the page next asks, exactly once, and recorded (which challenge, which card,
which candidate, the verdict, when, through which link).

The photo a candidate's wallet sent and the name it disclosed are shown to the proctor with
the verdict. They are kept (sealed under a data key of their own) only for a candidate who
checked in, so that the proctor can look again during the exam, and erased when the session
ends (``purge``); for any other verdict they are shown once and not kept. Someone whose card
is not on the roster is told so, and the proctor is shown nothing of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, update
from sqlmodel import col, select

from ledger.contracts.bindings import Role
from ledger.contracts.identity import CardStatus as ChainStatus
from ledger.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ledger.identity.models import (
    ExamCandidate,
    ExamCheckIn,
    ExamProctorLink,
    ExamSession,
    IdentityChallenge,
)
from ledger.identity.photos import check_photo
from ledger.identity.service import IdentityService, Recognition
from ledger.store import session_scope
from ledger.store.columns import utcnow

__all__ = ["CHECK_IN_PURPOSE", "STATES", "VERDICTS", "Candidate", "CheckInOutcome", "ExamService",
           "IssuedLink", "NewExam", "ProctorTokenInvalid", "exam_audience"]

MAX_CANDIDATES = 2000
MAX_EXAM_HOURS = 24
CHECK_IN_SECONDS = 180
CHECK_IN_CLAIMS = ("name", "school")
CHECK_IN_PURPOSE = "exam check-in"  # the access log's purpose of every read at the desk
TOKEN_PREFIX = "ept_"
MAX_PROBLEMS = 100
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CARD_RE = re.compile(r"0x[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Each verdict, as the proctor's page says it (Chinese, English).
VERDICTS: dict[str, tuple[str, str]] = {
    "checked_in": ("签到成功", "Checked in"),
    "already_checked_in": ("该考生已经签到过", "Already checked in"),
    "not_a_candidate": ("不是本场考试的考生", "Not a candidate of this session"),
    "card_suspended": ("身份卡已暂停使用", "The card is suspended"),
    "photo_mismatch": ("照片与身份卡登记的人像不符", "The photo does not match the card's portrait"),
    "photo_missing": ("钱包没有发送照片", "The wallet sent no photo"),
    "card_not_valid": ("身份卡无效（已注销、已终止、已过期或密钥已更换）",
                       "The card is not valid (revoked, ended, expired, or its key was replaced)"),
    "answer_invalid": ("出示的身份卡未通过核验", "The card presented did not verify"),
}
STATES: dict[str, tuple[str, str]] = {
    "waiting": ("等待考生出示身份卡…", "Waiting for the candidate's card…"),
    "expired": ("二维码已过期，请重新开始", "The code has expired: start again"),
    "decided": ("已核验", "Checked"),
}
_CARD_FAILURES = frozenset({"card_unknown", "card_mismatch", "card_revoked", "card_ended", "card_expired",
                            "holder_key_rotated"})
_CANDIDATES: Table = ExamCandidate.__table__  # type: ignore[attr-defined]
_CHECK_INS: Table = ExamCheckIn.__table__  # type: ignore[attr-defined]


def exam_audience(exam_id: str) -> str:
    """The audience of a session's challenges: an answer made for one session fails at another."""
    return f"urn:eduledger:exam:{exam_id}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ProctorTokenInvalid(PermissionDenied):
    """No proctor token, or one that is not a link of this session (HTTP 401)."""

    code = "bad_proctor_token"
    http_status = 401


@dataclass(frozen=True)
class Candidate:
    card_id: str
    candidate_number: str
    seat: str | None = None


@dataclass(frozen=True)
class IssuedLink:
    """A proctor link as its creator sees it, once: the token is not kept."""

    link_id: str
    exam_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class NewExam:
    session: ExamSession
    warnings: list[dict[str, Any]]
    link: IssuedLink


@dataclass(frozen=True)
class CheckInOutcome:
    """Where a check-in stands; ``person`` (the candidate's disclosed name and the photo their
    wallet sent) is personal data the proctor reads: log it before showing it."""

    check_in: ExamCheckIn
    state: str
    expires_at: datetime
    candidate: ExamCandidate | None = None
    person: dict[str, Any] | None = None


def _text(value: object, what: str, limit: int, problems: list[dict[str, str]], *,
          optional: bool = False) -> str | None:
    """`value` as one line of 1 to `limit` characters (NFC, stripped), or a problem noted."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append({"field": what, "problem": "required: some text"})
        return None
    text = unicodedata.normalize("NFC", value.strip())
    if len(text) > limit or _CONTROL.search(text):
        problems.append({"field": what, "problem": f"one line of at most {limit} characters"})
        return None
    return text


def _refuse(message: str, code: str, problems: list[dict[str, str]]) -> InvalidInput:
    return InvalidInput(message, code=code, problems=problems[:MAX_PROBLEMS], count=len(problems))


class ExamService:
    def __init__(self, *, identity: IdentityService) -> None:
        self.identity = identity
        self.engine = identity.engine
        self.cipher = identity.cipher

    # -- sessions ----------------------------------------------------------------------

    def create(self, org_id: str, *, name: str, room: str, starts_at: datetime, ends_at: datetime,
               candidates: Sequence[Candidate], now: datetime | None = None) -> NewExam:
        """A session with its roster and a first proctor link, as `org_id` (all or nothing)."""
        now = now or utcnow()
        problems: list[dict[str, str]] = []
        title = _text(name, "name", 200, problems)
        place = _text(room, "room", 100, problems)
        if not all(isinstance(t, datetime) and t.utcoffset() is not None for t in (starts_at, ends_at)):
            raise InvalidInput("starts_at and ends_at are times with their zone", code="bad_exam_times")
        if ends_at <= starts_at or ends_at <= now or ends_at - starts_at > timedelta(hours=MAX_EXAM_HOURS):
            raise InvalidInput(f"an exam ends after it starts, in the future, at most {MAX_EXAM_HOURS} hours "
                               "after it starts", code="bad_exam_times")
        if not isinstance(candidates, Sequence) or not 1 <= len(candidates) <= MAX_CANDIDATES:
            raise InvalidInput(f"a session has 1 to {MAX_CANDIDATES} candidates", code="bad_roster")
        roster = self._checked_roster(candidates, problems)
        if problems:
            raise _refuse("the session is not valid", "invalid_input", problems)
        self._organiser_rights(org_id)
        warnings = self._card_warnings(roster, starts_at)
        assert title is not None and place is not None
        session = ExamSession(organiser_org=org_id, name=title, room=place, starts_at=starts_at,
                              ends_at=ends_at)
        rows = [ExamCandidate(exam_id=session.id, position=i, card_id=c.card_id,
                              candidate_number=c.candidate_number, seat=c.seat) for i, c in enumerate(roster)]
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        link = ExamProctorLink(exam_id=session.id, token_hash=token_hash(token), created_by=org_id,
                               expires_at=ends_at)
        with session_scope(self.engine) as db:
            db.add(session)
            db.flush()
            db.add_all(rows)
            db.add(link)
        return NewExam(session, warnings, IssuedLink(link.id, session.id, token, ends_at))

    def _checked_roster(self, candidates: Sequence[Candidate],
                        problems: list[dict[str, str]]) -> list[Candidate]:
        out: list[Candidate] = []
        for i, entry in enumerate(candidates):
            where = f"candidates.{i}"
            card = entry.card_id.lower() if isinstance(entry.card_id, str) else None
            if card is None or not _CARD_RE.fullmatch(card):
                problems.append({"field": f"{where}.card_id", "problem": "a card id: 0x and 64 hex digits"})
            number = _text(entry.candidate_number, f"{where}.candidate_number", 32, problems)
            seat = _text(entry.seat, f"{where}.seat", 16, problems, optional=True)
            if card is not None and number is not None:
                out.append(Candidate(card, number, seat))
        if problems:
            return out
        for field in ("card_id", "candidate_number", "seat"):
            first: dict[str, int] = {}
            for i, entry in enumerate(out):
                value: str | None = getattr(entry, field)
                if value is None:
                    continue
                if value in first:
                    problems.append({"field": f"candidates.{i}.{field}",
                                     "problem": f"the same as candidates.{first[value]}.{field}"})
                else:
                    first[value] = i
        if problems:
            raise _refuse("a card, candidate number or seat appears twice in the roster",
                          "duplicate_candidate", problems)
        return out

    def _organiser_rights(self, org_id: str) -> None:
        role, can_act = self.identity.member_rights(org_id)
        if not can_act:
            raise PermissionDenied(f"{org_id} is not an active member", code="member_not_active")
        if role not in (Role.SCHOOL, Role.PARTNER):
            raise PermissionDenied("only a school or a partner organises exams", code="role_not_allowed")

    def _card_warnings(self, roster: Sequence[Candidate], starts_at: datetime) -> list[dict[str, Any]]:
        """The cards' states on chain: refuse unknown and dead cards, warn of suspended ones."""
        states = self.identity.card_states([c.card_id for c in roster])
        unknown, dead, warnings = [], [], []
        start = int(starts_at.timestamp())
        for i, (entry, state) in enumerate(zip(roster, states, strict=True)):
            where = f"candidates.{i}.card_id"
            if state is None:
                unknown.append({"field": where, "problem": f"no card {entry.card_id} on chain"})
            elif state.status in (ChainStatus.REVOKED, ChainStatus.ENDED):
                dead.append({"field": where, "problem": f"the card is {state.status.name.lower()}: name the "
                                                        "card that replaced it"})
            elif state.valid_until is not None and state.valid_until <= start:
                dead.append({"field": where, "problem": "the card expires before the exam starts"})
            elif state.status is ChainStatus.SUSPENDED:
                warnings.append({"card_id": entry.card_id, "candidate_number": entry.candidate_number,
                                 "code": "card_suspended",
                                 "message": "the card is suspended: it cannot check in unless reinstated"})
        if unknown:
            raise _refuse(f"{len(unknown)} card(s) of the roster do not exist", "unknown_card", unknown)
        if dead:
            raise _refuse(f"{len(dead)} card(s) of the roster can no longer be used", "card_not_live", dead)
        return warnings

    def get(self, org_id: str, exam_id: str) -> ExamSession:
        """A session, for its organiser only: for anyone else it does not exist."""
        session = self._session(exam_id)
        if session is None or session.organiser_org != org_id:
            raise NotFound("no such exam session", code="exam_not_found")
        return session

    def _session(self, exam_id: str) -> ExamSession | None:
        if not isinstance(exam_id, str) or not _UUID_RE.fullmatch(exam_id):
            return None
        with session_scope(self.engine) as db:
            return db.get(ExamSession, exam_id)

    def roster(self, exam_id: str) -> list[ExamCandidate]:
        with session_scope(self.engine) as db:
            return list(db.exec(select(ExamCandidate).where(ExamCandidate.exam_id == exam_id)
                                .order_by(col(ExamCandidate.position))).all())

    def check_ins(self, exam_id: str) -> list[ExamCheckIn]:
        with session_scope(self.engine) as db:
            return list(db.exec(select(ExamCheckIn).where(ExamCheckIn.exam_id == exam_id)
                                .order_by(col(ExamCheckIn.created_at), col(ExamCheckIn.id))).all())

    # -- proctor links -------------------------------------------------------------------

    def new_proctor_link(self, org_id: str, exam_id: str, *, now: datetime | None = None) -> IssuedLink:
        """Another proctor's link (a second desk, say); valid until the session ends."""
        session = self.get(org_id, exam_id)
        if session.ends_at <= (now or utcnow()):
            raise Conflict("the exam session has ended", code="exam_ended")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        link = ExamProctorLink(exam_id=session.id, token_hash=token_hash(token), created_by=org_id,
                               expires_at=session.ends_at)
        with session_scope(self.engine) as db:
            db.add(link)
        return IssuedLink(link.id, session.id, token, link.expires_at)

    def proctor(self, exam_id: str, token: str | None, *,
                now: datetime | None = None) -> tuple[ExamProctorLink, ExamSession]:
        """The link `token` opens, and its session; 401 for no token or another's, 403 once
        the link has expired (the session is over)."""
        if not token:
            raise ProctorTokenInvalid("a proctor token is required (X-Proctor-Token)",
                                      code="proctor_token_required")
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            raise ProctorTokenInvalid("not a proctor token of this exam session")
        with session_scope(self.engine) as db:
            link = db.exec(select(ExamProctorLink)
                           .where(ExamProctorLink.token_hash == token_hash(token))).first()
            session = db.get(ExamSession, link.exam_id) if link is not None else None
        if link is None or session is None or link.exam_id != exam_id:
            raise ProctorTokenInvalid("not a proctor token of this exam session")
        if link.expires_at <= (now or utcnow()):
            raise PermissionDenied("this proctor link has expired: the exam session is over",
                                   code="proctor_link_expired")
        return link, session

    # -- check-in ------------------------------------------------------------------------

    def start_check_in(self, link: ExamProctorLink, session: ExamSession) -> tuple[ExamCheckIn,
                                                                                  IdentityChallenge]:
        """A challenge for the next candidate, which asks their wallet for the card's name,
        school and portrait file, for this session's audience only."""
        challenge = self.identity.new_challenge(session.organiser_org, exam_audience(session.id),
                                                CHECK_IN_CLAIMS, CHECK_IN_SECONDS, photo=True)
        check_in = ExamCheckIn(exam_id=session.id, proctor_link_id=link.id, challenge_id=challenge.id)
        with session_scope(self.engine) as db:
            db.add(check_in)
        return check_in, challenge

    def check_in(self, session: ExamSession, check_in_id: str, *,
                 now: datetime | None = None) -> CheckInOutcome:
        """Where a check-in stands; once the wallet has answered, the verdict is decided here
        (by the first caller, exactly once) and recorded."""
        now = now or utcnow()
        row = self._check_in(session, check_in_id)
        challenge = self.identity.challenge(row.challenge_id)
        if row.state == "decided":
            return self._outcome(row, session, challenge.expires_at, now)
        if challenge.answer is None or row.state == "checking":
            state = "expired" if challenge.expires_at <= now and challenge.answer is None else "waiting"
            return CheckInOutcome(row, state, challenge.expires_at)
        with session_scope(self.engine, write=True) as db:
            won = db.execute(update(_CHECK_INS).where(
                _CHECK_INS.c.id == row.id, _CHECK_INS.c.state == "waiting").values(state="checking"))
        if won.rowcount != 1:  # type: ignore[attr-defined]  # another request is deciding it
            return CheckInOutcome(row, "waiting", challenge.expires_at)
        try:
            return self._decide(row, session, challenge, now)
        except BaseException:
            with session_scope(self.engine, write=True) as db:  # the next request tries again
                db.execute(update(_CHECK_INS).where(_CHECK_INS.c.id == row.id).values(state="waiting"))
            raise

    def _check_in(self, session: ExamSession, check_in_id: str) -> ExamCheckIn:
        found = None
        if isinstance(check_in_id, str) and _UUID_RE.fullmatch(check_in_id):
            with session_scope(self.engine) as db:
                found = db.get(ExamCheckIn, check_in_id)
        if found is None or found.exam_id != session.id:
            raise NotFound("no such check-in at this exam session", code="check_in_not_found")
        return found

    def _decide(self, row: ExamCheckIn, session: ExamSession, challenge: IdentityChallenge,
                now: datetime) -> CheckInOutcome:
        result = self.identity.recognise(session.organiser_org, challenge.id, now=now)
        self.identity.forget_answer_photo(challenge.id)  # decided: the verdict's copy is all that remains
        card_id = str(result.card["card_id"]) if result.card else None
        candidate = self._candidate(session.id, card_id) if card_id else None
        verdict = _verdict(result, candidate)
        if verdict == "checked_in" and candidate is not None:
            with session_scope(self.engine, write=True) as db:
                won = db.execute(update(_CANDIDATES).where(
                    _CANDIDATES.c.id == candidate.id, _CANDIDATES.c.checked_in_at.is_(None))
                    .values(checked_in_at=now, check_in_id=row.id))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                verdict = "already_checked_in"
            candidate = self._candidate(session.id, candidate.card_id)
        person = _person(result) if candidate is not None and verdict != "answer_invalid" else None
        sealed = None
        if person is not None and verdict == "checked_in":  # kept for the proctor until the session ends
            sealed = self.cipher.seal_transient(f"exam check-in {row.id}", json.dumps(person).encode())
        with session_scope(self.engine, write=True) as db:
            db.execute(update(_CHECK_INS).where(_CHECK_INS.c.id == row.id).values(
                state="decided", card_id=card_id, candidate_id=candidate.id if candidate else None,
                verdict=verdict, failures_json=json.dumps(result.failures), sealed_view=sealed,
                decided_at=now))
        with session_scope(self.engine) as db:
            decided = db.get(ExamCheckIn, row.id)
        assert decided is not None
        return CheckInOutcome(decided, "decided", challenge.expires_at, candidate, person)

    def _outcome(self, row: ExamCheckIn, session: ExamSession, expires_at: datetime,
                 now: datetime) -> CheckInOutcome:
        candidate = None
        if row.candidate_id is not None:
            with session_scope(self.engine) as db:
                candidate = db.get(ExamCandidate, row.candidate_id)
        person = None
        if row.sealed_view is not None and now < session.ends_at:
            person = json.loads(self.cipher.open_transient(f"exam check-in {row.id}", row.sealed_view))
        return CheckInOutcome(row, "decided", expires_at, candidate, person)

    def _candidate(self, exam_id: str, card_id: str) -> ExamCandidate | None:
        with session_scope(self.engine) as db:
            return db.exec(select(ExamCandidate).where(ExamCandidate.exam_id == exam_id,
                                                       ExamCandidate.card_id == card_id.lower())).first()

    # -- what is not kept ----------------------------------------------------------------

    def purge(self, now: datetime | None = None) -> int:
        """Erase what proctors were shown of the candidates of sessions that have ended, and
        photos of answers that never got checked; returns how many were erased."""
        now = now or utcnow()
        with session_scope(self.engine, write=True) as db:
            ended = select(ExamSession.id).where(col(ExamSession.ends_at) <= now)
            done = db.execute(update(_CHECK_INS).where(_CHECK_INS.c.sealed_view.is_not(None),
                                                       _CHECK_INS.c.exam_id.in_(ended))
                              .values(sealed_view=None))
        erased = int(done.rowcount)  # type: ignore[attr-defined]
        return erased + self.identity.purge_answer_photos(now)


def _verdict(result: Recognition, candidate: ExamCandidate | None) -> str:
    """The card's state first, then whether the answer verified, then the roster, then the photo."""
    failures = set(result.failures) - {"portrait_mismatch"}
    if "card_suspended" in failures:
        return "card_suspended"
    if failures & _CARD_FAILURES:
        return "card_not_valid"
    if failures:
        return "answer_invalid"
    if candidate is None:
        return "not_a_candidate"
    if result.photo is None:
        return "photo_missing"
    if result.photo_matches is not True:
        return "photo_mismatch"
    return "checked_in"


def _person(result: Recognition) -> dict[str, Any]:
    """What the proctor is shown of a candidate: the name the card disclosed, the photo sent."""
    person: dict[str, Any] = {"name": result.claims.get("name"), "school": result.claims.get("school"),
                              "photo_base64": None, "photo_type": None}
    if result.photo is not None:
        try:
            person["photo_type"] = check_photo(result.photo)
            person["photo_base64"] = base64.b64encode(result.photo).decode()
        except InvalidInput:  # checked when the wallet sent it; never shown as something else
            pass
    return person
