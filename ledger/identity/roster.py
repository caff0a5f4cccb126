"""Card rosters: up to 10,000 student or teacher cards, with their photos, checked in full.

A roster is JSON (a list of cards, or ``{"cards": [...]}``), CSV (one card a line, Chinese
headers such as 姓名, 学籍号, 班级, 照片 accepted), or a ZIP holding one ``roster.csv`` or
``roster.json`` and the photos it names (column ``photo``, a path inside the ZIP). The same
rules and problem shape as credential rosters (``ledger.credentials.roster``): every problem
found is reported at once, ``{"row", "field", "problem"}``, and nothing is issued unless the
whole roster is good. Across rows: a person (the same national student number, or for
teachers the same national id) and a photo file name appear once.

ZIP files are read in memory with limits on entries, sizes and compression ratio (a zip
bomb is refused before it is inflated); nothing is ever written from them to disk.
"""

from __future__ import annotations

import base64
import binascii
import io
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import TypeAdapter, ValidationError

from ledger.credentials.roster import (
    csv_records,
    decode_text,
    describe_problem,
    fail_if_problems,
    gc_paused,
    load_json,
    normalise_header,
    whole_roster_error,
)
from ledger.errors import InvalidInput
from ledger.identity.photos import MAX_PHOTO_BYTES, check_photo
from ledger.identity.types import CARD_ALIASES, CardKind, CardRow, card_row_model

__all__ = ["CardEntry", "parse_card_roster"]

MAX_CARDS: Final = 10_000
MAX_ROSTER_TEXT: Final = 20 * 2**20
MAX_ZIP_BYTES: Final = 512 * 2**20  # what the roster and all photos may inflate to
MAX_ZIP_ENTRIES: Final = MAX_CARDS + 100
MAX_RATIO: Final = 200  # uncompressed / compressed, per entry: more is a bomb, not a photo
ROSTER_NAMES: Final = ("roster.csv", "roster.json")


@dataclass(frozen=True)
class CardEntry:
    """A card to issue: its checked row, its photo's bytes and media type."""

    row: CardRow
    photo: bytes
    photo_type: str


