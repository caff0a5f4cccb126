"""A framework, a school's layer on it, and a class of students with identity cards, for the
evaluation tests; a clock the tests move (the notice period runs on Beijing dates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.credentials.types import CHINA_TZ
from tests.identity_fixtures import roster_zip, student, teacher

CLASS = "七年级1班"
EVALUATION = "/v1/evaluation"


def framework(school_year: str = "2025-2026", *, title: str = "区综合素质评价指标体系") -> dict[str, Any]:
    levels = {"type": "levels", "levels": ["A", "B", "C", "D"]}
    points = {"type": "points", "min": 0, "max": 100}
    return {
        "school_year": school_year,
        "title": title,
        "domains": [
            {
                "domain": "moral",
                "indicators": [
                    {
                        "code": "M1",
                        "name": "思想品德",
                        "weight": 60,
                        "scale": levels,
                        "evidence_types": ["志愿服务证明"],
                    },
                    {"code": "M2", "name": "公民素养", "weight": 40, "scale": points},
                ],
            },
            {
                "domain": "intellectual",
                "indicators": [
                    {
                        "code": "I1",
                        "name": "学业水平",
                        "weight": 100,
                        "scale": points,
                        "evidence_types": ["成绩单"],
                    }
                ],
            },
            {
                "domain": "physical",
                "indicators": [
                    {"code": "P1", "name": "体质健康", "weight": 50, "scale": points},
                    {"code": "P2", "name": "运动技能", "weight": 50, "scale": levels},
                ],
            },
            {
                "domain": "aesthetic",
                "indicators": [
                    {
                        "code": "A1",
                        "name": "艺术素养",
                        "weight": 100,
                        "scale": levels,
                        "evidence_types": ["作品"],
                    }
                ],
            },
            {
                "domain": "labour",
                "indicators": [{"code": "L1", "name": "劳动实践", "weight": 100, "scale": levels}],
            },
        ],
    }


def school_layer(base_id: str) -> dict[str, Any]:
    return {
        "base_framework_id": base_id,
        "title": "校本综合素质评价指标",
        "indicators": [
            {
                "domain": "labour",
                "code": "L2",
                "name": "校园农场",
                "weight": 30,
                "scale": {"type": "levels", "levels": ["A", "B", "C", "D"]},
                "evidence_types": ["照片"],
            }
        ],
        "weights": {"labour": {"L1": 70, "L2": 30}},
    }


class MovableClock:
    """The evaluation service's clock, set to a Beijing time by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at

    def set(self, day: str, hour: int = 10) -> None:
        self.at = datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=CHINA_TZ).astimezone(UTC)


@dataclass
class SchoolClass:
    students: list[str]  # card ids, of CLASS
    teacher: str  # teaches CLASS
    other_teacher: str  # teaches nothing
    other_school_student: str
    clock: MovableClock


def issue_class(served: Any, size: int, *, offset: int = 0) -> SchoolClass:
    """`size` students of CLASS and two teachers at school-a, a student at school-b."""
    school, school_b = served.as_org("school-a"), served.as_org("school-b")
    zipped = {"Content-Type": "application/zip"}
    rows = [student(offset + n, class_name="1班") for n in range(size)]
    cards = served.http.post(
        "/v1/identity/cards",
        params={"kind": "student"},
        content=roster_zip(rows),
        headers={**school, **zipped},
    )
    assert cards.status_code == 201, cards.text
    teachers = served.http.post(
        "/v1/identity/cards",
        params={"kind": "teacher"},
        content=roster_zip([teacher(offset + 1), teacher(offset + 2)]),
        headers={**school, **zipped},
    )
    assert teachers.status_code == 201, teachers.text
    other = served.http.post(
        "/v1/identity/cards",
        params={"kind": "student"},
        content=roster_zip([student(offset + 900)]),
        headers={**school_b, **zipped},
    )
    assert other.status_code == 201, other.text
    clock = MovableClock()
    served.app.state.services.evaluation.clock = clock
    t = teachers.json()["cards"]
    return SchoolClass(
        [c["card_id"] for c in cards.json()["cards"]],
        t[0]["card_id"],
        t[1]["card_id"],
        other.json()["cards"][0]["card_id"],
        clock,
    )
