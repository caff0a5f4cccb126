"""What an identity card holds, as a school's roster gives it.

A student card: name, the national student number (全国学籍号, matched across schools through
the person key and stored encrypted), optionally the national id (身份证号, encrypted too),
the school's own student number, grade, class, enrolment date and a portrait. A teacher
card: name, national id (a teacher keeps one identity across schools, so it is required),
staff number (教职工号), subjects, the teacher qualification certificate number
(教师资格证号) if given, and a portrait. A graduate card is a student card's continuation at
graduation: it is made from the student card, not from a roster.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ledger.credentials.types import IDENTIFIER_PATTERN, IsoDate, Name, ShortText
from ledger.credentials.types import looks_like_national_id as _is_resident_id
from ledger.errors import InvalidInput

__all__ = ["CARD_ALIASES", "CardKind", "CardRow", "CardStatus", "StudentCardRow", "TeacherCardRow"]


class CardKind(StrEnum):
    STUDENT = "student"
    TEACHER = "teacher"
    GRADUATE = "graduate"

    @property
    def label_zh(self) -> str:
        return {"student": "学生卡", "teacher": "教师卡", "graduate": "毕业生卡"}[self.value]


class CardStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    ENDED = "ended"


PersonalNumber = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
PhotoName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _subjects(value: object) -> object:
    """Subjects as a list, or as text separated by 、，,;；/ (a spreadsheet cell)."""
    if isinstance(value, str):
        for sep in "、，,;；/":
            value = value.replace(sep, "\x1f")
        return [part.strip() for part in value.split("\x1f") if part.strip()]
    return value


Subjects = Annotated[list[ShortText], BeforeValidator(_subjects), Field(min_length=1, max_length=20)]

_CONFIG: Final = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True,
                            coerce_numbers_to_str=True)


class _CardRow(BaseModel):
    model_config = _CONFIG
    kind: ClassVar[CardKind]
    # The personal number a person is recognised by across schools (see personal.py).
    person_number_field: ClassVar[str]
    person_number_kind: ClassVar[str]

    name: Name
    # The portrait: a file of the roster's ZIP, or the photo itself (base64) for a single card.
    photo: PhotoName | None = None
    photo_base64: str | None = Field(default=None, max_length=3 * 1024 * 1024)
    valid_until: IsoDate | None = None

    @field_validator("national_id", check_fields=False)
    @classmethod
    def _a_resident_id(cls, value: str | None) -> str | None:
        if value is not None and not _is_resident_id(value):
            raise PydanticCustomError("national_id", "not a valid resident ID number (18 characters, "
                                                     "GB 11643 check character)")
        return None if value is None else value.upper()

    def person_number(self) -> str:
        number: str = getattr(self, self.person_number_field)
        return number


class StudentCardRow(_CardRow):
    kind: ClassVar[CardKind] = CardKind.STUDENT
    person_number_field: ClassVar[str] = "student_number"
    person_number_kind: ClassVar[str] = "student_number"

    student_number: PersonalNumber = Field(description="全国学籍号, the national student number")
    national_id: PersonalNumber | None = None
    school_number: PersonalNumber | None = Field(default=None, description="the school's own 学号")
    grade: ShortText
    class_name: ShortText
    enrolment_date: IsoDate

    @model_validator(mode="after")
    def _until_after_enrolment(self) -> StudentCardRow:
        if self.valid_until is not None and self.valid_until <= self.enrolment_date:
            raise PydanticCustomError("date_order", "valid_until must be after the enrolment date")
        return self


class TeacherCardRow(_CardRow):
    kind: ClassVar[CardKind] = CardKind.TEACHER
    person_number_field: ClassVar[str] = "national_id"
    person_number_kind: ClassVar[str] = "national_id"

    national_id: PersonalNumber
    staff_number: PersonalNumber = Field(description="教职工号")
    subjects: Subjects
    teacher_certificate: PersonalNumber | None = Field(default=None, description="教师资格证号")


CardRow = StudentCardRow | TeacherCardRow
ROW_MODELS: Final[dict[CardKind, type[_CardRow]]] = {CardKind.STUDENT: StudentCardRow,
                                                      CardKind.TEACHER: TeacherCardRow}

# Chinese (and a few English) headers of a card roster, after header normalisation.
CARD_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "姓名": ("name",), "学生姓名": ("name",), "教师姓名": ("name",), "full_name": ("name",),
    "学籍号": ("student_number",), "全国学籍号": ("student_number",), "学籍编号": ("student_number",),
    "身份证号": ("national_id",), "身份证号码": ("national_id",), "公民身份号码": ("national_id",),
    "证件号码": ("national_id",), "id_number": ("national_id",),
    "学号": ("school_number",), "校内学号": ("school_number",),
    "年级": ("grade",), "班级": ("class_name",), "class": ("class_name",),
    "入学日期": ("enrolment_date",), "入学时间": ("enrolment_date",), "enrollment_date": ("enrolment_date",),
    "教职工号": ("staff_number",), "工号": ("staff_number",), "教工号": ("staff_number",),
    "任教学科": ("subjects",), "学科": ("subjects",), "subject": ("subjects",),
    "教师资格证号": ("teacher_certificate",), "教师资格证书号": ("teacher_certificate",),
    "照片": ("photo",), "相片": ("photo",), "照片文件": ("photo",), "photo_file": ("photo",),
    "有效期至": ("valid_until",), "失效日期": ("valid_until",),
}


def person_number_of(row: CardRow) -> tuple[str, str]:
    """(kind of number, number) the row's person is recognised by."""
    return row.person_number_kind, row.person_number()


def card_row_model(kind: CardKind | str) -> type[_CardRow]:
    """The row model of a roster of `kind` cards (student or teacher)."""
    try:
        return ROW_MODELS[CardKind(kind)]
    except (ValueError, KeyError):
        raise InvalidInput(f"a roster issues student or teacher cards, not {str(kind)[:40]!r}",
                           code="bad_card_kind") from None
