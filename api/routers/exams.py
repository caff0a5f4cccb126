"""Exam sessions and their check-in desks (ledger.identity.exams): the organiser's routes
(API key), the proctor's (the proctor link's token in ``X-Proctor-Token``), and the
proctor's page.

The proctor's routes are not rate limited per client address: a test centre's desks sit
behind one address and each polls about once a second; their token (256 random bits) is
what guards them. Their answers are never cached and never name a referrer.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import ClientAddress, Services
from api.models import (
    AUTH_ERRORS,
    CHAIN_DOWN,
    IDENTITY_CHAIN_DOWN_AT_FIRST_USE,
    PROCTOR_TOKEN_ERRORS,
    UNREADABLE_BODY,
    CheckInChallengeView,
    CheckInView,
    ExamView,
    NewExam,
    NewExamView,
    ProctorExamView,
    ProctorLinkView,
    error_responses,
)
from api.pages import error_page, exam_proctor_page
from ledger.consortium.models import ApiKey
from ledger.errors import NotFound
from ledger.identity.exams import (
    CHECK_IN_PURPOSE,
    STATES,
    VERDICTS,
    Candidate,
    CheckInOutcome,
    IssuedLink,
)
from ledger.identity.models import ExamSession
from ledger.node import NodeServices
from wallet.qr import qr_png

router = APIRouter(prefix="/v1/exams")
pages = APIRouter()

Organiser = Annotated[ApiKey, Depends(require_role("school", "partner"))]
# Only for the document (the routes' `security`); the service reads and checks the header.
_proctor_header = APIKeyHeader(name="X-Proctor-Token", auto_error=False, scheme_name="proctorToken",
                               description="A proctor link's token (the fragment of the link "
                                           "POST /v1/exams answers with)")
ProctorToken = Annotated[str | None, Depends(_proctor_header)]
_NOT_FOUND = {404: "`exam_not_found` (also another organisation's session)"}
_ROLE = {403: "`role_not_allowed` (not a school or partner: by API key, or on chain), "
              "`member_not_active`"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _private(response: Response) -> None:
    response.headers.update(_PRIVATE)


def _link_view(request: Request, link: IssuedLink) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"link_id": link.link_id, "exam_id": link.exam_id, "token": link.token,
            "url": f"{base}/exams/{link.exam_id}/proctor#token={link.token}", "expires_at": link.expires_at}


def _exam_view(services: NodeServices, session: ExamSession) -> dict[str, Any]:
    exams = services.exams
    roster = exams.roster(session.id)
    numbers = {c.id: c.candidate_number for c in roster}
    return {
        "exam_id": session.id, "organiser_org": session.organiser_org, "name": session.name,
        "room": session.room, "starts_at": session.starts_at, "ends_at": session.ends_at,
        "created_at": session.created_at, "candidate_count": len(roster),
        "checked_in_count": sum(1 for c in roster if c.checked_in_at is not None),
        "candidates": [{"candidate_number": c.candidate_number, "seat": c.seat, "card_id": c.card_id,
                        "checked_in": c.checked_in_at is not None, "checked_in_at": c.checked_in_at}
                       for c in roster],
        "check_ins": [{"check_in_id": r.id, "challenge_id": r.challenge_id,
                       "proctor_link_id": r.proctor_link_id, "state": r.state, "card_id": r.card_id,
                       "candidate_number": numbers.get(r.candidate_id) if r.candidate_id else None,
                       "verdict": r.verdict, "failures": json.loads(r.failures_json or "[]"),
                       "created_at": r.created_at, "decided_at": r.decided_at}
                      for r in exams.check_ins(session.id)]}


@router.post("", status_code=201, response_model=NewExamView,
             responses=error_responses({
                 **UNREADABLE_BODY, **AUTH_ERRORS, **_ROLE,
                 422: "`invalid_input` (the request's shape, or a name, room or number that is not "
                      "one line), `bad_exam_times` (ends before it starts, in the past, or over 24 "
                      "hours), `duplicate_candidate` (a card, candidate number or seat twice), "
                      "`unknown_card` (no such card on chain), `card_not_live` (a card revoked, "
                      "ended, or expiring before the exam); each with details.problems",
                 **CHAIN_DOWN}))
async def create_exam(body: NewExam, request: Request, key: Organiser, services: Services,
                      response: Response) -> dict[str, Any]:
    """A session and its candidates, checked against the chain; a suspended card is accepted
    with a warning. The answer holds a first proctor link, whose token is shown only now."""
    def run() -> dict[str, Any]:
        made = services.exams.create(
            key.org_id, name=body.name, room=body.room, starts_at=body.starts_at, ends_at=body.ends_at,
            candidates=[Candidate(c.card_id, c.candidate_number, c.seat) for c in body.candidates])
        return {**_exam_view(services, made.session), "warnings": made.warnings,
                "proctor_link": _link_view(request, made.link)}

    _private(response)
    return await run_in_threadpool(run)


@router.get("/{exam_id}", response_model=ExamView,
            responses=error_responses({**AUTH_ERRORS, 403: "`role_not_allowed`", **_NOT_FOUND,
                                       **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def get_exam(exam_id: str, key: Organiser, services: Services) -> dict[str, Any]:
    """The session, its roster with each candidate's check-in, and every check-in attempt:
    for the organiser's own keys only."""
    return _exam_view(services, services.exams.get(key.org_id, exam_id))


