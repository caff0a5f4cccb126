"""`eduledger audit ...`: history of a record (and the audit runs and access log commands)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from ledger.audit.cli import add_audit_access_command
from ledger.audit.cli_run import add_audit_run_command
from ledger.errors import NotFound


def cmd_history(args: argparse.Namespace) -> int:
    from api.cli import _settings
    from ledger.audit.history import History
    from ledger.node import Node

    settings = _settings(args)
    if args.rpc:
        settings = replace(settings, rpc_url=args.rpc)
    node = Node(settings)
    try:
        deployment = node.deployment
        if deployment is None:
            raise NotFound(f"no network deployed in {settings.data_dir}", code="no_network")
        node.indexer().run_once()
        result = History(node.engine, node.client, deployment).of(args.id, check_chain=args.check_chain)
    finally:
        node.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    subject = result["subject"]
    print(" ".join(f"{k}={v}" for k, v in subject.items() if v is not None))
    rows = [("action", "actor", "reason", "block", "time", "tx", "chain")]
    for entry in result["history"]:
        rows.append((entry["action"], entry["actor"] or "-", _text(entry["reason"]),
                     _text(entry["block_number"]), entry["block_time"] or "-",
                     (entry["tx_hash"] or "-")[:18], entry.get("chain", "")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def add_audit_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="trace records, audit integrity, check the access log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    history = audit_sub.add_parser("history", help="every event that touched a record, oldest first")
    history.add_argument("id", help="credential id, leaf hash, batch root, organisation or member")
    history.add_argument("--check-chain", action="store_true", help="re-read every entry from the chain")
    history.add_argument("--json", action="store_true")
    history.add_argument("--data-dir")
    history.add_argument("--rpc", help="a node's JSON-RPC URL (use the serving node's /rpc)")
    history.set_defaults(func=cmd_history)
    add_audit_access_command(audit_sub)
    add_audit_run_command(audit_sub)