def _unzip(data: bytes) -> tuple[str, bytes, dict[str, bytes]]:
    """(roster file name, roster bytes, photos by normalised name) of a roster ZIP."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise whole_roster_error("malformed_roster", "the file is not a valid ZIP archive") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise whole_roster_error("roster_too_large", f"the ZIP holds {len(infos)} files; at most "
                                 f"{MAX_ZIP_ENTRIES} are accepted")
    total = 0
    files = [info for info in infos if not info.is_dir()]
    for info in files:
        total += info.file_size
        if info.flag_bits & 0x1:
            raise whole_roster_error("malformed_roster", f"{info.filename}: encrypted ZIP entries are "
                                     "not accepted")
        if info.file_size > max(MAX_PHOTO_BYTES, MAX_ROSTER_TEXT) or (
                info.compress_size and info.file_size / info.compress_size > MAX_RATIO):
            raise whole_roster_error("roster_too_large", f"{info.filename}: too large once inflated")
    if total > MAX_ZIP_BYTES:
        raise whole_roster_error("roster_too_large", f"the ZIP inflates to {total} bytes; at most "
                                 f"{MAX_ZIP_BYTES} are accepted")
    rosters = [i for i in files if _name(i.filename).lower().rsplit("/", 1)[-1] in ROSTER_NAMES]
    if len(rosters) != 1:
        raise whole_roster_error("malformed_roster",
                                 "the ZIP must hold exactly one roster.csv or roster.json")
    photos: dict[str, bytes] = {}
    try:
        for info in files:
            if info is rosters[0]:
                continue
            with archive.open(info) as member:
                content = member.read(info.file_size + 1)
            if len(content) != info.file_size:  # a header that lied about the size
                raise whole_roster_error("malformed_roster",
                                         f"{info.filename}: its size is not what the ZIP says")
            photos[_name(info.filename)] = content
        with archive.open(rosters[0]) as member:
            roster = member.read(MAX_ROSTER_TEXT + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
        raise whole_roster_error("malformed_roster", "the ZIP archive is damaged") from None
    return rosters[0].filename, roster, photos


def _name(path: str) -> str:
    """A file name as a roster refers to it: NFC, forward slashes, no leading "./"."""
    return unicodedata.normalize("NFC", path.replace("\\", "/")).removeprefix("./")


def _items(text: str, fmt: str, columns: list[str],
           problems: list[dict[str, Any]]) -> tuple[list[Any], list[int]]:
    if not text.strip():
        raise whole_roster_error("empty_roster", "the roster is empty")
    if fmt == "json":
        doc = load_json(text)
        if isinstance(doc, dict) and set(doc) <= {"cards", "kind"} and "cards" in doc:
            doc = doc["cards"]
        if not isinstance(doc, list):
            raise whole_roster_error("malformed_roster", 'expected a list of cards or {"cards": [...]}')
        if len(doc) > MAX_CARDS:
            raise whole_roster_error("roster_too_large", f"the roster has {len(doc)} cards; at most "
                                     f"{MAX_CARDS} are accepted at once")
        return doc, list(range(1, len(doc) + 1))
    records = iter(csv_records(text))
    first = next(records, None)
    if first is None:
        raise whole_roster_error("empty_roster", "the roster is empty")
    header_line, header = first
    keep: list[tuple[int, str]] = []
    for position, raw in enumerate(header):
        name = normalise_header(raw)
        field = name if name in columns else next(
            (c for c in CARD_ALIASES.get(name, ()) if c in columns), None)
        if field is None:
            problems.append({"row": header_line, "field": raw.strip() or f"column {position + 1}",
                             "problem": f"unknown column; expected one of: {', '.join(columns)}"})
        elif field in {f for _, f in keep}:
            problems.append({"row": header_line, "field": raw.strip(),
                             "problem": f"repeats column {field!r}"})
        else:
            keep.append((position, field))
    items: list[Any] = []
    rows: list[int] = []
    for line, cells in records:
        if len(items) >= MAX_CARDS:
            raise whole_roster_error("roster_too_large", f"the roster has more than {MAX_CARDS} cards")
        items.append({field: cell.strip() for position, field in keep
                      if position < len(cells) and cells[position].strip()
                      for cell in (cells[position],)})
        rows.append(line)
    if not items and not problems:
        raise whole_roster_error("empty_roster", "the roster has a header but no cards")
    return items, rows


def parse_card_roster(data: bytes | str, *, kind: CardKind | str,
                      fmt: Literal["json", "csv", "zip"]) -> list[CardEntry]:
    """Every card of the roster with its photo, checked; or RosterError with every problem."""
    model = card_row_model(kind)
    if fmt not in ("json", "csv", "zip"):
        raise InvalidInput(f"unknown roster format {fmt!r}; expected json, csv or zip", code="bad_format")
    photos: dict[str, bytes] = {}
    if fmt == "zip":
        if not isinstance(data, bytes | bytearray):
            raise InvalidInput("a ZIP roster is bytes", code="bad_format")
        name, roster, photos = _unzip(bytes(data))
        fmt = "json" if name.lower().endswith(".json") else "csv"
        data = roster
    columns = [f for f in model.model_fields if f != "photo_base64" or fmt == "json"]
    problems: list[dict[str, Any]] = []
    with gc_paused():
        items, rows = _items(decode_text(data, MAX_ROSTER_TEXT), fmt, columns, problems)
        checked: list[Any] = []
        try:
            checked = TypeAdapter(list[model]).validate_python(items)  # type: ignore[valid-type]
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                index, *loc = err["loc"]
                field = ".".join(str(p) for p in loc)
                problem = (f"unknown field; expected one of: {', '.join(columns)}"
                           if err["type"] == "extra_forbidden" else describe_problem(err))
                problems.append({"row": rows[int(index)], "field": field, "problem": problem})
    entries: list[CardEntry] = []
    if not problems:  # the rows are good: now their photos, and repeats across rows
        entries = _with_photos(checked, rows, photos, problems)
        _check_repeats(checked, rows, problems)
    fail_if_problems(problems)
    return entries


def _with_photos(checked: list[Any], rows: list[int], photos: dict[str, bytes],
                 problems: list[dict[str, Any]]) -> list[CardEntry]:
    entries = []
    for row, line in zip(checked, rows, strict=True):
        content: bytes | None = None
        if row.photo_base64 is not None:
            try:
                content = base64.b64decode(row.photo_base64, validate=True)
            except (binascii.Error, ValueError):
                problems.append({"row": line, "field": "photo_base64", "problem": "not base64"})
                continue
        elif row.photo is not None:
            content = photos.get(_name(row.photo))
            if content is None:
                problems.append({"row": line, "field": "photo",
                                 "problem": f"{row.photo!r} is not in the ZIP" if photos else
                                 "a photo file needs a ZIP roster (or photo_base64 in JSON)"})
                continue
        if content is None:
            problems.append({"row": line, "field": "photo", "problem": "required field is missing"})
            continue
        try:
            media = check_photo(content, name=f"the photo {row.photo or ''}".strip())
        except InvalidInput as exc:
            problems.append({"row": line, "field": "photo", "problem": exc.message})
            continue
        entries.append(CardEntry(row, content, media))
    return entries


def _check_repeats(checked: list[Any], rows: list[int], problems: list[dict[str, Any]]) -> None:
    """One card per person and one row per photo file in a roster."""
    for field in ("person", "photo"):
        seen: dict[str, int] = {}
        for row, line in zip(checked, rows, strict=True):
            value = (row.person_number_kind + ":" + row.person_number()) if field == "person" else row.photo
            if value is None:
                continue
            first = seen.setdefault(value, line)
            if first != line:
                shown = row.person_number_field if field == "person" else "photo"
                problems.append({"row": line, "field": shown,
                                 "problem": f"the same {'person' if field == 'person' else 'photo file'} "
                                            f"is also on row {first}"})
