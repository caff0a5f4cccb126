"""Rosters: one to 10,000 credentials' rows, as JSON or CSV, validated in full before use.

``parse_roster`` checks the whole roster and either returns every row (a list of the
type's row model, in roster order) or raises ``RosterError`` listing the problems found -
all of them, not just the first (up to ``MAX_LISTED`` in ``details["errors"]``, the total in
``details["error_count"]``). Each problem is ``{"row": n, "field": name, "problem": text}``:

- ``row``: for JSON the 1-based position of the credential in the list; for CSV the line
  number in the file (line 1 is usually the header; a transcript's course problem names the
  line of that course). ``row`` 0 means the roster as a whole.
- ``field``: the field or column (JSON transcript courses as ``courses[3].grade``, 1-based);
  empty when the problem is the row itself.

Error codes: ``invalid_roster`` (row problems), ``malformed_roster`` (not UTF-8, not JSON,
broken CSV quoting; the message names the line), ``empty_roster``, ``roster_too_large``
(over ``max_bytes`` or ``max_rows``; HTTP 413).

JSON: a list of objects, or ``{"credentials": [...]}`` (optionally with ``"type"``, which
must then be the credential type), with the row model's field names (``csv_columns`` lists
them; a transcript has ``courses``: a list of course objects). Parsed by ``load_json``:
nesting limited, NaN/Infinity refused, a repeated key keeps its last value.

CSV: UTF-8 with or without a byte-order mark, comma-separated, RFC 4180 quoting; the first
non-blank line is the header. Columns are the field names (``csv_columns(ctype)``) or their
aliases (``HEADER_ALIASES``: Chinese headers such as 姓名, 学号, 专业, 学期, 课程名称, 学分,
成绩, and a few English ones); header names are matched after NFKC normalisation, trimming,
lower-casing and turning spaces or hyphens into "_". Empty cells are absent values. A
transcript is one line per course (columns term, code, name, credits, grade, kind), lines
grouped by ``student_id`` in order of first appearance; the student's other columns are
repeated on each of their lines and must agree.

Across rows: graduation and degree rosters may not repeat a student_id or a
certificate_number, a JSON transcript roster a student_id; a certificate or training roster
may not repeat a row exactly (same student_id and every other field).

Privacy: a column or field that looks like a national ID number (身份证号, 证件号码,
id_number, passport ...) is rejected with its own message, as is a student_id that is one.
"""

from __future__ import annotations

import csv
import gc
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, Literal

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from ledger.credentials.types import (
    CONTROL_PATTERN,
    MULTILINE_PATTERN,
    AnyRow,
    CertificateRow,
    Course,
    CredentialType,
    DegreeRow,
    GraduationRow,
    TrainingRow,
    TranscriptRow,
)
from ledger.errors import InvalidInput

__all__ = [
    "HEADER_ALIASES",
    "MAX_LISTED",
    "RosterError",
    "csv_columns",
    "csv_records",
    "decode_text",
    "describe_problem",
    "fail_if_problems",
    "load_json",
    "normalise_header",
    "parse_one",
    "parse_roster",
    "whole_roster_error",
]

MAX_LISTED: Final = 100
COURSE_FIELDS: Final = tuple(Course.model_fields)
_VALIDITY: Final = ("valid_from", "valid_until")


class RosterError(InvalidInput):
    """A roster (or a single credential's row) that cannot be issued, with every problem."""

    code = "invalid_roster"

    def __init__(
        self, message: str, *, code: str | None = None, errors: Sequence[dict[str, Any]] = (),
        error_count: int | None = None, **details: Any,
    ) -> None:
        listed = [dict(e) for e in errors[:MAX_LISTED]]
        super().__init__(message, code=code, errors=listed,
                         error_count=len(errors) if error_count is None else error_count, **details)
        if self.code == "roster_too_large":
            self.http_status = 413

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.details["errors"]
        return errors


def _whole(code: str, problem: str, **details: Any) -> RosterError:
    return RosterError(problem, code=code, errors=[{"row": 0, "field": "", "problem": problem}], **details)


