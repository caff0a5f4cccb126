"""`eduledger audit run`: the integrity audit from the command line, in-process.

It opens the node itself (``ledger.node.Node``) on ``--data-dir``: with the embedded chain
the node must not be serving at the same time (stop ``eduledger serve`` first), or set
EDULEDGER_RPC_URL to a running node's JSON-RPC URL (e.g. ``http://127.0.0.1:8000/rpc``) so
that only the SQL store is opened here. Progress goes to stderr, the report to ``--out``
(or stdout). An interrupted run (Ctrl-C, kill -9) continues with ``--resume RUN_ID``.
Exit status: 0 when the audit found nothing, 1 when it reported findings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger.errors import InvalidInput, NotFound

__all__ = ["add_audit_run_command", "cmd_audit_run"]


def _progress_bar() -> Any:
    started = time.monotonic()
    labels = {"events": "events  事件", "batches": "batches 批次", "done": "done    完成"}

    def show(done: int, total: int, phase: str) -> None:
        width = 30
        total = max(total, done, 1)
        filled = int(width * done / total)
        rate = done / max(time.monotonic() - started, 1e-6)
        end = "\n" if phase == "done" else ""
        print(f"\raudit {labels.get(phase, phase)} [{'#' * filled}{'.' * (width - filled)}] "
              f"{done}/{total} ({rate:.0f} items/s)", end=end, file=sys.stderr, flush=True)

    return show


def _auditor_org(deployment: Any, wanted: str | None) -> str | None:
    if wanted:
        if wanted not in deployment.organisations:
            raise NotFound(f"{wanted} is not an organisation of this network", code="unknown_member")
        return wanted
    auditors = [org for org, info in deployment.organisations.items() if info.get("role") == "auditor"]
    return auditors[0] if len(auditors) == 1 else None


def cmd_audit_run(args: argparse.Namespace) -> int:
    from ledger.audit.integrity import IntegrityAudit
    from ledger.audit.report import to_csv, to_html
    from ledger.consortium.network import signer_loader
    from ledger.keys import load_keystore
    from ledger.node import Node
    from ledger.settings import Settings, keystore_passphrase

    settings = Settings()
    if args.data_dir:
        settings = replace(settings, data_dir=Path(args.data_dir))
    if args.workers < 1:
        raise InvalidInput("--workers must be at least 1", code="bad_workers")
    node = Node(settings)
    try:
        deployment = node.deployment
        if deployment is None:
            raise NotFound(f"no network deployed in {settings.data_dir} (run: eduledger network init)",
                           code="no_network")
        _, registry = node.contracts()
        org = _auditor_org(deployment, args.auditor)
        keys = load_keystore(settings.keystore_dir, org, keystore_passphrase()) if org else None
        if keys is None:
            print("audit: no auditor organisation: the report will be neither signed nor anchored",
                  file=sys.stderr)
        anchoring = None if args.no_anchor or keys is None else node.anchoring(signer_loader(settings))
        audit = IntegrityAudit(node.engine, node.client, registry, auditor_keys=keys,
                               anchoring=anchoring, deployment=deployment,
                               deep=not args.shallow, workers=args.workers)
        run_id = audit.get(args.resume).id if args.resume else audit.start(f"cli:{org or 'anonymous'}")
        print(f"audit run {run_id}", file=sys.stderr)
        started = time.perf_counter()
        try:
            run = audit.run(run_id, progress=_progress_bar())
        except BaseException:
            print(f"\naudit interrupted; continue with: eduledger audit run --resume {run_id}",
                  file=sys.stderr)
            raise
        elapsed = time.perf_counter() - started
        report = audit.report(run_id)
        data = report.report
        if args.format == "csv":
            text = to_csv(data)
        elif args.format == "html":
            text = to_html(data, report_hash_hex=report.report_hash, signature_hex=report.signature,
                           anchor=report.anchor)
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


def add_audit_run_command(audit_sub: Any) -> None:
    """Register `run` under the `audit` command's subparsers."""
    run = audit_sub.add_parser(
        "run", help="check that the off-chain store still matches the chain (in-process)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    run.add_argument("--workers", type=int, default=1,
                     help="processes verifying SD-JWTs; worth it on machines with many cores "
                          f"(this one has {os.cpu_count()}); default 1")
    run.set_defaults(func=cmd_audit_run)
