"""No cell of an export a spreadsheet opens is a formula (issue 18, item 6)."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from ledger.audit.report import to_csv
from ledger.spreadsheet import FORMULA_START, csv_text, safe_cell

ATTACKS = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "@SUM(A1)", "-2+3", "\t=1", "\r=1", '=HYPERLINK("http://x")']


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@given(st.lists(st.lists(st.one_of(st.text(), st.integers()), min_size=1, max_size=5), max_size=8))
def test_no_cell_starts_a_formula_and_none_is_lost(rows: list[list[object]]) -> None:
    cells = _cells(csv_text(rows))
    assert len(cells) == len(rows) or not any(rows)  # a row of one empty string reads as []
    for row, read in zip(rows, cells, strict=False):
        for value, cell in zip(row, read, strict=False):
            if not isinstance(value, str):  # a number is a number, never a formula
                assert cell == str(value)
                continue
            assert not cell.startswith(FORMULA_START)
            assert (cell[1:] if value.startswith(FORMULA_START) else cell) == value


def test_the_known_attacks_are_written_as_text() -> None:
    for attack in ATTACKS:
        assert safe_cell(attack) == "'" + attack
    assert safe_cell("张三") == "张三" and safe_cell(-5) == -5


def test_the_audit_report_csv_neutralises_its_cells() -> None:
    report = {"findings": [{"seq": n, "kind": "item_missing", "item": attack, "details": {"name": attack}}
                           for n, attack in enumerate(ATTACKS)]}
    cells = _cells(to_csv(report))
    assert cells[0] == ["seq", "kind", "kind_zh", "item", "details"]
    for row, attack in zip(cells[1:], ATTACKS, strict=True):
        assert row[3] == "'" + attack
        assert not any(cell.startswith(FORMULA_START) for cell in row)
