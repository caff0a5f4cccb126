"""`eduledger audit access`: read and verify the access log of personal data.

It opens only the SQL store named by the settings (EDULEDGER_DATABASE_URL, or the SQLite
file in the data directory), never the chain, so it runs while the node is serving.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ledger.errors import ConfigError, InvalidInput
from ledger.settings import Settings

__all__ = ["add_audit_access_command", "cmd_audit_access"]


def add_audit_access_command(audit_sub: Any) -> argparse.ArgumentParser:
    """Register `access` on the `audit` command's subparsers."""
    access = audit_sub.add_parser(
        "access", help="list or verify the access log of personal data",
        description="List who read personal data (newest rows last), or with --verify check "
                    "the whole hash chain and its anchored checkpoints; exits 1 when broken.")
    access.add_argument("--verify", action="store_true",
                        help="check the hash chain; print the first broken row")
    access.add_argument("--data-dir", help="the node's data directory (default: EDULEDGER_DATA_DIR)")
    access.add_argument("--after", type=int, default=0, metavar="SEQ",
                        help="list rows after this seq")
    access.add_argument("--limit", type=int, default=100, help="list at most this many rows")
    access.add_argument("--actor", help="only rows of this actor (organisation id)")
    access.add_argument("--resource", metavar="KIND:ID",
                        help="only reads of this resource, e.g. credential:abc123")
    access.add_argument("--json", action="store_true", help="print JSON")
    access.set_defaults(func=cmd_audit_access)
    return access


def _open_store(args: argparse.Namespace) -> Engine:
    from ledger.store.db import make_engine, normalize_url

    settings = Settings()
    if args.data_dir:
        settings = replace(settings, data_dir=Path(args.data_dir))
    url = settings.resolved_database_url()
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not Path(path).is_file():
            # connecting would create an empty database; say what is wrong instead
            raise ConfigError(f"no SQL store at {path}: pass the node's --data-dir",
                              code="no_store")
    return make_engine(parsed)


def _progress(label: str) -> Any:
    if not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        rate = done / max(time.monotonic() - started, 1e-6)
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:.0f}/s)",
              end="", file=sys.stderr, flush=True)

    return show


def cmd_audit_access(args: argparse.Namespace) -> int:
    from ledger.audit.accesslog import AccessLog

    engine = _open_store(args)
    try:
        log = AccessLog(engine)
        if args.verify:
            progress = _progress("verifying")
            result = log.verify(progress=progress)
            if progress is not None:
                print(file=sys.stderr)
            if args.json:
                print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
            elif result.ok:
                print(f"access log intact: {result.rows_checked} rows")
            elif result.first_broken_seq is not None:
                print(f"access log broken at row {result.first_broken_seq}: {result.problem}")
            else:
                print(f"access log broken: {result.problem}")
            return 0 if result.ok else 1
        kind = rid = None
        if args.resource:
            kind, sep, rid = args.resource.partition(":")
            if not sep or not kind or not rid:
                raise InvalidInput("--resource takes KIND:ID, e.g. credential:abc123",
                                   code="bad_resource")
        rows = log.entries(args.after, args.limit, actor=args.actor, resource_kind=kind,
                           resource_id=rid)
        if args.json:
            print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
            return 0
        for r in rows:
            who = r.actor if r.client is None else f"{r.actor}@{r.client}"
            print(f"{r.seq:>8}  {r.to_dict()['at']}  {who} ({r.actor_role})  {r.action}  "
                  f"{r.resource_kind}:{r.resource_id}  {r.purpose or '-'}")
        if not rows:
            print("no rows", file=sys.stderr)
        return 0
    finally:
        engine.dispose()