# --------------------------------------------------------------------------- columns


def _norm(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


# alias -> candidate fields; the first candidate that the credential type has is used.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    # holder
    "姓名": ("holder_name",), "学生姓名": ("holder_name",), "学员姓名": ("holder_name",),
    "持证人": ("holder_name",), "持证人姓名": ("holder_name",),
    "full_name": ("holder_name",), "holder": ("holder_name",),
    "学号": ("student_id",), "学生编号": ("student_id",), "学员编号": ("student_id",),
    "student_number": ("student_id",), "student_no": ("student_id",),
    "出生日期": ("birth_date",), "date_of_birth": ("birth_date",),
    # graduation / degree / transcript
    "专业": ("program",), "专业名称": ("program",), "major": ("program",), "programme": ("program",),
    "学历层次": ("education_level",), "层次": ("education_level",), "教育层次": ("education_level",),
    "学段": ("education_level",), "level_of_education": ("education_level",),
    "入学日期": ("start_date",), "入学时间": ("start_date",),
    "毕业日期": ("graduation_date",), "毕业时间": ("graduation_date",),
    "证书编号": ("certificate_number",), "证书号": ("certificate_number",),
    "学位": ("degree_name",), "学位名称": ("degree_name",), "degree": ("degree_name",),
    "学科": ("field",), "学科门类": ("field",), "field_of_study": ("field",),
    "授予日期": ("conferral_date",), "学位授予日期": ("conferral_date",),
    # transcript courses
    "学期": ("term",), "semester": ("term",), "course_term": ("term",),
    "课程代码": ("code",), "课程编号": ("code",), "课程号": ("code",), "course_code": ("code",),
    "课程名称": ("name", "course_title"), "课程名": ("name",), "课程": ("name", "course_title"),
    "course_name": ("name", "course_title"),
    "学分": ("credits",), "credit": ("credits",),
    "成绩": ("grade",), "分数": ("grade",), "score": ("grade",),
    "课程性质": ("kind",), "修读性质": ("kind",), "课程类别": ("kind",), "course_kind": ("kind",),
    # certificate
    "证书名称": ("title", "course_title"), "奖项名称": ("title",), "奖项": ("title",), "名称": ("title",),
    "类别": ("category",), "证书类别": ("category",),
    "级别": ("level",), "获奖等级": ("level",), "等级": ("level",),
    "颁发日期": ("awarded_date",), "获奖日期": ("awarded_date",), "发证日期": ("awarded_date",),
    "说明": ("description",), "描述": ("description",),
    # training
    "培训课程": ("course_title",), "培训名称": ("course_title",), "培训项目": ("course_title",),
    "学时": ("hours",), "培训学时": ("hours",),
    "结业日期": ("completion_date",), "完成日期": ("completion_date",),
    "结果": ("result",), "培训结果": ("result",), "考核结果": ("result",),
    # validity
    "生效日期": ("valid_from",), "有效期至": ("valid_until",), "失效日期": ("valid_until",),
}
HEADER_ALIASES: Final[dict[str, tuple[str, ...]]] = {_norm(k): v for k, v in _ALIASES.items()}

# Columns and fields that would carry a national identity number (never accepted).
_NATIONAL_ID_RE = re.compile(
    r"身份证|证件号|证件号码|公民身份|身份号码|护照|passport|social_security|^ssn$|^sfz"
    r"|^(?:national_|citizen_|resident_)?id(?:entity)?_?(?:card|number|no|num|nr)(?:_|$)"
    r"|^(?:national|citizen|resident)_?id$"
)
_NATIONAL_ID_PROBLEM: Final = (
    "national ID numbers (身份证号) must not be uploaded (data minimisation); "
    "remove this column - holders are identified by name and student number"
)


def _is_national_id_name(name: str) -> bool:
    return bool(_NATIONAL_ID_RE.search(_norm(name)))


def csv_columns(ctype: CredentialType | str) -> list[str]:
    """The CSV columns (and JSON fields) of a credential type, in a natural order."""
    model = CredentialType(ctype).row_model
    fields = [f for f in model.model_fields if f not in _VALIDITY and f != "courses"]
    if model is TranscriptRow:
        fields += COURSE_FIELDS
    return fields + list(_VALIDITY)


