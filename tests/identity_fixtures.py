"""Rosters of identity cards for tests: students and teachers, with real photo files."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from ledger.credentials import sdjwt

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id(n: int) -> str:
    """A well-formed (made-up) resident ID number: Beijing Dongcheng, born 2010, sequence n."""
    born = date(2010, 1, 1) + timedelta(days=n % 3650)
    body = f"110101{born:%Y%m%d}{n % 1000:03d}"
    return body + _ID_CHECK[sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def photo(n: int = 0, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 128), ((n * 37) % 256, (n * 91) % 256, 120)).save(out, fmt)
    return out.getvalue()


def student(n: int, **extra: object) -> dict[str, object]:
    return {"name": f"学生{n:04d}", "student_number": "G" + resident_id(n), "grade": "七年级",
            "class_name": f"{n % 8 + 1}班", "enrolment_date": "2025-09-01", "photo": f"photos/{n:04d}.jpg",
            **extra}


def teacher(n: int, **extra: object) -> dict[str, object]:
    return {"name": f"教师{n:03d}", "national_id": resident_id(5000 + n), "staff_number": f"T{n:05d}",
            "subjects": "数学、物理", "photo": f"photos/t{n:03d}.jpg", **extra}


CSV_HEADERS = {"name": "姓名", "student_number": "学籍号", "grade": "年级", "class_name": "班级",
               "enrolment_date": "入学日期", "photo": "照片", "national_id": "身份证号",
               "staff_number": "教职工号", "subjects": "任教学科"}


def roster_zip(rows: list[dict[str, object]], *, as_json: bool = False,
               photos: dict[str, bytes] | None = None) -> bytes:
    """A ZIP of roster.csv (Chinese headers) or roster.json and the photos the rows name."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if as_json:
            import json

            archive.writestr("roster.json", json.dumps(rows, ensure_ascii=False))
        else:
            text = io.StringIO()
            fields = list(dict.fromkeys(f for row in rows for f in row))
            writer = csv.writer(text)
            writer.writerow([CSV_HEADERS.get(f, f) for f in fields])
            for row in rows:
                writer.writerow([row.get(f, "") for f in fields])
            archive.writestr("roster.csv", text.getvalue())
        given = photos if photos is not None else {
            str(row["photo"]): photo(i) for i, row in enumerate(rows) if row.get("photo")}
        for name, content in given.items():
            archive.writestr(name, content)
    return out.getvalue()


def present(card: str, holder: Ed25519PrivateKey, challenge: dict[str, Any], keep: set[str]) -> str:
    """What the holder's wallet sends: the card with only `keep` disclosed, key-bound to the challenge."""
    chosen = sdjwt.select(card, lambda path, _v: len(path) >= 2 and path[0] == "holder" and path[1] in keep)
    return sdjwt.add_key_binding(chosen, holder_key=holder, aud=challenge["audience"],
                                 nonce=challenge["nonce"])
