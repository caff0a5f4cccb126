"""Files that a spreadsheet opens (CSV exports today, Excel tomorrow) never hold a formula.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
taken by Excel, LibreOffice and Google Sheets as a formula (OWASP "CSV injection"): a name
such as ``=cmd|' /C calc'!A0`` in a roster would run when a registrar opens the export.
Every such cell is written with a leading apostrophe, which spreadsheets show as text and
do not display; the value stays readable, and nothing the data holds is dropped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

__all__ = ["FORMULA_START", "csv_text", "safe_cell"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet cell that cannot be a formula (text only; numbers pass)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """CSV (RFC 4180: "\\r\\n" line ends, quoted where needed) with every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; a lone \r in a cell is then quoted
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