def _resolve(header: str, columns: Sequence[str]) -> str | None:
    name = _norm(header)
    if name in columns:
        return name
    for candidate in HEADER_ALIASES.get(name, ()):
        if candidate in columns:
            return candidate
    return None


def _unknown_problem(name: str, columns: Sequence[str], what: str) -> str:
    if _is_national_id_name(name):
        return _NATIONAL_ID_PROBLEM
    for candidate in HEADER_ALIASES.get(_norm(name), ()):
        if candidate in columns:
            return f"unknown {what}; use {candidate!r}"
    return f"unknown {what}; expected one of: {', '.join(columns)}"


# --------------------------------------------------------------------------- validation

_ADAPTERS: Final[dict[CredentialType, TypeAdapter[list[Any]]]] = {
    CredentialType.GRADUATION: TypeAdapter(list[GraduationRow]),
    CredentialType.DEGREE: TypeAdapter(list[DegreeRow]),
    CredentialType.TRANSCRIPT: TypeAdapter(list[TranscriptRow]),
    CredentialType.CERTIFICATE: TypeAdapter(list[CertificateRow]),
    CredentialType.TRAINING: TypeAdapter(list[TrainingRow]),
}


def _problem(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"too long: at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") in (CONTROL_PATTERN, MULTILINE_PATTERN):
            return "must not contain control characters (line breaks, tabs)"
        return "must not contain spaces or control characters"
    if kind == "string_unicode":
        return "not valid Unicode text"
    if kind == "string_type":
        return "expected text"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items allowed"
    if kind == "list_type":
        return "expected a list"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected an object"
    return str(err["msg"])


class _Source:
    """Where validated item i came from: its row number and, for CSV transcripts, the line
    of each of its courses."""

    def __init__(self, rows: list[int], course_rows: list[list[int]] | None = None,
                 absent: frozenset[str] = frozenset()) -> None:
        self.rows = rows
        self.course_rows = course_rows
        self.absent = absent  # CSV columns missing from the header (reported once, there)

    def locate(self, index: int, loc: Sequence[Any], ctx: dict[str, Any]) -> tuple[int, str] | None:
        row = self.rows[index]
        path = list(loc)
        if path and path[0] == "courses" and len(path) == 1 and "index" in ctx:
            path = ["courses", int(ctx["index"]) - 1, "code"]  # a repeated course
        if not path:
            return row, ""
        if path[0] == "courses" and len(path) >= 2 and isinstance(path[1], int):
            n = path[1]
            rest = ".".join(str(p) for p in path[2:])
            if self.course_rows is not None:
                if rest in self.absent:
                    return None
                return self.course_rows[index][n], rest or "courses"
            return row, f"courses[{n + 1}]" + (f".{rest}" if rest else "")
        field = ".".join(str(p) for p in path)
        if field in self.absent:
            return None
        return row, field


def _validate(
    items: list[Any], ctype: CredentialType, source: _Source, problems: list[dict[str, Any]]
) -> list[Any]:
    columns = csv_columns(ctype)
    _check_unique(items, ctype, source, problems)
    try:
        rows: list[Any] = _ADAPTERS[ctype].validate_python(items)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            index, *loc = err["loc"]
            ctx = err.get("ctx") or {}
            where = source.locate(int(index), loc, ctx)
            if where is None:
                continue
            row, field = where
            if err["type"] == "extra_forbidden":
                key = str(loc[-1])
                allowed = list(COURSE_FIELDS) if field.startswith("courses[") else columns
                problem = _unknown_problem(key, [c for c in allowed if c != "courses"], "field")
            else:
                problem = _problem(err)
            problems.append({"row": row, "field": field, "problem": problem})
        return []
    if ctype in (CredentialType.CERTIFICATE, CredentialType.TRAINING):
        _check_repeats(rows, source, problems)
    return rows


