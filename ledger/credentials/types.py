"""Credential types, the validated row of each, and the W3C VC 2.0 payload built from a row.

Five types (``CredentialType``): graduation (毕业证书), degree (学位证书), transcript
(成绩单) and certificate (证书: awards, competitions, qualifications) issued by schools;
certificate and training (培训证书) issued by partners. One *row* is what an issuer gives for
one credential: a pydantic model per type (``GraduationRow`` ... ``TrainingRow``), strict
(unknown fields rejected, text stripped and length-limited, dates as ``YYYY-MM-DD``).

Data minimisation: a row names its holder by name and the school's own student number;
national ID numbers (身份证号) are never accepted, neither as a column or field (see
``roster.py``) nor disguised as a student number (``student_id`` that is a valid resident
ID number, or the national student number 全国学籍号 = "G"/"L" + ID number, is rejected).

``vc_payload`` turns a row into the unsigned VC 2.0 JSON (claims are camelCase, see
``claim_name``; every value is a JSON string, list or object - dates ``YYYY-MM-DD``,
decimals as strings); ``CLAIM_LABELS`` and ``VALUE_LABELS`` give the bilingual labels the
verification page shows. Certificates and training certificates are also Open Badges 3.0
``OpenBadgeCredential``s with an ``achievement`` (context and achievementType values: see
``OB3_CONTEXT`` and ``CertificateCategory.achievement_type``).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Final, NamedTuple, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ledger.errors import InvalidInput

__all__ = [
    "CHINA_TZ",
    "CLAIM_LABELS",
    "OB3_CONTEXT",
    "VALUE_LABELS",
    "VC_CONTEXT",
    "VC_V2_CONTEXT",
    "AnyRow",
    "CertificateCategory",
    "CertificateRow",
    "Course",
    "CourseKind",
    "CredentialType",
    "DegreeRow",
    "EducationLevel",
    "GraduationRow",
    "TrainingRow",
    "TranscriptRow",
    "claim_name",
    "decimal_str",
    "looks_like_national_id",
    "row_model",
    "validity_window",
    "vc_payload",
]

VC_V2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
# The latest published OB 3.0 JSON-LD context (1EdTech openbadges-specification
# ob_v3p0/context-3.0.3.json; the DCC open-badges-context package's CONTEXT_URL_V3).
OB3_CONTEXT: Final = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
VC_CONTEXT: Final = (VC_V2_CONTEXT, OB3_CONTEXT)

# China has one time zone and no daylight saving: a fixed offset is exact.
CHINA_TZ: Final = timezone(timedelta(hours=8), "CST")

MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2100


# --------------------------------------------------------------------------- enums


class _Info(NamedTuple):
    vc_type: str
    label_zh: str
    label_en: str
    issuer_roles: frozenset[str]
    open_badge: bool


class CredentialType(StrEnum):
    GRADUATION = "graduation"
    DEGREE = "degree"
    TRANSCRIPT = "transcript"
    CERTIFICATE = "certificate"
    TRAINING = "training"

    @property
    def vc_type(self) -> str:
        """The type after "VerifiableCredential" in the VC's ``type``."""
        return _TYPE_INFO[self].vc_type

    @property
    def vct(self) -> str:
        """The SD-JWT VC type (draft-ietf-oauth-sd-jwt-vc ``vct``) of credentials of this type."""
        return f"urn:eduledger:credential:{self.value}"

    @property
    def label_zh(self) -> str:
        return _TYPE_INFO[self].label_zh

    @property
    def label_en(self) -> str:
        return _TYPE_INFO[self].label_en

    @property
    def issuer_roles(self) -> frozenset[str]:
        """Member roles ("school", "partner") allowed to issue this type."""
        return _TYPE_INFO[self].issuer_roles

    @property
    def open_badge(self) -> bool:
        """True when the VC is also an Open Badges 3.0 OpenBadgeCredential."""
        return _TYPE_INFO[self].open_badge

    @property
    def row_model(self) -> type[_Row]:
        return _ROW_MODELS[self]

    @classmethod
    def parse(cls, value: Any) -> CredentialType:
        """A type named by a user (API field, query or CLI option), or InvalidInput."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise InvalidInput(f"unknown credential type {value!r} (expected one of {names})",
                               code="unknown_type") from None


_SCHOOL = frozenset({"school"})
_PARTNER = frozenset({"partner"})
_TYPE_INFO: Final[dict[CredentialType, _Info]] = {
    CredentialType.GRADUATION: _Info(
        "GraduationCertificate", "毕业证书", "Graduation certificate", _SCHOOL, False),
    CredentialType.DEGREE: _Info("DegreeCertificate", "学位证书", "Degree certificate", _SCHOOL, False),
    CredentialType.TRANSCRIPT: _Info("Transcript", "成绩单", "Transcript", _SCHOOL, False),
    CredentialType.CERTIFICATE: _Info(
        "AchievementCertificate", "证书", "Certificate", _SCHOOL | _PARTNER, True),
    CredentialType.TRAINING: _Info("TrainingCertificate", "培训证书", "Training certificate", _PARTNER, True),
}


class EducationLevel(StrEnum):
    PRIMARY = "primary"
    JUNIOR_SECONDARY = "junior_secondary"
    SENIOR_SECONDARY = "senior_secondary"
    VOCATIONAL = "vocational"
    ASSOCIATE = "associate"
    BACHELOR = "bachelor"
    MASTER = "master"
    DOCTOR = "doctor"

    @property
    def label_zh(self) -> str:
        return _LEVEL_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LEVEL_LABELS[self][1]


_LEVEL_LABELS: Final[dict[EducationLevel, tuple[str, str]]] = {
    EducationLevel.PRIMARY: ("小学", "Primary school"),
    EducationLevel.JUNIOR_SECONDARY: ("初中", "Junior secondary school"),
    EducationLevel.SENIOR_SECONDARY: ("高中", "Senior secondary school"),
    EducationLevel.VOCATIONAL: ("中等职业教育", "Secondary vocational education"),
    EducationLevel.ASSOCIATE: ("专科", "Associate (higher vocational)"),
    EducationLevel.BACHELOR: ("本科", "Bachelor"),
    EducationLevel.MASTER: ("硕士研究生", "Master"),
    EducationLevel.DOCTOR: ("博士研究生", "Doctor"),
}
# Input spellings accepted besides the code (compared after NFKC, trim, lower case).
EDUCATION_LEVEL_ALIASES: Final[dict[str, EducationLevel]] = {
    "小学": EducationLevel.PRIMARY,
    "初中": EducationLevel.JUNIOR_SECONDARY,
    "初级中学": EducationLevel.JUNIOR_SECONDARY,
    "高中": EducationLevel.SENIOR_SECONDARY,
    "普通高中": EducationLevel.SENIOR_SECONDARY,
    "高级中学": EducationLevel.SENIOR_SECONDARY,
    "中职": EducationLevel.VOCATIONAL,
    "中专": EducationLevel.VOCATIONAL,
    "职高": EducationLevel.VOCATIONAL,
    "技校": EducationLevel.VOCATIONAL,
    "中等职业教育": EducationLevel.VOCATIONAL,
    "专科": EducationLevel.ASSOCIATE,
    "大专": EducationLevel.ASSOCIATE,
    "高职": EducationLevel.ASSOCIATE,
    "高职专科": EducationLevel.ASSOCIATE,
    "本科": EducationLevel.BACHELOR,
    "硕士": EducationLevel.MASTER,
    "硕士研究生": EducationLevel.MASTER,
    "博士": EducationLevel.DOCTOR,
    "博士研究生": EducationLevel.DOCTOR,
}


class CertificateCategory(StrEnum):
    AWARD = "award"
    COMPETITION = "competition"
    QUALIFICATION = "qualification"

    @property
    def label_zh(self) -> str:
        return _CATEGORY_INFO[self][0]

    @property
    def label_en(self) -> str:
        return _CATEGORY_INFO[self][1]

    @property
    def achievement_type(self) -> str:
        """The OB 3.0 AchievementType enumeration term for this category."""
        return _CATEGORY_INFO[self][2]


# OB 3.0 AchievementType terms (https://www.imsglobal.org/spec/ob/v3p0/#achievementtype-enumeration):
# "Award" - an award; "Certificate" - designates requisite knowledge and skills of an
# occupation, profession or academic program; "CertificateOfCompletion" - acknowledges
# completion of an assignment, training or other activity.
_CATEGORY_INFO: Final[dict[CertificateCategory, tuple[str, str, str]]] = {
    CertificateCategory.AWARD: ("获奖", "Award", "Award"),
    CertificateCategory.COMPETITION: ("竞赛", "Competition", "Award"),
    CertificateCategory.QUALIFICATION: ("资格", "Qualification", "Certificate"),
}
TRAINING_ACHIEVEMENT_TYPE: Final = "CertificateOfCompletion"
CATEGORY_ALIASES: Final[dict[str, CertificateCategory]] = {
    "获奖": CertificateCategory.AWARD,
    "奖项": CertificateCategory.AWARD,
    "荣誉": CertificateCategory.AWARD,
    "竞赛": CertificateCategory.COMPETITION,
    "比赛": CertificateCategory.COMPETITION,
    "资格": CertificateCategory.QUALIFICATION,
    "资格证书": CertificateCategory.QUALIFICATION,
    "职业资格": CertificateCategory.QUALIFICATION,
    "技能等级": CertificateCategory.QUALIFICATION,
}


class CourseKind(StrEnum):
    REQUIRED = "required"
    ELECTIVE = "elective"

    @property
    def label_zh(self) -> str:
        return "必修" if self is CourseKind.REQUIRED else "选修"

    @property
    def label_en(self) -> str:
        return "Required" if self is CourseKind.REQUIRED else "Elective"


COURSE_KIND_ALIASES: Final[dict[str, CourseKind]] = {
    "必修": CourseKind.REQUIRED,
    "compulsory": CourseKind.REQUIRED,
    "选修": CourseKind.ELECTIVE,
    "限选": CourseKind.ELECTIVE,
    "任选": CourseKind.ELECTIVE,
    "optional": CourseKind.ELECTIVE,
}


# --------------------------------------------------------------------------- field types


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_E = TypeVar("_E", bound=StrEnum)


def _enum_parser(enum: type[_E], aliases: Mapping[str, _E]) -> Callable[[Any], _E]:
    table: dict[str, _E] = {m.value: m for m in enum}
    table.update(aliases)
    choices = ", ".join(m.value for m in enum)

    def parse(value: Any) -> _E:
        found = table.get(value) if type(value) is str else None
        return found if found is not None else parse_other(value)

    def parse_other(value: Any) -> _E:
        if isinstance(value, enum):
            return value
        if isinstance(value, str):
            key = value.strip().lower().replace(" ", "_").replace("-", "_")
            found = table.get(key)
            if found is not None:
                return found
        raise PydanticCustomError(
            "enum_choice", "{value} is not one of: {choices}", {"value": _show(value), "choices": choices})

    return parse


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(value: Any) -> date:
    if type(value) is str:
        return _parse_date_text(value)
    return _parse_date_any(value)


@lru_cache(maxsize=4096)
def _parse_date_text(value: str) -> date:
    return _parse_date_any(value)


def _parse_date_any(value: Any) -> date:
    if isinstance(value, datetime):
        raise PydanticCustomError("date_format", "expected a date as YYYY-MM-DD, not a date and time")
    if isinstance(value, date):
        day = value
    elif isinstance(value, str) and _DATE_RE.fullmatch(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise PydanticCustomError(
                "date_format", "{value} is not a real date (expected YYYY-MM-DD)", {"value": value.strip()}
            ) from None
    else:
        raise PydanticCustomError(
            "date_format", "expected a date as YYYY-MM-DD, got {value}", {"value": _show(value)})
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise PydanticCustomError(
            "date_range", "year {year} is out of range ({lo}-{hi})",
            {"year": day.year, "lo": MIN_YEAR, "hi": MAX_YEAR})
    return day


def decimal_str(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros: 2.50 -> "2.5", 1E+1 -> "10"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _decimal_parser(
    what: str, *, low: Decimal, high: Decimal, low_inclusive: bool, places: int
) -> Callable[[Any], Decimal]:
    bound = f"{'at least' if low_inclusive else 'more than'} {low} and at most {high}"

    def parse(value: Any) -> Decimal:
        # rosters repeat a few values (2, 2.5, 4 ...) thousands of times
        return parse_text(value) if type(value) is str else parse_any(value)

    @lru_cache(maxsize=4096)
    def parse_text(value: str) -> Decimal:
        return parse_any(value)

    def parse_any(value: Any) -> Decimal:
        if isinstance(value, bool):
            number = None
        elif isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value)) if math.isfinite(value) else None
        elif isinstance(value, str) and 0 < len(value.strip()) <= 32:
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
        else:
            number = None
        if number is None or not number.is_finite():
            raise PydanticCustomError(
                "decimal_parsing", "expected {what} as a number, got {value}",
                {"what": what, "value": _show(value)})
        ok_low = number >= low if low_inclusive else number > low
        if not ok_low or number > high:
            raise PydanticCustomError(
                "number_range", "{what} must be {bound}, got {value}",
                {"what": what, "bound": bound, "value": _show(value)})
        number = Decimal(decimal_str(number))
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise PydanticCustomError(
                "decimal_places", "{what} may have at most {places} decimal places, got {value}",
                {"what": what, "places": places, "value": _show(value)})
        return number

    return parse


_SCORE_RE = re.compile(r"\d{1,3}(?:\.\d{1,2})?")
_LETTER_RE = re.compile(r"(?:[A-F][+-]?|P|NP)")
GRADE_WORDS: Final = frozenset({
    "优秀", "良好", "中等", "及格", "不及格", "合格", "不合格", "通过", "不通过",
    "优", "良", "中", "差", "免修", "缓考", "缺考",
})
_GRADE_EN_WORDS: Final = {"pass": "Pass", "fail": "Fail"}


def _parse_grade(value: Any) -> str:
    return _parse_grade_text(value) if type(value) is str else _parse_grade_any(value)


@lru_cache(maxsize=4096)
def _parse_grade_text(value: str) -> str:
    return _parse_grade_any(value)


def _parse_grade_any(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, float) and math.isfinite(value):
        value = repr(value)
    if not isinstance(value, str):
        raise PydanticCustomError("grade", "expected a grade as text, got {value}", {"value": _show(value)})
    text = value.strip()
    if not text:
        raise PydanticCustomError("grade_empty", "must not be empty")
    if _SCORE_RE.fullmatch(text):
        if Decimal(text) > 100:
            raise PydanticCustomError(
                "grade", "a score must be between 0 and 100, got {value}", {"value": text})
        return text
    if _LETTER_RE.fullmatch(text.upper()):
        return text.upper()
    if text in GRADE_WORDS:
        return text
    word = _GRADE_EN_WORDS.get(text.lower())
    if word is not None:
        return word
    raise PydanticCustomError(
        "grade",
        "{value} is not a grade: expected a score 0-100, a letter grade (A-F with + or -, P, NP), "
        "Pass/Fail, or one of 优秀 良好 中等 及格 不及格 合格 不合格 通过 不通过 优 良 中 差 免修 缓考 缺考",
        {"value": _show(text)},
    )


_TERM_RE = re.compile(r"(\d{4})-(\d{4})-([1-4])")


def _parse_term(value: Any) -> str:
    return _parse_term_text(value) if type(value) is str else _parse_term_any(value)


@lru_cache(maxsize=4096)
def _parse_term_text(value: str) -> str:
    return _parse_term_any(value)


def _parse_term_any(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else None
    match = _TERM_RE.fullmatch(text) if text else None
    if match is None or text is None:
        raise PydanticCustomError(
            "term",
            "expected a term as YYYY-YYYY-N (school year and term 1-4, e.g. 2025-2026-1), got {value}",
            {"value": _show(value)})
    first, second = int(match[1]), int(match[2])
    if second != first + 1 or not MIN_YEAR <= first < MAX_YEAR:
        raise PydanticCustomError(
            "term", "{value}: the school year must be two consecutive years, e.g. 2025-2026", {"value": text})
    return text


_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
_ID_RE = re.compile(r"[GLgl]?(\d{17}[\dXx])")


def looks_like_national_id(text: str) -> bool:
    """True for an 18-character resident ID number (GB 11643: a real birth date and a valid
    ISO 7064 check character), alone or prefixed "G"/"L" as in the national student number."""
    match = _ID_RE.fullmatch(text.strip())
    if match is None:
        return False
    body = match[1].upper()
    try:
        born = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return False
    if born.year < MIN_YEAR:
        return False
    total = sum(int(c) * w for c, w in zip(body[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == body[17]


def _check_student_id(value: str) -> str:
    if looks_like_national_id(value):
        raise PydanticCustomError(
            "national_id",
            "looks like a national ID number (身份证号 or 全国学籍号); use the school's own student number "
            "- ID numbers are not stored (data minimisation)")
    return value


# Text must not contain control characters (line breaks only in descriptions) or lone surrogates.
CONTROL_PATTERN: Final = r"^[^\x00-\x1f\x7f]*$"
MULTILINE_PATTERN: Final = r"^[^\x00-\x09\x0b-\x1f\x7f]*$"
# Identifiers (student and certificate numbers): no spaces either.
IDENTIFIER_PATTERN: Final = r"^[^\s\x00-\x1f\x7f]+$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=CONTROL_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=CONTROL_PATTERN)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=MULTILINE_PATTERN)]
CourseCode = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=CONTROL_PATTERN)]
CertificateNumber = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
StudentId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN),
    Field(description="the school's (or partner's) own student number; never a national ID number"),
]
IsoDate = Annotated[date, BeforeValidator(_parse_date)]
Credits = Annotated[Decimal, BeforeValidator(_decimal_parser(
    "credits", low=Decimal(0), high=Decimal(30), low_inclusive=True, places=2))]
Hours = Annotated[Decimal, BeforeValidator(_decimal_parser(
    "hours", low=Decimal(0), high=Decimal(10000), low_inclusive=False, places=2))]
Grade = Annotated[str, BeforeValidator(_parse_grade)]
Term = Annotated[str, BeforeValidator(_parse_term)]
Level = Annotated[EducationLevel, BeforeValidator(_enum_parser(EducationLevel, EDUCATION_LEVEL_ALIASES))]
Category = Annotated[CertificateCategory, BeforeValidator(
    _enum_parser(CertificateCategory, CATEGORY_ALIASES))]
Kind = Annotated[CourseKind, BeforeValidator(_enum_parser(CourseKind, COURSE_KIND_ALIASES))]


# --------------------------------------------------------------------------- row models

_CONFIG: Final = ConfigDict(
    extra="forbid", str_strip_whitespace=True, frozen=True, coerce_numbers_to_str=True,
    validate_default=False,
)


class _Row(BaseModel):
    """Fields common to every row. ``valid_from``/``valid_until`` (optional dates) narrow the
    validity window: valid_from defaults to the issuance time, valid_until to "no expiry"."""

    model_config = _CONFIG
    ctype: ClassVar[CredentialType]
    # the field valid_until must not precede (the date the credential attests)
    event_field: ClassVar[str]

    @field_validator("student_id", check_fields=False)
    @classmethod
    def _no_national_id(cls, value: str | None) -> str | None:
        return None if value is None else _check_student_id(value)

    @field_validator("valid_until", check_fields=False)
    @classmethod
    def _until_after(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None:
            return value
        start = info.data.get("valid_from")
        if start is not None and value <= start:
            raise PydanticCustomError(
                "date_order", "must be after valid_from ({start})", {"start": start.isoformat()})
        event = info.data.get(cls.event_field)
        if event is not None and value < event:
            raise PydanticCustomError(
                "date_order", "must not be before {field} ({day})",
                {"field": cls.event_field, "day": event.isoformat()})
        return value


class GraduationRow(_Row):
    ctype: ClassVar[CredentialType] = CredentialType.GRADUATION
    event_field: ClassVar[str] = "graduation_date"

    holder_name: Name
    student_id: StudentId
    birth_date: IsoDate | None = None
    program: Name = Field(description="专业 programme / major")
    education_level: Level
    start_date: IsoDate
    graduation_date: IsoDate
    certificate_number: CertificateNumber
    valid_from: IsoDate | None = None
    valid_until: IsoDate | None = None

    @field_validator("graduation_date")
    @classmethod
    def _after_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start_date")
        if start is not None and value <= start:
            raise PydanticCustomError(
                "date_order", "must be after start_date ({start})", {"start": start.isoformat()})
        return value


class DegreeRow(_Row):
    ctype: ClassVar[CredentialType] = CredentialType.DEGREE
    event_field: ClassVar[str] = "conferral_date"

    holder_name: Name
    student_id: StudentId
    birth_date: IsoDate | None = None
    degree_name: Name = Field(description="e.g. 工学学士 Bachelor of Engineering")
    field: Name = Field(description="学科 / field of study")
    conferral_date: IsoDate
    certificate_number: CertificateNumber
    valid_from: IsoDate | None = None
    valid_until: IsoDate | None = None


class Course(BaseModel):
    model_config = _CONFIG

    term: Term
    code: CourseCode
    name: Name
    credits: Credits
    grade: Grade
    kind: Kind | None = None


MAX_COURSES: Final = 200


class TranscriptRow(_Row):
    ctype: ClassVar[CredentialType] = CredentialType.TRANSCRIPT
    event_field: ClassVar[str] = ""

    holder_name: Name
    student_id: StudentId
    birth_date: IsoDate | None = None
    program: Name
    courses: list[Course] = Field(min_length=1, max_length=MAX_COURSES)
    valid_from: IsoDate | None = None
    valid_until: IsoDate | None = None

    @field_validator("courses")
    @classmethod
    def _distinct_courses(cls, courses: list[Course]) -> list[Course]:
        seen: dict[tuple[str, str], int] = {}
        for n, course in enumerate(courses, 1):
            first = seen.setdefault((course.term, course.code), n)
            if first != n:
                raise PydanticCustomError(
                    "duplicate_course",
                    "course {index} repeats course {first} (term {term}, code {code})",
                    {"index": n, "first": first, "term": course.term, "code": course.code})
        return courses

    @property
    def total_credits(self) -> Decimal:
        """Sum of the credits of every listed course."""
        return Decimal(decimal_str(sum((c.credits for c in self.courses), Decimal(0))))


class CertificateRow(_Row):
    ctype: ClassVar[CredentialType] = CredentialType.CERTIFICATE
    event_field: ClassVar[str] = "awarded_date"

    holder_name: Name
    student_id: StudentId | None = None
    birth_date: IsoDate | None = None
    title: Name = Field(description="e.g. 三好学生, 全国青少年科技创新大赛一等奖, 计算机等级考试二级")
    category: Category
    level: ShortText | None = Field(default=None, description="e.g. 国家级, 市级, 一等奖")
    awarded_date: IsoDate
    description: LongText | None = None
    valid_from: IsoDate | None = None
    valid_until: IsoDate | None = None


class TrainingRow(_Row):
    ctype: ClassVar[CredentialType] = CredentialType.TRAINING
    event_field: ClassVar[str] = "completion_date"

    holder_name: Name
    student_id: StudentId | None = None
    birth_date: IsoDate | None = None
    course_title: Name
    hours: Hours
    completion_date: IsoDate
    result: ShortText | None = Field(default=None, description="e.g. 合格, 优秀")
    valid_from: IsoDate | None = None
    valid_until: IsoDate | None = None


AnyRow = GraduationRow | DegreeRow | TranscriptRow | CertificateRow | TrainingRow

_ROW_MODELS: Final[dict[CredentialType, type[_Row]]] = {
    CredentialType.GRADUATION: GraduationRow,
    CredentialType.DEGREE: DegreeRow,
    CredentialType.TRANSCRIPT: TranscriptRow,
    CredentialType.CERTIFICATE: CertificateRow,
    CredentialType.TRAINING: TrainingRow,
}


def row_model(ctype: CredentialType | str) -> type[_Row]:
    return _ROW_MODELS[CredentialType(ctype)]


# --------------------------------------------------------------------------- claims

# Row field -> claim name in credentialSubject, where it is not the plain camelCase form.
_CLAIM_OVERRIDES: Final = {"field": "fieldOfStudy", "result": "trainingResult"}
_NOT_CLAIMS: Final = frozenset({"valid_from", "valid_until"})


def claim_name(field: str) -> str:
    """The credentialSubject claim a row field becomes: holder_name -> holderName."""
    override = _CLAIM_OVERRIDES.get(field)
    if override is not None:
        return override
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


# Bilingual (zh, en) labels of every claim the payloads carry; nested claims are dotted.
CLAIM_LABELS: Final[dict[str, tuple[str, str]]] = {
    # the credential itself (and credentialSubject.type of Open Badges)
    "id": ("凭证编号", "Credential ID"),
    "type": ("类型", "Type"),
    "name": ("凭证名称", "Credential"),
    "issuer": ("颁发机构", "Issuer"),
    "issuer.id": ("颁发机构标识", "Issuer ID"),
    "issuer.type": ("类型", "Type"),
    "issuer.name": ("颁发机构", "Issuer"),
    "validFrom": ("生效时间", "Valid from"),
    "validUntil": ("有效期至", "Valid until"),
    # holder
    "holderName": ("姓名", "Name"),
    "studentId": ("学号", "Student number"),
    "birthDate": ("出生日期", "Date of birth"),
    # graduation / degree
    "program": ("专业", "Programme"),
    "educationLevel": ("学历层次", "Level of education"),
    "startDate": ("入学日期", "Start date"),
    "graduationDate": ("毕业日期", "Graduation date"),
    "certificateNumber": ("证书编号", "Certificate number"),
    "degreeName": ("学位", "Degree"),
    "fieldOfStudy": ("学科", "Field of study"),
    "conferralDate": ("学位授予日期", "Date conferred"),
    # transcript
    "courses": ("课程成绩", "Courses"),
    "courses.term": ("学期", "Term"),
    "courses.code": ("课程代码", "Course code"),
    "courses.name": ("课程名称", "Course"),
    "courses.credits": ("学分", "Credits"),
    "courses.grade": ("成绩", "Grade"),
    "courses.kind": ("课程性质", "Required / elective"),
    "totalCredits": ("总学分", "Total credits"),
    # certificate / training (Open Badges)
    "category": ("证书类别", "Category"),
    "level": ("级别", "Level"),
    "awardedDate": ("颁发日期", "Date awarded"),
    "hours": ("学时", "Hours"),
    "completionDate": ("结业日期", "Completion date"),
    "trainingResult": ("考核结果", "Result"),
    "achievement": ("成就", "Achievement"),
    "achievement.id": ("成就编号", "Achievement ID"),
    "achievement.type": ("类型", "Type"),
    "achievement.name": ("名称", "Title"),
    "achievement.description": ("说明", "Description"),
    "achievement.achievementType": ("成就类型", "Achievement type"),
    "achievement.criteria": ("获得条件", "Criteria"),
    "achievement.criteria.narrative": ("获得条件", "Criteria"),
}

# Bilingual labels of coded claim values.
VALUE_LABELS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "educationLevel": {m.value: (m.label_zh, m.label_en) for m in EducationLevel},
    "category": {m.value: (m.label_zh, m.label_en) for m in CertificateCategory},
    "courses.kind": {m.value: (m.label_zh, m.label_en) for m in CourseKind},
    "achievement.achievementType": {
        "Award": ("奖励", "Award"),
        "Certificate": ("资格证书", "Certificate"),
        TRAINING_ACHIEVEMENT_TYPE: ("结业证书", "Certificate of completion"),
    },
}


def _json_value(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_str(value)
    return value


def _claims(row: _Row, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(row).model_fields:
        if name in _NOT_CLAIMS or name in skip:
            continue
        value = getattr(row, name)
        if value is None:
            continue
        if name == "courses":
            out["courses"] = [_course_claims(c) for c in value]
        else:
            out[claim_name(name)] = _json_value(value)
    return out


def _course_claims(course: Course) -> dict[str, Any]:
    out = {
        "term": course.term,
        "code": course.code,
        "name": course.name,
        "credits": decimal_str(course.credits),
        "grade": course.grade,
    }
    if course.kind is not None:
        out["kind"] = course.kind.value
    return out


_ACHIEVEMENT_NS: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:eduledger:achievement")

_CRITERIA: Final[dict[str, str]] = {
    CertificateCategory.AWARD: "由{issuer}授予。Awarded by {issuer}.",
    CertificateCategory.COMPETITION:
        "在竞赛中获奖，由{issuer}认定。Placed in a competition, as recognised by {issuer}.",
    CertificateCategory.QUALIFICATION: "通过{issuer}的资格认定。Qualified through an assessment by {issuer}.",
    "training": "完成{issuer}组织的培训课程。Completed a training course given by {issuer}.",
}


def _achievement(
    *, issuer_id: str, name: str, description: str, achievement_type: str, narrative: str
) -> dict[str, Any]:
    body = {
        "type": ["Achievement"],
        "name": name,
        "description": description,
        "achievementType": achievement_type,
        "criteria": {"narrative": narrative},
    }
    # The same achievement (same issuer and content) gets the same id for every recipient.
    key = json.dumps([issuer_id, body], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return {"id": f"urn:uuid:{uuid.uuid5(_ACHIEVEMENT_NS, key)}", **body}


def _subject(row: _Row, issuer_id: str, issuer_name: str) -> dict[str, Any]:
    if isinstance(row, CertificateRow):
        subject: dict[str, Any] = {"type": ["AchievementSubject"]}
        subject.update(_claims(row, skip=frozenset({"title", "description"})))
        category = row.category
        level = f"（{row.level}）" if row.level else ""
        description = row.description or (
            f"{category.label_zh}：{row.title}{level}。{category.label_en}: {row.title}"
            + (f" ({row.level})." if row.level else ".")
        )
        subject["achievement"] = _achievement(
            issuer_id=issuer_id, name=row.title, description=description,
            achievement_type=category.achievement_type,
            narrative=_CRITERIA[category].format(issuer=issuer_name))
        return subject
    if isinstance(row, TrainingRow):
        subject = {"type": ["AchievementSubject"]}
        subject.update(_claims(row, skip=frozenset({"course_title"})))
        subject["achievement"] = _achievement(
            issuer_id=issuer_id, name=row.course_title,
            description=f"培训课程：{row.course_title}。Training course: {row.course_title}.",
            achievement_type=TRAINING_ACHIEVEMENT_TYPE,
            narrative=_CRITERIA["training"].format(issuer=issuer_name))
        return subject
    subject = _claims(row)
    if isinstance(row, TranscriptRow):
        subject["totalCredits"] = decimal_str(row.total_credits)
    return subject


_URN_UUID_RE = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_IDCHAR = r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})"
_DID_RE = re.compile(rf"did:[a-z0-9]+:(?:{_IDCHAR}*:)*{_IDCHAR}+")
_TEXT_RE = re.compile(r"[^\x00-\x1f\x7f]+")


def _timestamp(value: datetime | None, what: str) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInput(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def vc_payload(
    ctype: CredentialType | str,
    row: AnyRow,
    *,
    credential_id: str,
    issuer_id: str,
    issuer_name: str,
    valid_from: datetime,
    valid_until: datetime | None,
) -> dict[str, Any]:
    """The unsigned W3C VC 2.0 credential for one row (plain JSON values, fixed key order).

    ``credential_id`` is ``urn:uuid:`` + a lower-case UUID; ``issuer_id`` a DID; the
    validity bounds are timezone-aware and written as RFC 3339 UTC (whole seconds, "Z").
    """
    ctype = CredentialType(ctype)
    if type(row) is not ctype.row_model:
        raise InvalidInput(f"a {ctype.value} credential needs a {ctype.row_model.__name__}, "
                           f"got {type(row).__name__}")
    if not isinstance(credential_id, str) or not _URN_UUID_RE.fullmatch(credential_id):
        raise InvalidInput("credential_id must be urn:uuid: followed by a lower-case UUID")
    if not isinstance(issuer_id, str) or len(issuer_id) > 2048 or not _DID_RE.fullmatch(issuer_id):
        raise InvalidInput("issuer_id must be a DID (did:<method>:<id>)")
    issuer_name = issuer_name.strip() if isinstance(issuer_name, str) else ""
    if not 0 < len(issuer_name) <= 200 or not _TEXT_RE.fullmatch(issuer_name):
        raise InvalidInput("issuer_name must be 1 to 200 characters without control characters")
    start = _timestamp(valid_from, "valid_from")
    end = None if valid_until is None else _timestamp(valid_until, "valid_until")
    if end is not None and end <= start:
        raise InvalidInput("valid_until must be after valid_from")

    types = ["VerifiableCredential", ctype.vc_type]
    issuer: dict[str, Any] = {"id": issuer_id, "name": issuer_name}
    if ctype.open_badge:
        types.append("OpenBadgeCredential")
        issuer = {"id": issuer_id, "type": ["Profile"], "name": issuer_name}
    payload: dict[str, Any] = {
        "@context": list(VC_CONTEXT),
        "id": credential_id,
        "type": types,
        "name": f"{ctype.label_zh} {ctype.label_en}",
        "issuer": issuer,
        "validFrom": start,
    }
    if end is not None:
        payload["validUntil"] = end
    payload["credentialSubject"] = _subject(row, issuer_id, issuer_name)
    return payload


def sd_jwt_vc_claims(payload: dict[str, Any], ctype: CredentialType, issuer_id: str) -> None:
    """Add the registered claims of the SD-JWT VC profile (draft-ietf-oauth-sd-jwt-vc) to a
    ``vc_payload``, so that a generic SD-JWT VC verifier reads it: ``vct``, ``iss`` (the
    issuer DID, as ``issuer.id``) and ``nbf`` / ``exp`` (``validFrom`` / ``validUntil`` as
    NumericDate). They repeat what the VC says; the verifier checks that they agree."""
    payload["vct"] = ctype.vct
    payload["iss"] = issuer_id
    payload["nbf"] = int(datetime.fromisoformat(payload["validFrom"].replace("Z", "+00:00")).timestamp())
    if "validUntil" in payload:
        payload["exp"] = int(datetime.fromisoformat(payload["validUntil"].replace("Z", "+00:00")).timestamp())


def validity_window(
    row: AnyRow, issued_at: datetime, *, tz: timezone = CHINA_TZ
) -> tuple[datetime, datetime | None]:
    """(valid_from, valid_until) for ``vc_payload`` from a row's optional date bounds.

    valid_from is the issuance time, or the start of the row's ``valid_from`` day in ``tz``
    when that is later; valid_until is the end of the row's ``valid_until`` day in ``tz``
    (the last second of it), or None.
    """
    if issued_at.utcoffset() is None:
        raise InvalidInput("issued_at must be a timezone-aware datetime")
    start = issued_at
    if row.valid_from is not None:
        start = max(start, datetime.combine(row.valid_from, time(), tz))
    end = None
    if row.valid_until is not None:
        end = datetime.combine(row.valid_until, time(23, 59, 59), tz)
        if end <= start:
            raise InvalidInput(f"valid_until {row.valid_until.isoformat()} is already past")
    return start, end
