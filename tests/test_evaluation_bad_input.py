"""Every bad input the evaluation issue lists, through HTTP: a named 4xx, and nothing written."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from ledger.evaluation.models import (
    EvaluationFramework,
    EvaluationRecord,
    EvaluationScore,
    EvaluationTeaching,
)
from ledger.keys import clear_keystore_cache
from ledger.store import session_scope
from tests.credential_fixtures import Served, served_network
from tests.evaluation_fixtures import CLASS, EVALUATION, SchoolClass, framework, issue_class

TERM = "2025-2026-1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, SchoolClass]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "evaluation bad input")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    clear_keystore_cache()
    try:
        with served_network(Path(tmp_path_factory.mktemp("evaluation-bad"))) as served:
            school = issue_class(served, 3)
            published = _call(served, "/frameworks", framework(), "bureau", 201)
            _call(
                served, "/terms", {"term": TERM, "framework_id": published["framework_id"]}, "school-a", 201
            )
            _call(
                served,
                f"/terms/{TERM}/teachers",
                {"teacher_card": school.teacher, "classes": [CLASS]},
                "school-a",
                200,
            )
            yield served, school
    finally:
        mp.undo()
        clear_keystore_cache()


def _call(served: Served, path: str, body: Any, org: str, status: int) -> Any:
    answer = served.http.post(EVALUATION + path, json=body, headers=served.as_org(org))
    assert answer.status_code == status, answer.text
    return answer.json()


def _rows(served: Served) -> tuple[int, ...]:
    with session_scope(served.node.engine) as session:
        return tuple(
            int(session.exec(select(func.count()).select_from(table)).one())
            for table in (EvaluationFramework, EvaluationRecord, EvaluationScore, EvaluationTeaching)
        )


def _refused(served: Served, path: str, body: Any, status: int, code: str, org: str = "school-a") -> None:
    before = _rows(served)
    assert _call(served, path, body, org, status)["code"] == code
    assert _rows(served) == before


def _record(card: str, teacher: str | None, indicator: str = "M1") -> dict[str, Any]:
    return {
        "student_card": card,
        "indicator_code": indicator,
        "occurred_on": "2025-10-01",
        "title": "记录",
        **({"author_role": "teacher", "teacher_card": teacher} if teacher else {"author_role": "student"}),
    }


def _score(card: str, indicator: str, value: str) -> dict[str, Any]:
    return {"student_card": card, "indicator_code": indicator, "value": value}


@pytest.mark.parametrize(
    ("indicator", "value"),
    [("M2", "101"), ("M2", "-1"), ("M2", "8.5"), ("M1", "E"), ("M1", "a"), ("M2", "A")],
)
def test_a_score_outside_its_scale(setup: tuple[Served, SchoolClass], indicator: str, value: str) -> None:
    served, school = setup
    scores = [_score(school.students[0], "M2", "90"), _score(school.students[1], indicator, value)]
    _refused(
        served,
        f"/terms/{TERM}/scores",
        {"teacher_card": school.teacher, "scores": scores},
        422,
        "score_out_of_scale",
    )  # the good score of the same request is not written either


def test_an_indicator_not_in_the_published_version(setup: tuple[Served, SchoolClass]) -> None:
    served, school = setup
    # L2 is a school's own indicator: not in the bureau's version this term uses
    _refused(
        served,
        f"/terms/{TERM}/records",
        _record(school.students[0], school.teacher, "L2"),
        422,
        "indicator_not_in_framework",
    )
    _refused(
        served,
        f"/terms/{TERM}/scores",
        {"teacher_card": school.teacher, "scores": [_score(school.students[0], "X9", "A")]},
        422,
        "indicator_not_in_framework",
    )


def test_a_record_for_a_student_of_another_school(setup: tuple[Served, SchoolClass]) -> None:
    served, school = setup
    _refused(
        served,
        f"/terms/{TERM}/records",
        _record(school.other_school_student, school.teacher),
        404,
        "student_not_found",
    )
    _refused(
        served, f"/terms/{TERM}/records", _record(school.other_school_student, None), 404, "student_not_found"
    )
    _refused(
        served,
        f"/terms/{TERM}/scores",
        {"teacher_card": school.teacher, "scores": [_score(school.other_school_student, "M1", "A")]},
        404,
        "student_not_found",
    )
    _refused(
        served,
        f"/terms/{TERM}/records",
        _record(school.students[0], school.students[1]),
        404,
        "teacher_not_found",
    )  # a student's card is no teacher's


def test_a_teacher_acting_for_a_class_not_theirs(setup: tuple[Served, SchoolClass]) -> None:
    served, school = setup
    _refused(
        served,
        f"/terms/{TERM}/records",
        _record(school.students[0], school.other_teacher),
        403,
        "not_their_class",
    )
    _refused(
        served,
        f"/terms/{TERM}/scores",
        {"teacher_card": school.other_teacher, "scores": [_score(school.students[0], "M1", "A")]},
        403,
        "not_their_class",
    )


def test_only_the_bureau_publishes_and_frameworks_are_checked(setup: tuple[Served, SchoolClass]) -> None:
    served, _ = setup
    _refused(served, "/frameworks", framework(), 403, "role_not_allowed", org="school-a")
    bad_weights = copy.deepcopy(framework())
    bad_weights["domains"][0]["indicators"][0]["weight"] = 50
    _refused(served, "/frameworks", bad_weights, 422, "bad_weights", org="bureau")
    twice = copy.deepcopy(framework())
    twice["domains"][1]["indicators"][0]["code"] = "M1"
    _refused(served, "/frameworks", twice, 422, "duplicate_indicator", org="bureau")
    scale = copy.deepcopy(framework())
    scale["domains"][1]["indicators"][0]["scale"] = {"type": "points", "min": 50, "max": 50}
    _refused(served, "/frameworks", scale, 422, "bad_scale", org="bureau")
    four = copy.deepcopy(framework())
    four["domains"][4]["domain"] = "moral"
    _refused(served, "/frameworks", four, 422, "bad_domains", org="bureau")


def test_an_edit_to_a_sealed_term(setup: tuple[Served, SchoolClass]) -> None:
    served, school = setup
    term = "2025-2026-2"
    framework_id = served.http.get(EVALUATION + "/frameworks", headers=served.as_org("school-a")).json()[
        "frameworks"
    ][0]["framework_id"]
    _call(served, "/terms", {"term": term, "framework_id": framework_id}, "school-a", 201)
    _call(
        served,
        f"/terms/{term}/teachers",
        {"teacher_card": school.teacher, "classes": [CLASS]},
        "school-a",
        200,
    )
    record = _call(
        served, f"/terms/{term}/records", _record(school.students[2], school.teacher), "school-a", 201
    )
    _call(served, f"/terms/{term}/selection", {"selected": [record["record_id"]]}, "school-a", 200)
    school.clock.set("2026-03-02")
    _call(served, f"/terms/{term}/classes/{CLASS}/notice", {"days": 1}, "school-a", 200)
    school.clock.set("2026-03-04")
    _call(served, f"/terms/{term}/classes/{CLASS}/lock", None, "school-a", 200)
    assert _call(served, f"/terms/{term}/seal", None, "school-a", 200)["status"] == "sealed"
    for path, body in [
        (f"/terms/{term}/records", _record(school.students[2], school.teacher)),
        (
            f"/terms/{term}/scores",
            {"teacher_card": school.teacher, "scores": [_score(school.students[2], "M1", "A")]},
        ),
        (f"/terms/{term}/selection", {"not_selected": [record["record_id"]]}),
        (f"/terms/{term}/teachers", {"teacher_card": school.other_teacher, "classes": [CLASS]}),
        (f"/terms/{term}/classes/{CLASS}/notice", {"days": 5}),
        (f"/records/{record['record_id']}/objections", {"raised_by": "student", "reason": "x"}),
    ]:
        _refused(served, path, body, 409, "term_sealed")