def _check_unique(
    items: list[Any], ctype: CredentialType, source: _Source, problems: list[dict[str, Any]]
) -> None:
    """One credential per student and certificate number (graduation, degree, transcript),
    checked on the raw values so that it is reported alongside every other problem."""
    if ctype in (CredentialType.CERTIFICATE, CredentialType.TRAINING):
        return
    fields = ["student_id"] + (["certificate_number"] if ctype is not CredentialType.TRANSCRIPT else [])
    for field in fields:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            value = item.get(field) if isinstance(item, dict) else None
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                key = str(value).strip()
                first = seen.setdefault(key, index)
                if first != index:
                    problems.append({"row": source.rows[index], "field": field,
                                     "problem": f"{key} is also on row {source.rows[first]}"})


def _check_repeats(rows: list[Any], source: _Source, problems: list[dict[str, Any]]) -> None:
    """A student may get several certificates in one roster, but not the same one twice.
    Rows without a student_id are not compared: two people may share a name."""
    seen: dict[Any, int] = {}
    for index, row in enumerate(rows):
        if row.student_id is None:
            continue
        first = seen.setdefault(row, index)
        if first != index:
            problems.append({"row": source.rows[index], "field": "",
                             "problem": f"repeats row {source.rows[first]} exactly"})


def _fail_if(problems: list[dict[str, Any]]) -> None:
    if not problems:
        return
    problems.sort(key=lambda p: p["row"])
    first = problems[0]
    where = f"row {first['row']}" + (f", {first['field']}" if first["field"] else "")
    count = len(problems)
    raise RosterError(
        f"the roster has {count} problem{'s' if count != 1 else ''}; first: {where}: {first['problem']}",
        errors=problems, error_count=count)


# --------------------------------------------------------------------------- input


def _decode(data: bytes | str, max_bytes: int) -> str:
    if isinstance(data, str):
        size = len(data) if len(data) > max_bytes else len(data.encode("utf-8", "surrogatepass"))
        text = data
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        size = len(raw)
        text = ""
    else:
        raise InvalidInput("a roster must be bytes or text")
    if size > max_bytes:
        raise _whole("roster_too_large",
                     f"the roster is {size} bytes; at most {max_bytes} bytes are accepted at once",
                     limit_bytes=max_bytes, size_bytes=size)
    if not isinstance(data, str):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise RosterError(
                f"line {line}: the file is not UTF-8 text (byte {exc.start}); it may be GBK/GB18030 - "
                "save it as UTF-8 (in Excel: \"CSV UTF-8\")",
                code="malformed_roster", line=line,
                errors=[{"row": line, "field": "", "problem": "not UTF-8 text"}]) from None
    return text[1:] if text.startswith("\ufeff") else text


_JSON_WHERE = re.compile(r"at line (\d+) column (\d+)")


def load_json(text: str | bytes) -> Any:
    """Parse JSON safely: nesting is limited (to 200 levels, by pydantic-core's parser), so a
    deeply nested document cannot exhaust the C stack - this process runs with a raised
    recursion limit (py-evm sets 100,000), under which the standard ``json`` module's C
    scanner can crash the interpreter on input such as ``[[[[...``. NaN and Infinity are
    refused; when a key repeats, its last value is kept. Errors are ``malformed_roster``
    RosterErrors naming the line and column."""
    try:
        return from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        problem = f"not valid JSON: {exc}"
        where = _JSON_WHERE.search(str(exc))
        line = int(where[1]) if where else 0
        column = int(where[2]) if where else 0
        raise RosterError(problem, code="malformed_roster", line=line, column=column,
                          errors=[{"row": 0, "field": "", "problem": problem}]) from None


