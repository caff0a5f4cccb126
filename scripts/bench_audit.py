#!/usr/bin/env python3
"""Integrity audit benchmark: items audited per second over 100,000 stored credentials.

Issues the credentials through the real CredentialService (degree certificates, the
cheapest type, in batches of 10,000: one anchor transaction each), runs the indexer, then
audits the store against the chain and prints the rates:

* deep (the default audit): every SD-JWT's signature and disclosures verified, its leaf
  recomputed, every batch root rebuilt and read from the chain, statuses and events
  compared; in one process, then with ``--workers`` processes verifying SD-JWTs;
* shallow: leaves recomputed only (``--shallow`` in ``eduledger audit run``).

Prints its figures; asserts nothing. Run: .venv/bin/python scripts/bench_audit.py
(about 3 to 5 minutes on a small machine; --count 20000 for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.audit.integrity import IntegrityAudit  # noqa: E402
from ledger.credentials.roster import parse_roster  # noqa: E402
from ledger.credentials.types import CredentialType  # noqa: E402
from ledger.node import (
    NodeServices,  # noqa: E402
    init_network,  # noqa: E402
)
from ledger.settings import Settings  # noqa: E402
from node_config import DEMO_CONSORTIUM  # noqa: E402


def degree_roster(start: int, count: int) -> bytes:
    return json.dumps([{
        "holder_name": f"学生{n:06d}", "student_id": f"D26{n:07d}", "degree_name": "工学学士",
        "field": "工学", "conferral_date": "2026-06-30", "certificate_number": f"10001-2026-{n:06d}"}
        for n in range(start, start + count)]).encode()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--revoke", type=int, default=20, help="credentials revoked (status reads)")
    args = parser.parse_args()
    os.environ.setdefault("EDULEDGER_KEYSTORE_PASSPHRASE", "benchmark only")
    os.environ.setdefault("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))

    with tempfile.TemporaryDirectory() as tmp:
        node = init_network(Settings(data_dir=Path(tmp) / "data"), DEMO_CONSORTIUM)
        try:
            services = NodeServices(node)
            started = time.perf_counter()
            batches = []
            for start in range(0, args.count, args.batch):
                size = min(args.batch, args.count - start)
                rows = parse_roster(degree_roster(start, size), fmt="json", ctype=CredentialType.DEGREE)
                batches.append(services.credentials.issue("school-a", CredentialType.DEGREE, rows))
                done = start + size
                rate = done / (time.perf_counter() - started)
                print(f"\rissuing: {done}/{args.count} ({rate:.0f}/s)", end="", file=sys.stderr,
                      flush=True)
            print(file=sys.stderr)
            issued = time.perf_counter() - started
            for issued_credential in batches[0].credentials[: args.revoke]:
                services.credentials.change_status("school-a", issued_credential.credential_id,
                                                   "revoke", reason=1)
            node.indexer().run_once()
            print(f"stored {args.count} credentials in {len(batches)} batches "
                  f"({issued:.1f} s, {args.count / issued:.0f}/s); {args.revoke} revoked")

            _, registry = node.contracts()
            auditor = services.keys_for("auditor")
            anchoring = services.anchoring

            def measure(label: str, **options: object) -> None:
                audit = IntegrityAudit(node.engine, node.client, registry, auditor_keys=auditor,
                                       anchoring=anchoring, deployment=node.deployment,
                                       **options)  # type: ignore[arg-type]
                run_id = audit.start("bench")
                t0 = time.perf_counter()
                run = audit.run(run_id)
                elapsed = time.perf_counter() - t0
                scope = audit.build_report(run_id)["scope"]
                items = (scope["credentials"] + scope["anchored_leaves"] + scope["batches"]
                         + scope["chain_events"])
                print(f"audit, {label}: {elapsed:.1f} s, {scope['credentials'] / elapsed:,.0f} "
                      f"credentials audited/s ({items / elapsed:,.0f} items/s: credentials, "
                      f"anchored leaves, batches and chain events); {run.finding_count} findings, "
                      f"{scope['status_reads']} statusOf reads, report anchored: "
                      f"{run.report_batch_id is not None}")

            measure("deep, 1 process", deep=True, workers=1)
            if args.workers > 1:
                measure(f"deep, {args.workers} worker processes", deep=True, workers=args.workers)
            measure("shallow (leaves only), 1 process", deep=False, workers=1)
        finally:
            node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
