"""`eduledger audit history|run|access`: trace records, audit integrity, check the access log."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sqlalchemy import Engine

from api.cli.common import ProgressBar, Subcommands, node_settings, positive, print_table
from ledger.consortium.deployment import Deployment
from ledger.errors import ConfigError, InvalidInput, NotFound

RUN_DESCRIPTION = """\
Check that the off-chain store still matches the chain, in-process.

It opens the node itself on --data-dir: with the embedded chain the node must not be
serving at the same time (stop `eduledger serve` first), or set EDULEDGER_RPC_URL to a
running node's JSON-RPC URL (e.g. http://127.0.0.1:8000/rpc) so that only the SQL store is
opened here. Progress goes to stderr, the report to --out (or stdout). An interrupted run
(Ctrl-C, kill -9) continues with --resume RUN_ID.
Exit status: 0 when the audit found nothing, 1 when it reported findings."""


AUDIT_PHASES = {"events": "events  事件", "batches": "batches 批次", "done": "done    完成"}


# -- history ---------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> int:
    from ledger.node import Node, NodeServices

    node = Node(node_settings(args))
    try:
        result = NodeServices(node).history().of(args.id, check_chain=args.check_chain)
    finally:
        node.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    subject = result["subject"]
    print(" ".join(f"{k}={v}" for k, v in subject.items() if v is not None))
    rows: list[list[object]] = [["action", "actor", "reason", "block", "time", "tx", "chain"]]
    for entry in result["history"]:
        rows.append([entry["action"], entry["actor"], entry["reason"], entry["block_number"],
                     entry["block_time"], (entry["tx_hash"] or "-")[:18], entry.get("chain", "")])
    print_table(rows)
    return 0


# -- run -------------------------------------------------------------------------------


def _auditor_org(deployment: Deployment, wanted: str | None) -> str | None:
    if wanted:
        if wanted not in deployment.organisations:
            raise NotFound(f"{wanted} is not an organisation of this network", code="unknown_member")
        return wanted
    auditors = [org for org, info in deployment.organisations.items() if info.get("role") == "auditor"]
    return auditors[0] if len(auditors) == 1 else None


def cmd_audit_run(args: argparse.Namespace) -> int:
    from ledger.audit.report import to_csv
    from ledger.node import Node, NodeServices

    node = Node(node_settings(args))
    try:
        services = NodeServices(node)
        org = _auditor_org(services.deployment, args.auditor)
        if org is None:
            print("audit: no auditor organisation: the report will be neither signed nor anchored",
                  file=sys.stderr)
        audit = services.integrity_audit(org, anchor=not args.no_anchor, deep=not args.shallow,
                                         workers=args.workers)
        run_id = audit.get(args.resume).id if args.resume else audit.start(f"cli:{org or 'anonymous'}")
        print(f"audit run {run_id}", file=sys.stderr)
        started = time.perf_counter()
        bar = ProgressBar("audit", unit="items", phases=AUDIT_PHASES)
        try:
            run = audit.run(run_id, progress=bar)
        except BaseException:
            bar.finish()
            print(f"audit interrupted; continue with: eduledger audit run --resume {run_id}",
                  file=sys.stderr)
            raise
        bar.finish()
        elapsed = time.perf_counter() - started
        report = audit.report(run_id)
        data = report.report
        if args.format == "csv":
            text = to_csv(data)
        elif args.format == "html":
            from api.pages import audit_report_page

            text = audit_report_page(report)
        else:
            text = report.report_json.decode("utf-8")  # canonical: what was signed and anchored
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        scope = data.get("scope", {})
        print(f"audit {run.status}: {run.finding_count} finding(s); {scope.get('credentials', 0)} "
              f"credentials, {scope.get('batches', 0)} batches, {scope.get('chain_events', 0)} "
              f"chain events in {elapsed:.1f} s", file=sys.stderr)
        print(f"report hash {report.report_hash}", file=sys.stderr)
        if report.signature:
            print(f"signature (Ed25519, {org}) {report.signature}", file=sys.stderr)
        if report.anchor:
            print(f"anchored in block {report.anchor['block_number']}, tx {report.anchor['tx_hash']}",
                  file=sys.stderr)
        return 0 if run.finding_count == 0 else 1
    finally:
        node.close()


# -- access ----------------------------------------------------------------------------


def _open_store(args: argparse.Namespace) -> Engine:
    """The node's SQL store only, never the chain: this runs while the node is serving."""
    from ledger.store.db import make_engine, normalize_url

    parsed = normalize_url(node_settings(args).resolved_database_url())
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not Path(path).is_file():
            # connecting would create an empty database; say what is wrong instead
            raise ConfigError(f"no SQL store at {path}: pass the node's --data-dir", code="no_store")
    return make_engine(parsed)


