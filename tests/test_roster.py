"""Rosters: JSON and CSV parsing, every problem reported with its row and field."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.credentials.roster import (
    HEADER_ALIASES,
    MAX_LISTED,
    RosterError,
    csv_columns,
    load_json,
    parse_one,
    parse_roster,
)
from ledger.credentials.types import (
    CourseKind,
    CredentialType,
    EducationLevel,
    GraduationRow,
    TrainingRow,
    TranscriptRow,
)
from ledger.errors import InvalidInput
from tests.test_credential_types import (
    CERTIFICATE,
    DEGREE,
    GRADUATION,
    SAMPLE_ID_NUMBER,
    TRAINING,
    TRANSCRIPT,
    VALID,
    typed_rows,
)

DATA = Path(__file__).parent / "data" / "rosters"
GRAD_HEADER = "holder_name,student_id,program,education_level,start_date,graduation_date,certificate_number"
GRAD_LINE = "王小明,2021010101,计算机科学与技术,bachelor,2021-09-01,2025-06-30,C001"
TRANSCRIPT_HEADER = "holder_name,student_id,program,term,code,name,credits,grade,kind"


def fails(data: bytes | str, fmt: str = "json", ctype: str = "graduation", **kw: Any) -> RosterError:
    with pytest.raises(RosterError) as info:
        parse_roster(data, fmt=fmt, ctype=ctype, **kw)  # type: ignore[arg-type]
    return info.value


def problems(err: RosterError) -> list[tuple[int, str]]:
    return [(e["row"], e["field"]) for e in err.errors]


def one_problem(err: RosterError) -> dict[str, Any]:
    assert err.code == "invalid_roster" and len(err.errors) == 1, err.errors
    return err.errors[0]


def as_csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- sample files


def test_sample_graduation_csv() -> None:
    raw = (DATA / "graduation.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # saved as Excel's "CSV UTF-8"
    rows = parse_roster(raw, fmt="csv", ctype=CredentialType.GRADUATION)
    assert [r.holder_name for r in rows] == ["王小明", "李娜", "欧阳思远", "张伟", "陈静怡"]
    assert all(isinstance(r, GraduationRow) for r in rows)
    assert rows[3].education_level is EducationLevel.ASSOCIATE
    assert {r.student_id for r in rows} == {
        "2021010101", "2021010102", "2021020203", "2022030104", "2021050105"}


def test_sample_transcript_csv() -> None:
    rows = parse_roster((DATA / "transcript.csv").read_bytes(), fmt="csv", ctype="transcript")
    assert [r.holder_name for r in rows] == ["王小明", "李娜", "欧阳思远"]
    for row in rows:
        assert isinstance(row, TranscriptRow)
        assert len(row.courses) == 10
        assert row.total_credits == Decimal("25.5")
        assert row.courses[9].kind is CourseKind.ELECTIVE and row.courses[0].kind is CourseKind.REQUIRED
    assert [c.grade for c in rows[0].courses][:5] == ["92", "88", "85", "95", "优秀"]


def test_sample_training_json() -> None:
    rows = parse_roster((DATA / "training.json").read_text(encoding="utf-8"), fmt="json", ctype="training")
    assert len(rows) == 3 and all(isinstance(r, TrainingRow) for r in rows)
    assert rows[1].student_id is None
    assert rows[2].hours == Decimal("12.5") and rows[2].valid_until is not None


# --------------------------------------------------------------------------- valid input


@pytest.mark.parametrize("ctype", list(CredentialType))
def test_every_type_as_json_list_and_object(ctype: CredentialType) -> None:
    as_list = parse_roster(json.dumps([VALID[ctype]] * 1), fmt="json", ctype=ctype)
    as_object = parse_roster(json.dumps({"credentials": [VALID[ctype]]}).encode(), fmt="json", ctype=ctype)
    assert as_list == as_object and isinstance(as_list[0], ctype.row_model)


@pytest.mark.parametrize("ctype", list(CredentialType))
def test_every_type_as_csv(ctype: CredentialType) -> None:
    columns = csv_columns(ctype)
    row = dict(VALID[ctype])
    if ctype is CredentialType.TRANSCRIPT:
        lines = [[{**row, **course}.get(c, "") for c in columns] for course in row["courses"]]
    else:
        lines = [[row.get(c, "") for c in columns]]
    parsed = parse_roster(as_csv([columns, *lines]), fmt="csv", ctype=ctype)
    assert parsed == [parse_one(VALID[ctype], ctype)]


def test_csv_columns() -> None:
    assert csv_columns("graduation") == [
        "holder_name", "student_id", "birth_date", "program", "education_level", "start_date",
        "graduation_date", "certificate_number", "valid_from", "valid_until"]
    assert csv_columns("transcript") == [
        "holder_name", "student_id", "birth_date", "program", "term", "code", "name", "credits", "grade",
        "kind", "valid_from", "valid_until"]
    assert csv_columns("training")[:3] == ["holder_name", "student_id", "birth_date"]


def test_chinese_headers() -> None:
    text = as_csv([
        ["姓名", "学号", "专业", "学历层次", "入学日期", "毕业日期", "证书编号", "有效期至"],
        ["李娜", "2021010102", "软件工程", "本科", "2021-09-01", "2025-06-30", "C2", "2035-06-30"]])
    [row] = parse_roster(text, fmt="csv", ctype="graduation")
    assert row.holder_name == "李娜" and row.valid_until is not None
    text = as_csv([["姓名", "学号", "专业", "学期", "课程代码", "课程名称", "学分", "成绩", "课程性质"],
                   ["李娜", "1", "数学", "2025-2026-1", "M1", "高等数学", "4", "90", "必修"]])
    [row] = parse_roster(text, fmt="csv", ctype="transcript")
    assert row.courses[0].name == "高等数学" and row.courses[0].kind is CourseKind.REQUIRED
    # the same alias means the field the type has: 课程名称 is a training's course_title
    text = as_csv([["姓名", "课程名称", "学时", "结业日期"], ["赵敏", "Python 入门", "16", "2025-07-01"]])
    [row] = parse_roster(text, fmt="csv", ctype="training")
    assert row.course_title == "Python 入门"
    # English variants: case, spaces and hyphens do not matter
    text = as_csv([["Holder Name", "STUDENT-ID", "Program", "Education Level", "Start Date",
                    "Graduation Date", "Certificate Number"], GRAD_LINE.split(",")])
    assert parse_roster(text, fmt="csv", ctype="graduation")[0].student_id == "2021010101"
    assert HEADER_ALIASES["姓名"] == ("holder_name",)


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("as_bytes", [True, False])
def test_bom_or_not(bom: bool, as_bytes: bool) -> None:
    text = ("\ufeff" if bom else "") + f"{GRAD_HEADER}\r\n{GRAD_LINE}\r\n"
    data: bytes | str = text.encode("utf-8") if as_bytes else text
    [row] = parse_roster(data, fmt="csv", ctype="graduation")
    assert row.holder_name == "王小明"
    [row] = parse_roster(("\ufeff" if bom else "") + json.dumps([GRADUATION]), fmt="json", ctype="graduation")
    assert row.holder_name == "王小明"


def test_csv_blank_lines_quoted_cells_and_line_numbers() -> None:
    text = (f"\n{GRAD_HEADER}\n\n{GRAD_LINE}\n"
            '"李\n娜",2021010102,"软件,工程",bachelor,2021-09-01,2025-06-30,C002\n'
            "\n"
            "张伟,2021010103,英语,bachelor,2021/09/01,2025-06-30,C003\n")
    err = fails(text, "csv")
    assert problems(err) == [(5, "holder_name"), (8, "start_date")]  # the quoted record starts on line 5
    assert "line breaks" in err.errors[0]["problem"]


def test_trailing_empty_cells_and_short_lines_are_accepted() -> None:
    second = GRAD_LINE.replace("C001", "C002").replace("0101,", "0102,")
    text = f"{GRAD_HEADER},valid_until\n{GRAD_LINE},,,\n{second}\n"
    rows = parse_roster(text, fmt="csv", ctype="graduation")
    assert len(rows) == 2 and rows[0].valid_until is None


def test_transcript_lines_need_not_be_contiguous() -> None:
    text = as_csv([TRANSCRIPT_HEADER.split(","),
                   ["甲", "1", "数学", "2025-2026-1", "M1", "高数", "4", "90", ""],
                   ["乙", "2", "物理", "2025-2026-1", "P1", "力学", "3", "80", ""],
                   ["甲", "1", "数学", "2025-2026-1", "M2", "线代", "3", "85", ""]])
    rows = parse_roster(text, fmt="csv", ctype="transcript")
    assert [(r.student_id, [c.code for c in r.courses]) for r in rows] == [("1", ["M1", "M2"]), ("2", ["P1"])]


# --------------------------------------------------------------------------- bad rows


def test_missing_field() -> None:
    without = {k: v for k, v in GRADUATION.items() if k != "program"}
    data = [GRADUATION, without | {"student_id": "2", "certificate_number": "C2"}]
    problem = one_problem(fails(json.dumps(data)))
    assert (problem["row"], problem["field"]) == (2, "program") and "missing" in problem["problem"]
    line = GRAD_LINE.replace("计算机科学与技术", "")
    problem = one_problem(fails(f"{GRAD_HEADER}\n{line}\n", "csv"))
    assert (problem["row"], problem["field"]) == (2, "program")


def test_missing_column_is_reported_once() -> None:
    header = GRAD_HEADER.replace(",program", "")
    line = GRAD_LINE.replace("计算机科学与技术,", "")
    err = fails(f"{header}\n{line}\n{line.replace('C001', 'C2').replace('0101,', '0102,')}\n", "csv")
    assert problems(err) == [(1, "program")]
    assert err.errors[0]["problem"] == "required column is missing"


def test_unknown_field_and_column() -> None:
    err = fails(json.dumps([GRADUATION | {"nickname": "小明"}]))
    problem = one_problem(err)
    assert (problem["row"], problem["field"]) == (1, "nickname") and "unknown field" in problem["problem"]
    err = fails(json.dumps([GRADUATION | {"姓名": "王小明"}]))
    assert "use 'holder_name'" in one_problem(err)["problem"]
    err = fails(f"{GRAD_HEADER},备注\n{GRAD_LINE},好学生\n", "csv")
    problem = one_problem(err)
    assert (problem["row"], problem["field"]) == (1, "备注") and "unknown column" in problem["problem"]
    courses = [TRANSCRIPT["courses"][0] | {"teacher": "张老师"}]
    problem = one_problem(fails(json.dumps([TRANSCRIPT | {"courses": courses}]), ctype="transcript"))
    assert problem["field"] == "courses[1].teacher" and "term" in problem["problem"]


def test_repeated_column() -> None:
    err = fails(f"{GRAD_HEADER},姓名\n{GRAD_LINE},王小明\n", "csv")
    assert problems(err) == [(1, "姓名")] and "holder_name" in err.errors[0]["problem"]


def test_wrong_date() -> None:
    problem = one_problem(fails(json.dumps([GRADUATION | {"graduation_date": "2025/06/30"}])))
    assert problem["field"] == "graduation_date" and "YYYY-MM-DD" in problem["problem"]
    problem = one_problem(fails(f"{GRAD_HEADER}\n{GRAD_LINE.replace('2021-09-01', '01.09.2021')}\n", "csv"))
    assert (problem["row"], problem["field"]) == (2, "start_date") and "YYYY-MM-DD" in problem["problem"]


def test_bad_credits() -> None:
    courses = [dict(c) for c in TRANSCRIPT["courses"]]
    courses[1]["credits"] = "-1"
    courses[2]["credits"] = "2.555"
    err = fails(json.dumps([TRANSCRIPT | {"courses": courses}]), ctype="transcript")
    assert problems(err) == [(1, "courses[2].credits"), (1, "courses[3].credits")]
    text = as_csv([TRANSCRIPT_HEADER.split(","),
                   ["甲", "1", "数学", "2025-2026-1", "M1", "高数", "4", "90", ""],
                   ["甲", "1", "数学", "2025-2026-1", "M2", "线代", "三", "85", ""]])
    problem = one_problem(fails(text, "csv", "transcript"))
    assert (problem["row"], problem["field"]) == (3, "credits") and "number" in problem["problem"]


def test_grade_empty() -> None:
    courses = [TRANSCRIPT["courses"][0] | {"grade": ""}]
    problem = one_problem(fails(json.dumps([TRANSCRIPT | {"courses": courses}]), ctype="transcript"))
    assert problem["field"] == "courses[1].grade" and "empty" in problem["problem"]
    text = as_csv([TRANSCRIPT_HEADER.split(","),
                   ["甲", "1", "数学", "2025-2026-1", "M1", "高数", "4", " ", ""]])
    problem = one_problem(fails(text, "csv", "transcript"))
    assert (problem["row"], problem["field"]) == (2, "grade")


def test_every_problem_is_reported_in_row_order() -> None:
    data = [GRADUATION | {"student_id": str(i), "certificate_number": f"C{i}"} for i in range(6)]
    data[1] = data[1] | {"start_date": "x"}
    data[4] = data[4] | {"program": "", "education_level": "?"}
    data[5] = "not an object"
    err = fails(json.dumps(data))
    assert problems(err) == [(2, "start_date"), (5, "program"), (5, "education_level"), (6, "")]
    assert err.details["error_count"] == 4
    assert err.message.startswith("the roster has 4 problems; first: row 2, start_date")


def test_at_most_100_problems_are_listed() -> None:
    data = [GRADUATION | {"student_id": str(i), "certificate_number": f"C{i}", "start_date": "bad",
                          "graduation_date": "bad"} for i in range(80)]
    err = fails(json.dumps(data))
    assert len(err.errors) == MAX_LISTED == 100
    assert err.details["error_count"] == 160
    body = err.to_dict()
    assert body["code"] == "invalid_roster" and set(body["details"]) == {"errors", "error_count"}
    assert set(body["details"]["errors"][0]) == {"row", "field", "problem"}
    assert err.http_status == 422 and isinstance(err, InvalidInput)


def test_duplicates() -> None:
    data = [GRADUATION, GRADUATION | {"holder_name": "李娜"},
            GRADUATION | {"student_id": "9", "start_date": "x"}]
    err = fails(json.dumps(data))
    assert problems(err) == [(2, "student_id"), (2, "certificate_number"), (3, "certificate_number"),
                             (3, "start_date")]
    assert "also on row 1" in err.errors[0]["problem"]
    err = fails(json.dumps([TRANSCRIPT, TRANSCRIPT]), ctype="transcript")
    assert problems(err) == [(2, "student_id")]
    certificates = [CERTIFICATE, CERTIFICATE | {"level": "二等奖"}, CERTIFICATE]
    err = fails(json.dumps(certificates), ctype="certificate")
    assert problems(err) == [(3, "")] and "repeats row 1" in err.errors[0]["problem"]
    namesakes = [TRAINING, TRAINING]  # no student_id: two people may share a name
    assert len(parse_roster(json.dumps(namesakes), fmt="json", ctype="training")) == 2
    twice = [TRANSCRIPT["courses"][0], TRANSCRIPT["courses"][1], TRANSCRIPT["courses"][0]]
    problem = one_problem(fails(json.dumps([TRANSCRIPT | {"courses": twice}]), ctype="transcript"))
    assert problem["field"] == "courses[3].code" and "repeats course 1" in problem["problem"]
    text = as_csv([TRANSCRIPT_HEADER.split(","),
                   ["甲", "1", "数学", "2025-2026-1", "M1", "高数", "4", "90", ""],
                   ["甲", "1", "数学", "2025-2026-2", "M1", "高数", "4", "90", ""],
                   ["甲", "1", "数学", "2025-2026-1", "M1", "高数", "4", "91", ""]])
    problem = one_problem(fails(text, "csv", "transcript"))
    assert (problem["row"], problem["field"]) == (4, "code")


def test_too_many_courses() -> None:
    courses = [TRANSCRIPT["courses"][0] | {"code": f"C{i}"} for i in range(201)]
    problem = one_problem(fails(json.dumps([TRANSCRIPT | {"courses": courses}]), ctype="transcript"))
    assert problem["field"] == "courses" and "200" in problem["problem"]


def test_national_id_column_is_rejected() -> None:
    for column in ["身份证号", "身份证号码", "证件号码", "id_number", "ID Number", "national_id", "idcard",
                   "sfzh", "护照号"]:
        err = fails(f"{GRAD_HEADER},{column}\n{GRAD_LINE},{SAMPLE_ID_NUMBER}\n", "csv")
        problem = one_problem(err)
        assert (problem["row"], problem["field"]) == (1, column), column
        assert "national ID" in problem["problem"] and "data minimisation" in problem["problem"]
    problem = one_problem(fails(json.dumps([GRADUATION | {"id_number": SAMPLE_ID_NUMBER}])))
    assert problem["field"] == "id_number" and "national ID" in problem["problem"]
    problem = one_problem(fails(json.dumps([GRADUATION | {"student_id": "G" + SAMPLE_ID_NUMBER}])))
    assert problem["field"] == "student_id" and "national ID" in problem["problem"]
    # a student id column is fine, and so is a school's own "id" that is not an ID number
    assert parse_roster(f"{GRAD_HEADER}\n{GRAD_LINE}\n", fmt="csv", ctype="graduation")


def test_inconsistent_transcript_holder_lines() -> None:
    text = as_csv([TRANSCRIPT_HEADER.split(","),
                   ["甲", "1", "数学", "2025-2026-1", "M1", "高数", "4", "90", ""],
                   ["甲", "1", "数学", "2025-2026-1", "M2", "线代", "3", "85", ""],
                   ["甲乙", "1", "物理", "2025-2026-1", "M3", "力学", "3", "85", ""],
                   ["丙", "", "物理", "2025-2026-1", "M3", "力学", "3", "85", ""]])
    err = fails(text, "csv", "transcript")
    assert problems(err) == [(4, "holder_name"), (4, "program"), (5, "student_id")]
    assert "differs from line 2 for student_id 1" in err.errors[0]["problem"]
    assert "'甲乙' here, '甲' there" in err.errors[0]["problem"]


def test_csv_line_with_too_many_values() -> None:
    problem = one_problem(fails(f"{GRAD_HEADER}\n{GRAD_LINE},extra\n", "csv"))
    assert problem["row"] == 2 and "8 values" in problem["problem"]


# --------------------------------------------------------------------------- whole-roster problems


def test_too_many_rows() -> None:
    err = fails(json.dumps([GRADUATION] * 4), max_rows=3)
    assert err.code == "roster_too_large" and err.http_status == 413
    assert "at most 3" in err.message and err.details["limit_rows"] == 3
    lines = "\n".join(GRAD_LINE.replace("C001", f"C{i}") for i in range(4))
    assert fails(f"{GRAD_HEADER}\n{lines}\n", "csv", max_rows=3).code == "roster_too_large"
    transcript = as_csv([TRANSCRIPT_HEADER.split(",")] + [
        [f"学生{i}", str(i), "数学", "2025-2026-1", f"M{j}", "课", "1", "90", ""]
        for i in range(3) for j in range(5)])
    # 15 lines, 3 students
    assert len(parse_roster(transcript, fmt="csv", ctype="transcript", max_rows=3)) == 3
    assert fails(transcript, "csv", "transcript", max_rows=2).code == "roster_too_large"


def test_too_many_bytes() -> None:
    data = json.dumps([GRADUATION] * 3)
    for given_data in (data, data.encode()):
        err = fails(given_data, max_bytes=100)
        assert err.code == "roster_too_large" and err.details["limit_bytes"] == 100
    # bytes, not characters, are counted
    chinese = json.dumps([GRADUATION], ensure_ascii=False)
    assert fails(chinese, max_bytes=len(chinese) + 5).code == "roster_too_large"
    assert parse_roster(chinese, fmt="json", ctype="graduation", max_bytes=len(chinese.encode()))


def test_empty() -> None:
    for data, fmt in [("", "json"), ("  \n", "json"), ("[]", "json"), ('{"credentials": []}', "json"),
                      ("", "csv"), ("\ufeff\n\n", "csv"), (f"{GRAD_HEADER}\n", "csv"),
                      (f"{GRAD_HEADER}\n,,,\n", "csv")]:
        assert fails(data, fmt).code == "empty_roster", (data, fmt)


def test_malformed_json() -> None:
    text = '[\n  {"holder_name": "王小明",\n   "student_id" "1"}\n]'
    err = fails(text)
    assert err.code == "malformed_roster" and "line 3" in err.message and err.details["line"] == 3
    for bad in ['{"rows": []}', '{"credentials": [], "other": 1}', '{"credentials": [{}], "type": "degree"}',
                '"text"', "[NaN]", "[Infinity]", '["\\ud800"]', "[1] x"]:
        assert fails(bad).code == "malformed_roster", bad


def test_unknown_roster_keys_are_named_briefly_and_on_one_line() -> None:
    err = fails(json.dumps({"credentials": [], "\n": 1, "x" * 100: 2}))
    assert err.code == "malformed_roster" and "\n" not in err.message
    assert "'\\n'" in err.message and "x" * 30 in err.message and "x" * 60 not in err.message
    err = fails(json.dumps({"credentials": [], **{f"k{i}": i for i in range(12)}}))
    assert err.message.endswith("'k0', 'k1', 'k10', 'k11', 'k2' and 7 more")


def test_deeply_nested_json_is_refused_without_crashing() -> None:
    # this process's recursion limit is raised by py-evm; the stdlib json C scanner would
    # overflow the C stack on this input (segmentation fault) - load_json limits nesting
    for bad in ["[" * 100_000, '{"a":' * 100_000, '[{"courses": ' * 50_000]:
        err = fails(bad)
        assert err.code == "malformed_roster" and "recursion limit" in err.message
    assert load_json(b'[{"a": [1, 2.5, "x", null, true]}]') == [{"a": [1, 2.5, "x", None, True]}]


def test_json_roster_may_name_its_type() -> None:
    rows = parse_roster(json.dumps({"type": "graduation", "credentials": [GRADUATION]}), fmt="json",
                        ctype="graduation")
    assert rows[0].holder_name == "王小明"


def test_malformed_csv_quotes() -> None:
    err = fails(f'{GRAD_HEADER}\n{GRAD_LINE}\n"王"小明,2,p,bachelor,2021-09-01,2025-06-30,C2\n', "csv")
    assert err.code == "malformed_roster" and err.message.startswith("line 3:")
    assert err.errors == [{"row": 3, "field": "", "problem": err.errors[0]["problem"]}]
    assert "quote" in err.errors[0]["problem"]
    err = fails(f'{GRAD_HEADER}\n{GRAD_LINE}\n"王小明,2,p,bachelor\n2021-09-01,2025-06-30,C2\n', "csv")
    assert err.code == "malformed_roster" and "line 3" in err.message and "never closed" in err.message
    problem = one_problem(fails(f"{GRAD_HEADER}\n{GRAD_LINE}\x00\n", "csv"))  # NUL: not malformed CSV,
    assert (problem["row"], problem["field"]) == (2, "certificate_number")  # but no control characters


def test_not_utf8() -> None:
    data = f"{GRAD_HEADER}\n{GRAD_LINE}\n".encode("gb18030")
    err = fails(data, "csv")
    assert err.code == "malformed_roster" and "UTF-8" in err.message and err.details["line"] == 2


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInput):
        parse_roster("[]", fmt="xml", ctype="graduation")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        parse_roster("[]", fmt="json", ctype="diploma")


# --------------------------------------------------------------------------- single issuance


def test_parse_one() -> None:
    assert isinstance(parse_one(DEGREE, "degree"), type(parse_one(DEGREE, CredentialType.DEGREE)))
    with pytest.raises(RosterError) as info:
        parse_one(DEGREE | {"conferral_date": "2025-6-30", "身份证": SAMPLE_ID_NUMBER}, "degree")
    assert problems(info.value) == [(1, "conferral_date"), (1, "身份证")]
    with pytest.raises(RosterError) as info:
        parse_one(["not", "a", "dict"], "degree")  # type: ignore[arg-type]
    assert problems(info.value) == [(1, "")]
    assert parse_one(TRAINING, "training").hours == 50


# --------------------------------------------------------------------------- property


@settings(max_examples=60, deadline=None)
@given(st.lists(typed_rows(), min_size=1, max_size=5))
def test_csv_and_json_give_the_same_rows(cases: list[tuple[CredentialType, dict[str, Any]]]) -> None:
    ctype = cases[0][0]
    data = [d for t, d in cases if t is ctype]
    for n, d in enumerate(data):  # one credential per student and certificate number
        d["student_id"] = f"S{n}"
        if "certificate_number" in d:
            d["certificate_number"] = f"N{n}"
        d["holder_name"] = d["holder_name"] + str(n)
    from_json = parse_roster(json.dumps(data, ensure_ascii=False), fmt="json", ctype=ctype)
    columns = csv_columns(ctype)
    lines: list[list[Any]] = [columns]
    for d in data:
        for course in d.get("courses", [{}]):
            lines.append([{**d, **course}.get(c, "") for c in columns])
    from_csv = parse_roster(as_csv(lines).encode("utf-8-sig"), fmt="csv", ctype=ctype)
    assert from_csv == from_json
