"""Credential types: row models, VC 2.0 / Open Badges 3.0 payloads, labels (unit + property tests)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ledger.canonical import canonical_json
from ledger.credentials.roster import parse_one
from ledger.credentials.types import (
    CHINA_TZ,
    CLAIM_LABELS,
    OB3_CONTEXT,
    VALUE_LABELS,
    VC_V2_CONTEXT,
    CertificateCategory,
    CertificateRow,
    CourseKind,
    CredentialType,
    DegreeRow,
    EducationLevel,
    GraduationRow,
    TrainingRow,
    TranscriptRow,
    claim_name,
    decimal_str,
    looks_like_national_id,
    validity_window,
    vc_payload,
)
from ledger.errors import InvalidInput

URN = "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"
DID = "did:web:school.example.edu.cn"
NOW = datetime(2025, 7, 1, 8, 30, tzinfo=UTC)
# The GB 11643 sample number used in documentation (valid check character).
SAMPLE_ID_NUMBER = "11010519491231002X"

GRADUATION = {
    "holder_name": "王小明", "student_id": "2021010101", "program": "计算机科学与技术",
    "education_level": "bachelor", "start_date": "2021-09-01", "graduation_date": "2025-06-30",
    "certificate_number": "102842025050001",
}
DEGREE = {
    "holder_name": "王小明", "student_id": "2021010101", "degree_name": "工学学士",
    "field": "工学", "conferral_date": "2025-06-30", "certificate_number": "1028442025000123",
}
TRANSCRIPT = {
    "holder_name": "李娜", "student_id": "2024010102", "program": "计算机科学与技术",
    "courses": [
        {"term": "2024-2025-1", "code": "MATH1001", "name": "高等数学A（上）", "credits": "5",
         "grade": "92", "kind": "required"},
        {"term": "2024-2025-1", "code": "PE1001", "name": "体育（一）", "credits": 1, "grade": "优秀"},
        {"term": "2024-2025-2", "code": "ART1001", "name": "书法鉴赏", "credits": 1.5, "grade": "A-",
         "kind": "选修"},
    ],
}
CERTIFICATE = {
    "holder_name": "陈静怡", "student_id": "2021050105", "title": "全国大学生英语竞赛",
    "category": "competition", "level": "一等奖", "awarded_date": "2025-05-20",
}
TRAINING = {
    "holder_name": "赵敏", "course_title": "中小学教师信息技术应用能力提升培训", "hours": "50",
    "completion_date": "2025-07-15", "result": "合格",
}
VALID = {
    CredentialType.GRADUATION: GRADUATION,
    CredentialType.DEGREE: DEGREE,
    CredentialType.TRANSCRIPT: TRANSCRIPT,
    CredentialType.CERTIFICATE: CERTIFICATE,
    CredentialType.TRAINING: TRAINING,
}


def payload_for(ctype: CredentialType, row: Any, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"credential_id": URN, "issuer_id": DID, "issuer_name": "示例大学",
                            "valid_from": NOW, "valid_until": None}
    args.update(kw)
    return vc_payload(ctype, row, **args)


def errors_of(model: type, data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}


def claim_paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every key under value (list items share their list's path)."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= claim_paths(sub, path)
    elif isinstance(value, list):
        for item in value:
            paths |= claim_paths(item, prefix)
    return paths


# --------------------------------------------------------------------------- enums


def test_credential_type_metadata() -> None:
    ct = CredentialType
    assert [t.value for t in ct] == ["graduation", "degree", "transcript", "certificate", "training"]
    assert ct.GRADUATION.vc_type == "GraduationCertificate"
    assert ct.DEGREE.vc_type == "DegreeCertificate"
    assert ct.TRANSCRIPT.vc_type == "Transcript"
    assert ct.CERTIFICATE.vc_type == "AchievementCertificate"
    assert ct.TRAINING.vc_type == "TrainingCertificate"
    labels = (ct.GRADUATION.label_zh, ct.DEGREE.label_zh, ct.TRANSCRIPT.label_zh)
    assert labels == ("毕业证书", "学位证书", "成绩单")
    assert (ct.CERTIFICATE.label_zh, ct.TRAINING.label_zh) == ("证书", "培训证书")
    assert all(t.label_en for t in ct)
    for t in (ct.GRADUATION, ct.DEGREE, ct.TRANSCRIPT):
        assert t.issuer_roles == frozenset({"school"})
    assert ct.CERTIFICATE.issuer_roles == frozenset({"school", "partner"})
    assert ct.TRAINING.issuer_roles == frozenset({"partner"})
    assert [t for t in ct if t.open_badge] == [ct.CERTIFICATE, ct.TRAINING]
    assert ct("transcript") is ct.TRANSCRIPT and ct.TRANSCRIPT.row_model is TranscriptRow


def test_enum_labels_and_achievement_types() -> None:
    assert EducationLevel.BACHELOR.label_zh == "本科"
    assert all(level.label_zh and level.label_en for level in EducationLevel)
    assert CertificateCategory.AWARD.achievement_type == "Award"
    assert CertificateCategory.COMPETITION.achievement_type == "Award"
    assert CertificateCategory.QUALIFICATION.achievement_type == "Certificate"
    assert CourseKind.REQUIRED.label_zh == "必修" and CourseKind.ELECTIVE.label_en == "Elective"


# --------------------------------------------------------------------------- row models


@pytest.mark.parametrize("ctype", list(CredentialType))
def test_every_type_valid(ctype: CredentialType) -> None:
    row = ctype.row_model.model_validate(VALID[ctype])
    assert row.holder_name == VALID[ctype]["holder_name"]
    assert row.ctype is ctype


def test_graduation_fields_and_aliases() -> None:
    row = GraduationRow.model_validate({**GRADUATION, "holder_name": "  王小明 ", "education_level": "本科"})
    assert row.holder_name == "王小明"
    assert row.education_level is EducationLevel.BACHELOR
    assert row.start_date == date(2021, 9, 1) and row.birth_date is None
    for alias, level in [("高中", "senior_secondary"), ("大专", "associate"), ("Junior Secondary",
                         "junior_secondary"), ("博士", "doctor"), ("中职", "vocational")]:
        assert GraduationRow.model_validate({**GRADUATION, "education_level": alias}).education_level == level
    errs = errors_of(GraduationRow, {**GRADUATION, "education_level": "phd"})
    assert "one of" in errs["education_level"] and "bachelor" in errs["education_level"]


def test_text_limits() -> None:
    errs = errors_of(GraduationRow, {**GRADUATION, "holder_name": "名" * 101, "program": "   ",
                                     "certificate_number": "A 1"})
    assert set(errs) == {"holder_name", "program", "certificate_number"}
    assert "100" in errs["holder_name"]
    assert GraduationRow.model_validate({**GRADUATION, "holder_name": "名" * 100}).holder_name == "名" * 100
    assert set(errors_of(GraduationRow, {**GRADUATION, "holder_name": "王\n小明"})) == {"holder_name"}
    assert set(errors_of(GraduationRow, {**GRADUATION, "holder_name": "王\ud800"})) == {"holder_name"}
    assert set(errors_of(CertificateRow, {**CERTIFICATE, "description": "x" * 501})) == {"description"}
    # descriptions may have line breaks
    assert CertificateRow.model_validate({**CERTIFICATE, "description": "第一行\n第二行"}).description


def test_unknown_and_missing_fields() -> None:
    errs = errors_of(GraduationRow, {**{k: v for k, v in GRADUATION.items() if k != "program"}, "extra": 1})
    assert set(errs) == {"program", "extra"}


def test_numbers_become_text_where_text_is_expected() -> None:
    row = GraduationRow.model_validate({**GRADUATION, "student_id": 2021010101})
    assert row.student_id == "2021010101"


def test_dates() -> None:
    for bad in ["2021/09/01", "2021-9-1", "20210901", 20210901, "2021-02-30", "2021-09-01T00:00:00"]:
        errs = errors_of(GraduationRow, {**GRADUATION, "start_date": bad})
        assert set(errs) == {"start_date"}
        assert "YYYY-MM-DD" in errs["start_date"], bad
    errs = errors_of(GraduationRow, {**GRADUATION, "start_date": datetime(2021, 9, 1)})
    assert "YYYY-MM-DD" in errs["start_date"]
    row = GraduationRow.model_validate({**GRADUATION, "start_date": date(2021, 9, 1)})
    assert row.start_date.year == 2021
    errs = errors_of(GraduationRow, {**GRADUATION, "start_date": "1850-01-01"})
    assert "out of range" in errs["start_date"]
    errs = errors_of(GraduationRow, {**GRADUATION, "graduation_date": "2021-09-01"})
    assert "after start_date" in errs["graduation_date"]


def test_validity_dates() -> None:
    row = GraduationRow.model_validate(
        {**GRADUATION, "valid_from": "2025-07-01", "valid_until": "2030-06-30"})
    assert row.valid_until == date(2030, 6, 30)
    errs = errors_of(GraduationRow, {**GRADUATION, "valid_from": "2025-07-01", "valid_until": "2025-07-01"})
    assert "after valid_from" in errs["valid_until"]
    errs = errors_of(GraduationRow, {**GRADUATION, "valid_until": "2025-06-01"})
    assert "graduation_date" in errs["valid_until"]
    errs = errors_of(TrainingRow, {**TRAINING, "valid_until": "2025-07-14"})
    assert "completion_date" in errs["valid_until"]


def test_national_id_numbers_are_refused() -> None:
    assert looks_like_national_id(SAMPLE_ID_NUMBER)
    assert looks_like_national_id(SAMPLE_ID_NUMBER.lower())
    assert looks_like_national_id("G" + SAMPLE_ID_NUMBER)  # 全国学籍号
    assert not looks_like_national_id("110105194912310021")  # wrong check character
    assert not looks_like_national_id("110105194913310029")  # no such birth date
    assert not looks_like_national_id("2021010101")
    assert not looks_like_national_id("102842025050001")
    for value in (SAMPLE_ID_NUMBER, "G" + SAMPLE_ID_NUMBER):
        errs = errors_of(GraduationRow, {**GRADUATION, "student_id": value})
        assert "national ID" in errs["student_id"]
    errs = errors_of(TrainingRow, {**TRAINING, "student_id": SAMPLE_ID_NUMBER})
    assert "national ID" in errs["student_id"]


def test_courses() -> None:
    row = TranscriptRow.model_validate(TRANSCRIPT)
    assert [c.credits for c in row.courses] == [Decimal(5), Decimal(1), Decimal("1.5")]
    assert row.total_credits == Decimal("7.5")
    assert row.courses[0].kind is CourseKind.REQUIRED and row.courses[1].kind is None
    assert row.courses[2].kind is CourseKind.ELECTIVE

    def course_errors(**change: Any) -> dict[str, str]:
        course = {**TRANSCRIPT["courses"][0], **change}
        return errors_of(TranscriptRow, {**TRANSCRIPT, "courses": [course]})

    row = TranscriptRow.model_validate(
        {**TRANSCRIPT, "courses": [{**TRANSCRIPT["courses"][0], "credits": "2.50"}]})
    assert row.courses[0].credits == Decimal("2.5")
    for bad in ["-1", "30.5", "1.234", "abc", "", "NaN", "Infinity", True, None, float("nan")]:
        assert set(course_errors(credits=bad)) == {"courses.0.credits"}, bad
    assert TranscriptRow.model_validate(
        {**TRANSCRIPT, "courses": [{**TRANSCRIPT["courses"][0], "credits": "30"}]}).total_credits == 30
    for good, stored in [("100", "100"), ("0", "0"), ("87.5", "87.5"), (95, "95"), (87.5, "87.5"),
                         ("a+", "A+"), ("B-", "B-"), ("P", "P"), ("pass", "Pass"), ("优秀", "优秀"),
                         ("不及格", "不及格"), ("缺考", "缺考")]:
        row = TranscriptRow.model_validate(
            {**TRANSCRIPT, "courses": [{**TRANSCRIPT["courses"][0], "grade": good}]})
        assert row.courses[0].grade == stored
    for bad in ["", "  ", "101", "100.5", "good", "G", True, None]:
        assert set(course_errors(grade=bad)) == {"courses.0.grade"}, bad
    assert "empty" in course_errors(grade="")["courses.0.grade"]
    for bad in ["2025-2027-1", "2025-2026-5", "2025秋", "2025-2026", ""]:
        assert set(course_errors(term=bad)) == {"courses.0.term"}, bad
    assert set(course_errors(kind="必选")) == {"courses.0.kind"}
    assert set(errors_of(TranscriptRow, {**TRANSCRIPT, "courses": []})) == {"courses"}
    many = [{**TRANSCRIPT["courses"][0], "code": f"C{i}"} for i in range(201)]
    assert set(errors_of(TranscriptRow, {**TRANSCRIPT, "courses": many})) == {"courses"}
    assert len(TranscriptRow.model_validate({**TRANSCRIPT, "courses": many[:200]}).courses) == 200
    twice = [TRANSCRIPT["courses"][0], TRANSCRIPT["courses"][1], TRANSCRIPT["courses"][0]]
    assert "repeats course 1" in errors_of(TranscriptRow, {**TRANSCRIPT, "courses": twice})["courses"]


def test_training_hours() -> None:
    assert TrainingRow.model_validate({**TRAINING, "hours": 12.5}).hours == Decimal("12.5")
    assert TrainingRow.model_validate({**TRAINING, "hours": "10000"}).hours == 10000
    for bad in [0, "0", -3, "10000.5", "x"]:
        assert set(errors_of(TrainingRow, {**TRAINING, "hours": bad})) == {"hours"}, bad


def test_certificate_category_aliases() -> None:
    for alias, category in [("获奖", "award"), ("竞赛", "competition"), ("资格证书", "qualification"),
                            ("Award", "award")]:
        assert CertificateRow.model_validate({**CERTIFICATE, "category": alias}).category == category


def test_decimal_str() -> None:
    assert [decimal_str(Decimal(x)) for x in ["2.50", "1E+1", "0.00", "-0", "30", "0.5"]] == [
        "2.5", "10", "0", "0", "30", "0.5"]


def test_claim_names() -> None:
    assert claim_name("holder_name") == "holderName"
    assert claim_name("certificate_number") == "certificateNumber"
    assert claim_name("field") == "fieldOfStudy"
    assert claim_name("result") == "trainingResult"


# --------------------------------------------------------------------------- payloads


def test_graduation_payload() -> None:
    row = GraduationRow.model_validate({**GRADUATION, "birth_date": "2003-04-05"})
    until = datetime(2030, 6, 30, 23, 59, 59, tzinfo=CHINA_TZ)
    p = payload_for(CredentialType.GRADUATION, row, valid_until=until)
    assert list(p) == ["@context", "id", "type", "name", "issuer", "validFrom", "validUntil",
                       "credentialSubject"]
    assert p["@context"] == [VC_V2_CONTEXT, OB3_CONTEXT]
    assert OB3_CONTEXT == "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
    assert p["type"] == ["VerifiableCredential", "GraduationCertificate"]
    assert p["issuer"] == {"id": DID, "name": "示例大学"}
    assert p["validFrom"] == "2025-07-01T08:30:00Z"
    assert p["validUntil"] == "2030-06-30T15:59:59Z"
    assert p["credentialSubject"] == {
        "holderName": "王小明", "studentId": "2021010101", "birthDate": "2003-04-05",
        "program": "计算机科学与技术", "educationLevel": "bachelor", "startDate": "2021-09-01",
        "graduationDate": "2025-06-30", "certificateNumber": "102842025050001",
    }


def test_degree_payload() -> None:
    p = payload_for(CredentialType.DEGREE, DegreeRow.model_validate(DEGREE))
    assert p["type"] == ["VerifiableCredential", "DegreeCertificate"]
    assert "validUntil" not in p
    assert p["credentialSubject"] == {
        "holderName": "王小明", "studentId": "2021010101", "degreeName": "工学学士",
        "fieldOfStudy": "工学", "conferralDate": "2025-06-30", "certificateNumber": "1028442025000123",
    }


def test_transcript_payload() -> None:
    p = payload_for(CredentialType.TRANSCRIPT, TranscriptRow.model_validate(TRANSCRIPT))
    subject = p["credentialSubject"]
    assert list(subject) == ["holderName", "studentId", "program", "courses", "totalCredits"]
    assert subject["courses"][0] == {"term": "2024-2025-1", "code": "MATH1001", "name": "高等数学A（上）",
                                     "credits": "5", "grade": "92", "kind": "required"}
    assert subject["courses"][1] == {"term": "2024-2025-1", "code": "PE1001", "name": "体育（一）",
                                     "credits": "1", "grade": "优秀"}
    assert subject["courses"][2]["credits"] == "1.5" and subject["courses"][2]["kind"] == "elective"
    assert subject["totalCredits"] == "7.5"


def test_certificate_payload_is_an_open_badge() -> None:
    p = payload_for(CredentialType.CERTIFICATE, CertificateRow.model_validate(CERTIFICATE))
    assert p["type"] == ["VerifiableCredential", "AchievementCertificate", "OpenBadgeCredential"]
    assert p["issuer"] == {"id": DID, "type": ["Profile"], "name": "示例大学"}
    subject = p["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["holderName"] == "陈静怡" and subject["category"] == "competition"
    assert subject["level"] == "一等奖" and subject["awardedDate"] == "2025-05-20"
    assert "title" not in subject and "description" not in subject
    achievement = subject["achievement"]
    assert list(achievement) == ["id", "type", "name", "description", "achievementType", "criteria"]
    assert achievement["id"].startswith("urn:uuid:")
    assert achievement["type"] == ["Achievement"]
    assert achievement["name"] == "全国大学生英语竞赛"
    assert achievement["achievementType"] == "Award"
    assert "一等奖" in achievement["description"]
    assert "示例大学" in achievement["criteria"]["narrative"]
    custom = CertificateRow.model_validate(
        {**CERTIFICATE, "category": "qualification", "description": "通过考核"})
    achievement = payload_for(CredentialType.CERTIFICATE, custom)["credentialSubject"]["achievement"]
    assert achievement["achievementType"] == "Certificate" and achievement["description"] == "通过考核"


def test_training_payload() -> None:
    p = payload_for(CredentialType.TRAINING, TrainingRow.model_validate(TRAINING), issuer_name="示例培训中心")
    assert p["type"] == ["VerifiableCredential", "TrainingCertificate", "OpenBadgeCredential"]
    subject = p["credentialSubject"]
    assert subject["hours"] == "50" and subject["trainingResult"] == "合格"
    assert subject["completionDate"] == "2025-07-15" and "studentId" not in subject
    assert subject["achievement"]["achievementType"] == "CertificateOfCompletion"
    assert subject["achievement"]["name"] == TRAINING["course_title"]


def test_achievement_id_is_shared_by_recipients_of_the_same_achievement() -> None:
    def achievement_id(data: dict[str, Any], issuer: str = DID) -> str:
        row = CertificateRow.model_validate(data)
        return str(payload_for(CredentialType.CERTIFICATE, row, issuer_id=issuer)
                   ["credentialSubject"]["achievement"]["id"])

    first = achievement_id(CERTIFICATE)
    assert achievement_id({**CERTIFICATE, "holder_name": "另一人", "student_id": "X1"}) == first
    assert achievement_id({**CERTIFICATE, "level": "二等奖"}) != first
    assert achievement_id(CERTIFICATE, issuer="did:web:other.example.cn") != first


def test_payload_argument_checks() -> None:
    row = GraduationRow.model_validate(GRADUATION)
    with pytest.raises(InvalidInput):
        payload_for(CredentialType.DEGREE, row)
    for bad in ["0f8fad5b-d9cb-469f-a165-70867728950e", "urn:uuid:0F8FAD5B-D9CB-469F-A165-70867728950E",
                "urn:uuid:nope"]:
        with pytest.raises(InvalidInput):
            payload_for(CredentialType.GRADUATION, row, credential_id=bad)
    for bad in ["https://school.example.cn", "did:web:", "did:Web:x", "did:web:a b"]:
        with pytest.raises(InvalidInput):
            payload_for(CredentialType.GRADUATION, row, issuer_id=bad)
    assert payload_for(CredentialType.GRADUATION, row, issuer_id="did:ethr:0x1:0xAbC%20")["issuer"]["id"]
    for bad_name in ["", "   ", "a\nb", "名" * 201]:
        with pytest.raises(InvalidInput):
            payload_for(CredentialType.GRADUATION, row, issuer_name=bad_name)
    with pytest.raises(InvalidInput):
        payload_for(CredentialType.GRADUATION, row, valid_from=datetime(2025, 7, 1))
    with pytest.raises(InvalidInput):
        payload_for(CredentialType.GRADUATION, row, valid_until=NOW)
    with pytest.raises(InvalidInput):
        payload_for(CredentialType.GRADUATION, row, valid_until=datetime(2030, 1, 1))
    # other time zones are written in UTC; sub-second precision is dropped
    local = datetime(2025, 7, 1, 16, 30, 0, 999_999, tzinfo=timezone(timedelta(hours=8)))
    payload = payload_for(CredentialType.GRADUATION, row, valid_from=local)
    assert payload["validFrom"] == "2025-07-01T08:30:00Z"


def test_validity_window() -> None:
    row = GraduationRow.model_validate(GRADUATION)
    assert validity_window(row, NOW) == (NOW, None)
    later = GraduationRow.model_validate(
        {**GRADUATION, "valid_from": "2025-09-01", "valid_until": "2030-06-30"})
    start, end = validity_window(later, NOW)
    assert start == datetime(2025, 9, 1, tzinfo=CHINA_TZ)
    assert end == datetime(2030, 6, 30, 23, 59, 59, tzinfo=CHINA_TZ)
    earlier = GraduationRow.model_validate({**GRADUATION, "valid_from": "2025-06-30"})
    assert validity_window(earlier, NOW)[0] == NOW
    expired = GraduationRow.model_validate({**GRADUATION, "valid_until": "2025-06-30"})
    with pytest.raises(InvalidInput):
        validity_window(expired, NOW)
    with pytest.raises(InvalidInput):
        validity_window(row, datetime(2025, 7, 1))


@pytest.mark.parametrize("ctype", list(CredentialType))
def test_every_claim_has_bilingual_labels(ctype: CredentialType) -> None:
    data = dict(VALID[ctype])
    if "student_id" not in data:
        data["student_id"] = "S1"
    data["birth_date"] = "2000-01-01"
    for optional in ("level", "description", "result"):
        if optional in ctype.row_model.model_fields:
            data[optional] = "x"
    p = payload_for(ctype, ctype.row_model.model_validate(data), valid_until=NOW + timedelta(days=1))
    subject = claim_paths(p["credentialSubject"])
    top = claim_paths({k: v for k, v in p.items() if k not in ("@context", "credentialSubject")})
    for path in subject | top:
        zh, en = CLAIM_LABELS[path]
        assert zh and en, path
    for claim, values in VALUE_LABELS.items():
        assert all(zh and en for zh, en in values.values()), claim
    assert set(VALUE_LABELS["educationLevel"]) == {e.value for e in EducationLevel}


# --------------------------------------------------------------------------- properties

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
NAMES = st.text(alphabet=st.one_of(CJK, st.sampled_from("·AbcZé")), min_size=1, max_size=30)
TEXT = st.text(alphabet=st.one_of(CJK, st.characters(min_codepoint=0x20, max_codepoint=0x7E)),
               min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != "")
IDS = st.from_regex(r"[A-Z]?[0-9]{4,12}", fullmatch=True)
DATES = st.dates(min_value=date(1990, 1, 1), max_value=date(2080, 12, 31))
CREDITS = st.decimals(min_value=0, max_value=30, places=2).map(str)
GRADES = st.one_of(st.integers(0, 100).map(str),
                   st.sampled_from(["A", "B+", "C-", "优秀", "合格", "Pass", "P"]))
TERMS = st.builds(lambda y, t: f"{y}-{y + 1}-{t}", st.integers(2000, 2080), st.integers(1, 3))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def rows(draw: st.DrawFn, ctype: CredentialType) -> dict[str, Any]:
    data: dict[str, Any] = {"holder_name": draw(NAMES), "student_id": draw(IDS),
                            "birth_date": draw(optional(DATES))}
    if ctype is CredentialType.GRADUATION:
        start = draw(DATES)
        data.update(program=draw(TEXT), education_level=draw(st.sampled_from(list(EducationLevel))),
                    start_date=start, graduation_date=start + timedelta(days=draw(st.integers(1, 3000))),
                    certificate_number=draw(IDS))
        event = data["graduation_date"]
    elif ctype is CredentialType.DEGREE:
        data.update(degree_name=draw(TEXT), field=draw(TEXT), conferral_date=draw(DATES),
                    certificate_number=draw(IDS))
        event = data["conferral_date"]
    elif ctype is CredentialType.TRANSCRIPT:
        codes = draw(st.lists(IDS, min_size=1, max_size=12, unique=True))
        data.update(program=draw(TEXT), courses=[
            {"term": draw(TERMS), "code": code, "name": draw(TEXT), "credits": draw(CREDITS),
             "grade": draw(GRADES), "kind": draw(optional(st.sampled_from(["required", "elective"])))}
            for code in codes])
        event = None
    elif ctype is CredentialType.CERTIFICATE:
        data.update(title=draw(TEXT), category=draw(st.sampled_from(list(CertificateCategory))),
                    level=draw(optional(TEXT)), awarded_date=draw(DATES), description=draw(optional(TEXT)))
        event = data["awarded_date"]
        data["student_id"] = draw(optional(IDS))
    else:
        hours = draw(st.decimals(min_value="0.5", max_value=10000, places=1))
        data.update(course_title=draw(TEXT), hours=hours,
                    completion_date=draw(DATES), result=draw(optional(TEXT)))
        event = data["completion_date"]
        data["student_id"] = draw(optional(IDS))
    if draw(st.booleans()):
        data["valid_until"] = (event or date(2030, 1, 1)) + timedelta(days=draw(st.integers(1, 5000)))
    return {k: (v.isoformat() if isinstance(v, date) else str(v) if isinstance(v, Decimal) else v)
            for k, v in data.items() if v is not None}


@st.composite
def typed_rows(draw: st.DrawFn) -> tuple[CredentialType, dict[str, Any]]:
    ctype = draw(st.sampled_from(list(CredentialType)))
    return ctype, draw(rows(ctype))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_rows(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                                  timezones=st.just(UTC)))
def test_payload_is_json_and_deterministic(
    case: tuple[CredentialType, dict[str, Any]], issued: datetime
) -> None:
    ctype, data = case
    row = parse_one(data, ctype)
    first = payload_for(ctype, row, valid_from=issued)
    again = payload_for(ctype, parse_one(json.loads(json.dumps(data)), ctype), valid_from=issued)
    text = json.dumps(first, ensure_ascii=False, allow_nan=False)
    assert text == json.dumps(again, ensure_ascii=False, allow_nan=False)  # same keys in the same order
    assert json.loads(text) == first  # nothing but JSON types
    assert canonical_json(first) == canonical_json(again)

    def no_nulls(value: Any) -> None:
        assert value is not None
        for sub in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
            no_nulls(sub)

    no_nulls(first)
    assert claim_paths(first["credentialSubject"]) <= set(CLAIM_LABELS)


@settings(max_examples=150, deadline=None)
@given(typed_rows())
def test_row_round_trips_through_its_json_form(case: tuple[CredentialType, dict[str, Any]]) -> None:
    ctype, data = case
    row = parse_one(data, ctype)
    dumped = row.model_dump(mode="json", exclude_none=True)
    assert json.loads(json.dumps(dumped)) == dumped
    assert parse_one(dumped, ctype) == row
