"""What every `eduledger` command shares: the one-line argument parser, settings from the
arguments, the progress bar, the table printer and private output files.

Errors print one line to stderr and exit non-zero; tracebacks never reach the user.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ledger.errors import InvalidInput, one_line
from ledger.settings import Settings

__all__ = ["OneLineArgumentParser", "ProgressBar", "count", "node_settings", "positive", "print_table",
           "text_width", "write_private"]

# The type argparse gives the subparsers of a command: `add_parser(...)` makes a command.
Subcommands = Any


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like a CLI's other errors:
    ``eduledger: <problem> (see <command> --help)``, exit status 2, instead of a usage
    block. Subcommands' parsers are of the same class (argparse makes them so)."""

    error_prefix = "eduledger: "

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.error_prefix}{one_line(message)} (see {self.prog} --help)\n")

    def report(self, message: str) -> int:
        """Print a domain error as usage errors are printed (one line, same prefix); returns
        the exit status, 2."""
        print(f"{self.error_prefix}{one_line(message)}", file=sys.stderr)
        return 2


def count(text: str) -> int:
    """argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive(text: str) -> int:
    """argparse type: a whole number, 1 or more."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def node_settings(args: argparse.Namespace, **changes: Any) -> Settings:
    """The node's settings from the environment, with what the command line says instead:
    ``--data-dir``, ``--host``, ``--port``, ``--workers``, ``--rpc`` when the command has them,
    and `changes` (a None value changes nothing)."""
    given = {"data_dir": getattr(args, "data_dir", None), "host": getattr(args, "host", None),
             "port": getattr(args, "port", None), "workers": getattr(args, "workers_serving", None),
             "rpc_url": getattr(args, "rpc", None)}
    return Settings().with_changes(**given, **changes)


class ProgressBar:
    """``label [#####.....] done/total (rate/s)`` on stderr, redrawn in place; silent when
    stderr is not a terminal unless `always`."""

    WIDTH = 30

    def __init__(self, label: str, *, unit: str = "", always: bool = True,
                 phases: dict[str, str] | None = None) -> None:
        self.label = label
        self.phases = phases or {}
        self.unit = f" {unit}" if unit else ""
        self.enabled = always or sys.stderr.isatty()
        self.started = time.monotonic()
        self._open = False

    def __call__(self, done: int, total: int, phase: str | None = None) -> None:
        if not self.enabled:
            return
        total = max(total, done, 1)
        filled = int(self.WIDTH * done / total)
        rate = done / max(time.monotonic() - self.started, 1e-6)
        label = f"{self.label} {self.phases.get(phase, phase)}" if phase else self.label
        print(f"\r{label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} "
              f"({rate:.0f}{self.unit}/s)", end="", file=sys.stderr, flush=True)
        self._open = True
        if done >= total and phase in (None, "done"):
            self.finish()

    def finish(self) -> None:
        """End the bar's line (once)."""
        if self._open:
            print(file=sys.stderr, flush=True)
            self._open = False


def text_width(text: str) -> int:
    """Terminal columns taken by `text` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def print_table(rows: Sequence[Sequence[object]]) -> None:
    """Rows (the first is the header) in aligned columns; None shows as "-"."""
    cells = [["-" if cell is None else str(cell) for cell in row] for row in rows]
    if not cells:
        return
    widths = [max(text_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("  ".join(cell + " " * (width - text_width(cell))
                        for cell, width in zip(row, widths, strict=True)).rstrip())


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to a new or truncated file readable by its owner only (mode 0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}", code="unwritable_output") from None
