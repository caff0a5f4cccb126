"""Card rosters with photos: everything checked before anything is issued."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest

from ledger.credentials.roster import RosterError
from ledger.identity.roster import parse_card_roster
from ledger.identity.types import StudentCardRow, TeacherCardRow
from tests.identity_fixtures import photo, resident_id, roster_zip, student, teacher


def problems(data: bytes | str, kind: str = "student", fmt: str = "zip") -> list[dict]:
    with pytest.raises(RosterError) as refused:
        parse_card_roster(data, kind=kind, fmt=fmt)  # type: ignore[arg-type]
    return refused.value.errors


def test_a_csv_roster_with_chinese_headers_and_photos() -> None:
    entries = parse_card_roster(roster_zip([student(n) for n in range(20)]), kind="student", fmt="zip")
    assert len(entries) == 20
    first = entries[0]
    assert isinstance(first.row, StudentCardRow) and first.row.name == "学生0000"
    assert first.row.person_number() == "G" + resident_id(0) and first.photo == photo(0)
    assert first.photo_type == "image/jpeg"


def test_a_json_roster_and_a_teacher_roster() -> None:
    entries = parse_card_roster(roster_zip([teacher(n) for n in range(3)], as_json=True), kind="teacher",
                                fmt="zip")
    assert isinstance(entries[0].row, TeacherCardRow) and entries[0].row.subjects == ["数学", "物理"]
    one = {**student(1), "photo": None, "photo_base64": base64.b64encode(photo(1, "PNG")).decode()}
    [entry] = parse_card_roster(json.dumps([one]), kind="student", fmt="json")
    assert entry.photo_type == "image/png"


def test_every_problem_is_named_at_once() -> None:
    rows = [student(0), student(1, student_number="G" + resident_id(0)),  # the same person twice
            student(2, photo="photos/missing.jpg"), student(3, enrolment_date="2025-13-01"),
            student(4, national_id="110101201001010000")]  # a bad check character
    found = problems(roster_zip(rows, photos={"photos/0000.jpg": photo(0), "photos/0001.jpg": photo(1),
                                               "photos/0003.jpg": photo(3), "photos/0004.jpg": photo(4)}))
    by_row = {(p["row"], p["field"]) for p in found}
    assert (5, "enrolment_date") in by_row and (6, "national_id") in by_row  # CSV lines (header = 1)
    # The photo and repeat checks run once the rows themselves are good.
    rows = [student(0), student(1, student_number="G" + resident_id(0)),
            student(2, photo="photos/missing.jpg")]
    found = problems(roster_zip(rows, photos={"photos/0000.jpg": photo(0), "photos/0001.jpg": photo(1)}))
    assert {(p["row"], p["field"]) for p in found} == {(3, "student_number"), (4, "photo")}


def test_a_photo_that_is_not_an_image_is_refused() -> None:
    rows = [student(0), student(1)]
    found = problems(roster_zip(rows, photos={"photos/0000.jpg": photo(0), "photos/0001.jpg": b"GIF89a..."}))
    assert found == [{"row": 3, "field": "photo",
                      "problem": "the photo photos/0001.jpg is not a JPEG, PNG or WebP image"}]


def test_unknown_columns_and_bad_archives() -> None:
    assert problems(roster_zip([{**student(0), "hobby": "x"}]))[0]["problem"].startswith("unknown column")
    assert problems(b"not a zip")[0]["problem"] == "the file is not a valid ZIP archive"
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("roster.csv", "a")
        archive.writestr("other/roster.csv", "b")
    assert "exactly one" in problems(two.getvalue())[0]["problem"]


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("roster.csv", "姓名\n")
        archive.writestr("photos/big.jpg", b"\x00" * (50 * 2**20))
    assert len(bomb.getvalue()) < 2**20
    with pytest.raises(RosterError) as refused:
        parse_card_roster(bomb.getvalue(), kind="student", fmt="zip")
    assert refused.value.code == "roster_too_large"


def test_graduate_cards_come_from_student_cards_not_rosters() -> None:
    with pytest.raises(Exception) as refused:
        parse_card_roster("[]", kind="graduate", fmt="json")
    assert getattr(refused.value, "code", "") == "bad_card_kind"