def _json_items(text: str, ctype: CredentialType, max_rows: int) -> list[Any]:
    if not text.strip():
        raise _whole("empty_roster", "the roster is empty")
    doc = load_json(text)
    if isinstance(doc, dict):
        extra = sorted(set(doc) - {"credentials", "type"})
        if extra or "credentials" not in doc:
            raise _whole("malformed_roster",
                         'expected a list of credentials or {"credentials": [...]}'
                         + (f"; unknown keys: {_listed(extra)}" if extra else ""))
        if "type" in doc and doc["type"] != ctype.value:
            raise _whole("malformed_roster",
                         f"the roster's type {_short(doc['type'])} is not {ctype.value!r}")
        doc = doc["credentials"]
    if not isinstance(doc, list):
        raise _whole("malformed_roster", 'expected a list of credentials or {"credentials": [...]}')
    if not doc:
        raise _whole("empty_roster", "the roster has no credentials")
    if len(doc) > max_rows:
        raise _too_many(len(doc), max_rows)
    return doc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _listed(values: list[Any], most: int = 5) -> str:
    """The first few values, each as :func:`_short` writes it (quoted, escaped, cut)."""
    more = f" and {len(values) - most} more" if len(values) > most else ""
    return ", ".join(_short(v) for v in values[:most]) + more


def _too_many(count: int | None, max_rows: int) -> RosterError:
    counted = f"more than {max_rows}" if count is None else str(count)
    return _whole("roster_too_large",
                  f"the roster has {counted} credentials; at most {max_rows} are accepted at once",
                  limit_rows=max_rows)


def _csv_malformed(line: int, exc: csv.Error, start: int) -> RosterError:
    msg = str(exc)
    if "unexpected end of data" in msg or "EOF" in msg:
        problem = f"a quoted value starting on line {start} is never closed"
        line = start
    elif "expected after" in msg:
        problem = ('a quote in the middle of a value: wrap values that contain quotes or commas in '
                   'double quotes and double the quotes inside ("")')
    elif "NUL" in msg:
        problem = "the line contains a NUL character"
    else:
        problem = msg
    return RosterError(f"line {line}: malformed CSV: {problem}", code="malformed_roster", line=line,
                       errors=[{"row": line, "field": "", "problem": f"malformed CSV: {problem}"}])