@router.post("/{exam_id}/proctor-links", status_code=201, response_model=ProctorLinkView,
             responses=error_responses({**AUTH_ERRORS, 403: "`role_not_allowed`", **_NOT_FOUND,
                                        409: "`exam_ended`", **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def new_proctor_link(exam_id: str, request: Request, key: Organiser, services: Services,
                     response: Response) -> dict[str, Any]:
    """Another proctor link (a second desk); valid until the session ends, shown only now."""
    _private(response)
    return _link_view(request, services.exams.new_proctor_link(key.org_id, exam_id))


# -- the proctor's -----------------------------------------------------------------------


@router.get("/{exam_id}/proctor", response_model=ProctorExamView,
            responses=error_responses({**PROCTOR_TOKEN_ERRORS, **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def proctor_exam(exam_id: str, token: ProctorToken, services: Services, response: Response) -> dict[str, Any]:
    """What the proctor's page shows of the session: no card ids, no names."""
    link, session = services.exams.proctor(exam_id, token)
    roster = services.exams.roster(session.id)
    _private(response)
    organiser = services.deployment.member(session.organiser_org)
    return {"exam_id": session.id, "name": session.name, "room": session.room,
            "organiser": {"org_id": session.organiser_org,
                          "name": organiser["name"] if organiser else session.organiser_org},
            "starts_at": session.starts_at, "ends_at": session.ends_at, "link_expires_at": link.expires_at,
            "candidate_count": len(roster),
            "checked_in_count": sum(1 for c in roster if c.checked_in_at is not None),
            "candidates": [{"candidate_number": c.candidate_number, "seat": c.seat,
                            "checked_in": c.checked_in_at is not None, "checked_in_at": c.checked_in_at}
                           for c in roster]}


@router.post("/{exam_id}/check-ins", status_code=201, response_model=CheckInChallengeView,
             responses=error_responses({**PROCTOR_TOKEN_ERRORS, **IDENTITY_CHAIN_DOWN_AT_FIRST_USE}))
def start_check_in(exam_id: str, request: Request, token: ProctorToken, services: Services,
                   response: Response) -> dict[str, Any]:
    """The next candidate's challenge (audience: this session; it asks for the card's name,
    school and portrait file), as a QR code and as the wallet command that answers it."""
    link, session = services.exams.proctor(exam_id, token)
    check_in, challenge = services.exams.start_check_in(link, session)
    base = str(request.base_url).rstrip("/")
    url = f"{base}/v1/identity/challenges/{challenge.id}"
    _private(response)
    return {"check_in_id": check_in.id, "challenge_id": challenge.id, "challenge_url": url,
            "qr_png_base64": base64.b64encode(qr_png(url, box_size=6)).decode(),
            "command": f"eduledger wallet present <卡号 CARD> --challenge {challenge.id} --api {base}",
            "expires_at": challenge.expires_at}


def _check_in_view(outcome: CheckInOutcome) -> dict[str, Any]:
    row, candidate = outcome.check_in, outcome.candidate
    zh, en = STATES[outcome.state]
    verdict = None
    if row.verdict is not None:
        verdict_zh, verdict_en = VERDICTS[row.verdict]
        verdict = {"code": row.verdict, "message_zh": verdict_zh, "message": verdict_en}
    return {"check_in_id": row.id, "challenge_id": row.challenge_id, "state": outcome.state,
            "state_zh": zh, "state_en": en, "expires_at": outcome.expires_at, "verdict": verdict,
            "failures": json.loads(row.failures_json or "[]"), "card_id": row.card_id,
            "candidate": {"candidate_number": candidate.candidate_number, "seat": candidate.seat,
                          "checked_in_at": candidate.checked_in_at} if candidate else None,
            "person": outcome.person, "decided_at": row.decided_at}


@router.get("/{exam_id}/check-ins/{check_in_id}", response_model=CheckInView,
            responses=error_responses({**PROCTOR_TOKEN_ERRORS, 404: "`check_in_not_found`", **CHAIN_DOWN}))
def check_in(exam_id: str, check_in_id: str, token: ProctorToken, services: Services,
             client: ClientAddress, response: Response) -> dict[str, Any]:
    """Where a check-in stands; once the wallet has answered, the verdict (decided at the
    first such request, against the chain), with the candidate's name and the photo their
    wallet sent. Showing them is a read of personal data, logged as "exam check-in"."""
    _, session = services.exams.proctor(exam_id, token)
    outcome = services.exams.check_in(session, check_in_id)
    if outcome.person is not None and outcome.check_in.card_id is not None:
        organiser = services.deployment.member(session.organiser_org)
        services.record_access(session.organiser_org, organiser["role"] if organiser else "partner", "read",
                               "exam_check_in", outcome.check_in.card_id, CHECK_IN_PURPOSE, client=client)
    _private(response)
    return _check_in_view(outcome)


def _page_headers(nonce: str) -> dict[str, str]:
    # Nothing from elsewhere, no framing, the one inline script by nonce, no referrer (the
    # page's own URL never carries the token, which lives in its fragment, but still).
    return {"Content-Security-Policy": f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                                       f"script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; "
                                       "form-action 'none'; frame-ancestors 'none'",
            **_PRIVATE, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}


@pages.get("/exams/{exam_id}/proctor", response_class=Response,
           responses={200: {"description": "The proctor's check-in page; the link's token goes in its "
                                           "fragment (`#token=...`), which the browser never sends",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                      **error_responses({404: "`exam_not_found` (not an exam session id)"}, html=True)})
def proctor_page(exam_id: str, request: Request) -> Response:
    if not _UUID.fullmatch(exam_id):
        if "text/html" not in request.headers.get("accept", ""):  # not a browser: the error body
            raise NotFound("no such exam session", code="exam_not_found")
        return HTMLResponse(error_page("exam_not_found", "没有这场考试。", "No such exam session."),
                            status_code=404, headers=_PRIVATE)
    nonce = secrets.token_urlsafe(16)
    return HTMLResponse(exam_proctor_page(exam_id=exam_id, script_nonce=nonce), headers=_page_headers(nonce))