def cmd_audit_access(args: argparse.Namespace) -> int:
    from ledger.audit.accesslog import AccessLog

    engine = _open_store(args)
    try:
        log = AccessLog(engine)
        if args.verify:
            bar = ProgressBar("verifying", always=False)
            result = log.verify(progress=bar)
            bar.finish()
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
                raise InvalidInput("--resource takes KIND:ID, e.g. credential:abc123", code="bad_resource")
        rows = log.entries(args.after, args.limit, actor=args.actor, resource_kind=kind, resource_id=rid)
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


# -- the parser ------------------------------------------------------------------------


def add_audit_commands(sub: Subcommands) -> None:
    audit = sub.add_parser("audit", help="trace records, audit integrity, check the access log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)

    history = audit_sub.add_parser("history", help="every event that touched a record, oldest first")
    history.add_argument("id", help="credential id, leaf hash, batch root, organisation or member")
    history.add_argument("--check-chain", action="store_true", help="re-read every entry from the chain")
    history.add_argument("--json", action="store_true")
    history.add_argument("--data-dir")
    history.add_argument("--rpc", help="a node's JSON-RPC URL (use the serving node's /rpc)")
    history.set_defaults(func=cmd_history)

    access = audit_sub.add_parser(
        "access", help="list or verify the access log of personal data",
        description="List who read personal data (newest rows last), or with --verify check "
                    "the whole hash chain and its anchored checkpoints; exits 1 when broken. "
                    "Only the SQL store is opened, so it runs while the node is serving.")
    access.add_argument("--verify", action="store_true",
                        help="check the hash chain; print the first broken row")
    access.add_argument("--data-dir", help="the node's data directory (default: EDULEDGER_DATA_DIR)")
    access.add_argument("--after", type=int, default=0, metavar="SEQ", help="list rows after this seq")
    access.add_argument("--limit", type=int, default=100, help="list at most this many rows")
    access.add_argument("--actor", help="only rows of this actor (organisation id)")
    access.add_argument("--resource", metavar="KIND:ID",
                        help="only reads of this resource, e.g. credential:abc123")
    access.add_argument("--json", action="store_true", help="print JSON")
    access.set_defaults(func=cmd_audit_access)

    run = audit_sub.add_parser("run", help="check that the off-chain store still matches the chain "
                               "(in-process)", description=RUN_DESCRIPTION,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--data-dir")
    run.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    run.add_argument("--format", choices=["json", "csv", "html"], default="json",
                     help="report format (json is the canonical, signed form)")
    run.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    run.add_argument("--auditor", metavar="ORG",
                     help="organisation that signs and anchors the report (default: the network's "
                          "only auditor)")
    run.add_argument("--no-anchor", action="store_true", help="sign the report but do not anchor it")
    run.add_argument("--shallow", action="store_true",
                     help="recompute leaves only; skip SD-JWT signature and disclosure checks")
    run.add_argument("--workers", type=positive, default=1,
                     help="processes verifying SD-JWTs; worth it on machines with many cores "
                          f"(this one has {os.cpu_count()}); default 1")
    run.set_defaults(func=cmd_audit_run)