def _records(text: str) -> Iterable[tuple[int, list[str]]]:
    """(first line number, cells) of each non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_malformed(reader.line_num, exc, start) from None
        end = reader.line_num
        if "".join(cells).strip():
            yield start, cells


def _csv_items(
    text: str, ctype: CredentialType, max_rows: int, problems: list[dict[str, Any]]
) -> tuple[list[Any], _Source]:
    records = iter(_records(text))
    first = next(records, None)
    if first is None:
        raise _whole("empty_roster", "the roster is empty")
    header_line, header = first
    columns = csv_columns(ctype)
    keep: list[tuple[int, str]] = []
    taken: dict[str, str] = {}
    for position, raw in enumerate(header):
        if not raw.strip():
            problems.append({"row": header_line, "field": f"column {position + 1}",
                             "problem": "the column has no name"})
            continue
        name = _resolve(raw, columns)
        if name is None:
            problems.append({"row": header_line, "field": raw.strip(),
                             "problem": _unknown_problem(raw, columns, "column")})
        elif name in taken:
            problems.append({"row": header_line, "field": raw.strip(),
                             "problem": f"repeats column {taken[name]!r} (both mean {name!r})"})
        else:
            taken[name] = raw.strip()
            keep.append((position, name))
    model_fields = ctype.row_model.model_fields
    required = [f for f in columns if (model_fields.get(f) or Course.model_fields[f]).is_required()]
    absent = frozenset(f for f in required if f not in taken)
    for f in required:
        if f not in taken:
            problems.append({"row": header_line, "field": f, "problem": "required column is missing"})
    width = len(header)

    rows: list[int] = []
    items: list[Any] = []
    transcript = ctype is CredentialType.TRANSCRIPT
    holder_at = [i for i, n in keep if not (transcript and n in COURSE_FIELDS)]
    holder_names = [n for i, n in keep if not (transcript and n in COURSE_FIELDS)]
    course_at = [i for i, n in keep if transcript and n in COURSE_FIELDS]
    course_names = [n for i, n in keep if transcript and n in COURSE_FIELDS]
    student_at = {n: i for i, n in keep}.get("student_id")
    groups: dict[str, int] = {}
    holders: list[dict[str, str]] = []
    first_cells: list[tuple[str, ...]] = []  # a transcript's holder cells on its first line
    course_rows: list[list[int]] = []

    for line, cells in records:
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        elif len(cells) > width and "".join(cells[width:]).strip():
            problems.append({"row": line, "field": "", "problem":
                             f"the line has {len(cells)} values but the header has {width} columns"})
            continue
        if not transcript:
            if len(items) >= max_rows:
                raise _too_many(None, max_rows)
            items.append({n: s for n, v in zip(holder_names, map(cells.__getitem__, holder_at), strict=True)
                          if (s := v.strip())})
            rows.append(line)
            continue
        # transcripts: one line per course, grouped by student_id
        student = cells[student_at].strip() if student_at is not None else ""
        if not student:
            if "student_id" not in absent:
                problems.append({"row": line, "field": "student_id",
                                 "problem": "required field is missing (a transcript's lines are "
                                            "grouped by student_id)"})
            continue
        course = {n: s for n, v in zip(course_names, map(cells.__getitem__, course_at), strict=True)
                  if (s := v.strip())}
        held = tuple(map(cells.__getitem__, holder_at))
        index = groups.get(student)
        if index is None:
            if len(items) >= max_rows:
                raise _too_many(None, max_rows)
            holder = {n: s for n, v in zip(holder_names, held, strict=True) if (s := v.strip())}
            groups[student] = len(items)
            holders.append(holder)
            first_cells.append(held)
            items.append({**holder, "courses": [course]})
            rows.append(line)
            course_rows.append([line])
            continue
        if held != first_cells[index]:
            holder = {n: s for n, v in zip(holder_names, held, strict=True) if (s := v.strip())}
            earlier = holders[index]
            for column in holder_names:
                if holder.get(column) != earlier.get(column):
                    problems.append({
                        "row": line, "field": column,
                        "problem": f"differs from line {rows[index]} for student_id {student} "
                                   f"({holder.get(column, '')!r} here, {earlier.get(column, '')!r} there)"})
        items[index]["courses"].append(course)
        course_rows[index].append(line)
    if not items and not problems:
        raise _whole("empty_roster", "the roster has a header but no credentials")
    return items, _Source(rows, course_rows if transcript else None, absent)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large roster is parsed.

    Parsing allocates hundreds of thousands of small objects (dicts, models), none in
    reference cycles; CPython 3.11 would otherwise run repeated full collections over them,
    which more than doubles the time. Reference counting still frees everything; the
    collector is re-enabled afterwards (only if it was enabled before).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_roster(
    data: bytes | str,
    *,
    fmt: Literal["json", "csv"],
    ctype: CredentialType | str,
    max_rows: int = 10_000,
    max_bytes: int = 20 * 2**20,
) -> list[AnyRow]:
    """Every row of a roster, validated, in roster order; or RosterError with every problem."""
    ctype = CredentialType.parse(ctype)
    if fmt not in ("json", "csv"):
        raise InvalidInput(f"unknown roster format {fmt!r}; expected json or csv")
    text = _decode(data, max_bytes)
    problems: list[dict[str, Any]] = []
    with gc_paused():
        if fmt == "json":
            items = _json_items(text, ctype, max_rows)
            source = _Source(list(range(1, len(items) + 1)))
        else:
            items, source = _csv_items(text, ctype, max_rows, problems)
        rows = _validate(items, ctype, source, problems)
        del items
    _fail_if(problems)
    return rows


def parse_one(obj: dict[str, Any], ctype: CredentialType | str) -> AnyRow:
    """One credential's row (single issuance), checked as row 1 of a JSON roster."""
    ctype = CredentialType(ctype)
    problems: list[dict[str, Any]] = []
    rows = _validate([obj], ctype, _Source([1]), problems)
    _fail_if(problems)
    row: AnyRow = rows[0]
    return row



# The parts other capabilities' rosters (identity cards, records, evaluation data) share:
# the same input rules, the same problem shape and the same error codes.
whole_roster_error = _whole
normalise_header = _norm
describe_problem = _problem
fail_if_problems = _fail_if
decode_text = _decode
csv_records = _records
