#!/usr/bin/env python3
"""Credential benchmark: issuance end to end, verification over HTTP, gas per credential.

Prints its figures; asserts nothing. Run: .venv/bin/python scripts/bench_credentials.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from ledger.credentials import sdjwt  # noqa: E402
from ledger.credentials.anchorproof import envelope  # noqa: E402
from ledger.credentials.jose import ed25519_jwk  # noqa: E402
from ledger.credentials.roster import parse_roster  # noqa: E402
from ledger.credentials.signing import shared_pool  # noqa: E402
from ledger.credentials.types import CredentialType  # noqa: E402
from ledger.node import NodeServices, init_network  # noqa: E402
from ledger.settings import Settings  # noqa: E402
from node_config import DEMO_CONSORTIUM  # noqa: E402
from tests.credential_fixtures import transcript_row  # noqa: E402
from tests.servers import free_port  # noqa: E402
from wallet.holder import claim_selector  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHOWN_CLAIMS = ["credentialSubject.holderName", "credentialSubject.courses.1",
                "credentialSubject.courses.4", "credentialSubject.courses.8"]


def raw_ed25519_rate(n: int = 20_000) -> float:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"x" * 300
    signature = key.sign(message)
    started = time.perf_counter()
    for _ in range(n):
        public.verify(signature, message)
    return n / (time.perf_counter() - started)


def raw_ed25519_sign_rate(n: int = 20_000) -> float:
    """One process's Ed25519 signatures per second: the reference for issuance figures."""
    key = Ed25519PrivateKey.generate()
    message = b"x" * 300
    started = time.perf_counter()
    for _ in range(n):
        key.sign(message)
    return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--verify", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 1) - 1, 0),
                        help="serve --workers (default: one per core beyond the first)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    args = parser.parse_args()
    os.environ.setdefault("EDULEDGER_KEYSTORE_PASSPHRASE", "benchmark only")
    os.environ.setdefault("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        node = init_network(Settings(data_dir=data_dir), DEMO_CONSORTIUM)
        services = NodeServices(node)
        roster = json.dumps([transcript_row(n) for n in range(args.count)]).encode()
        # A serving node starts its signing processes at start-up (eduledger serve does).
        started = time.perf_counter()
        signers = shared_pool().warm()
        print(f"signing pool: {len(signers)} processes, started in {time.perf_counter() - started:.1f} s "
              "(at node start-up, not counted below)")

        sign_before = raw_ed25519_sign_rate()
        started = time.perf_counter()
        rows = parse_roster(roster, fmt="json", ctype=CredentialType.TRANSCRIPT)
        validated = time.perf_counter()
        batch = services.credentials.issue("school-a", CredentialType.TRANSCRIPT, rows)
        total = time.perf_counter() - started
        print(f"issuance of {args.count} transcripts (10 courses each), end to end:")
        print(f"  {total:.2f} s, {args.count / total:.0f} credentials/s "
              f"(validation {validated - started:.2f} s)")

        degree_roster = json.dumps([{
            "holder_name": f"学生{n:05d}", "student_id": f"D2026{n:05d}", "degree_name": "工学学士",
            "field": "工学", "conferral_date": "2026-06-30", "certificate_number": f"10001-2026-{n:05d}"}
            for n in range(args.count)]).encode()
        started = time.perf_counter()
        degree_rows = parse_roster(degree_roster, fmt="json", ctype=CredentialType.DEGREE)
        degrees = services.credentials.issue("school-a", CredentialType.DEGREE, degree_rows)
        total = time.perf_counter() - started
        print(f"issuance of {args.count} degree certificates (7 claims each), end to end:")
        print(f"  {total:.2f} s, {args.count / total:.0f} credentials/s")
        print(f"  reference: raw Ed25519 signatures in one process {sign_before:.0f}/s before the two "
              f"issuances, {raw_ed25519_sign_rate():.0f}/s after")

        print("gas per credential (one anchor transaction per batch):")
        sizes = [1, 100, args.count]
        for size in sizes:
            b = batch if size == args.count else services.credentials.issue(
                "school-a", CredentialType.TRANSCRIPT, rows[:size])
            receipt = node.client.receipt(b.credentials[0].anchor.tx_hash or "")
            print(f"  batch of {size:>6}: {receipt['gasUsed'] / size:,.1f} gas per credential "
                  f"({receipt['gasUsed']} for the batch)")

        files: list[dict] = []
        degree_files: list[dict] = []
        presentations: list[dict] = []
        for issued in batch.credentials[: args.verify]:
            record = services.credentials.get(issued.credential_id)
            files.append(envelope(record.sd_jwt, issued.anchor))
        for issued in degrees.credentials[: args.verify]:
            record = services.credentials.get(issued.credential_id)
            degree_files.append(envelope(record.sd_jwt, issued.anchor))
        # What an employer usually gets: a graduate's presentation of 3 of the 10 lines,
        # bound to the graduate's key (a second Ed25519 signature to check).
        for issued in batch.credentials[: min(args.verify, 500)]:
            holder = Ed25519PrivateKey.generate()
            bound = services.credentials.redeem(issued.claim_code, ed25519_jwk(holder.public_key()))
            keep = claim_selector(sdjwt.disclosure_paths(bound["sd_jwt"]), SHOWN_CLAIMS)
            shown = sdjwt.select(bound["sd_jwt"], keep)
            presented = sdjwt.add_key_binding(shown, holder_key=holder, aud="https://employer.example",
                                              nonce=f"n{len(presentations)}")
            presentations.append(envelope(presented, issued.anchor))
        node.close()

        port = free_port()
        # The public rate limit would otherwise be what we measure.
        env = {**os.environ, "PYTHONPATH": str(REPO), "EDULEDGER_PUBLIC_RATE_LIMIT": "1000000/minute"}
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--workers", str(args.workers)],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the node, and every worker accepting connections
                try:
                    health = httpx.get(base + "/health", timeout=1).json()
                    if health.get("workers", {}).get("ready", 0) >= args.workers:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=30) as warm:
                answer = warm.post("/v1/verify", json={"credential": files[0]}).json()
                if not answer.get("valid"):
                    raise SystemExit(f"the first verification failed: {answer}")

            local = threading.local()
            raw = raw_ed25519_rate()

            def measure(label: str, docs: list[dict]) -> None:
                latencies: list[float] = []

                def one(doc: dict) -> bool:
                    # One keep-alive connection per client thread, as a real verifier would use.
                    if not hasattr(local, "client"):
                        local.client = httpx.Client(base_url=base, timeout=30)
                    t0 = time.perf_counter()
                    ok = local.client.post("/v1/verify", json={"credential": doc}).json()["valid"]
                    latencies.append(time.perf_counter() - t0)
                    return bool(ok)

                started = time.perf_counter()
                with ThreadPoolExecutor(args.threads) as pool:
                    valid = sum(pool.map(one, docs))
                rate = len(docs) / (time.perf_counter() - started)
                latencies.sort()
                p50 = statistics.median(latencies) * 1000
                p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
                print(f"verification through HTTP, {label} ({len(docs)}, {args.threads} clients, "
                      f"{valid} valid):")
                print(f"  {rate:.0f} verifications/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
                      f"ratio to raw Ed25519 verify ({raw:.0f}/s in this run): {rate / raw:.3f}")

            def measure_wrk(label: str, docs: list[dict]) -> None:
                """wrk in its own process (the server, not a Python client, is what is measured),
                cycling through up to 500 different credentials, after a 3-second warm-up."""
                with tempfile.TemporaryDirectory() as scratch:
                    script = Path(scratch) / "post.lua"
                    bodies = ",\n".join(json.dumps(json.dumps({"credential": d})) for d in docs[:500])
                    script.write_text('wrk.method = "POST"\n'
                                      'wrk.headers["Content-Type"] = "application/json"\n'
                                      f"bodies = {{{bodies}}}\n"
                                      "i = 0\n"
                                      "request = function()\n"
                                      "  i = i % #bodies + 1\n"
                                      "  return wrk.format(nil, nil, nil, bodies[i])\n"
                                      "end\n")
                    command = ["wrk", "-t2", "-c8", "--latency", "-s", str(script), base + "/v1/verify"]
                    subprocess.run([*command[:3], "-d3s", *command[3:]], capture_output=True, check=True)
                    # This machine's speed drifts within minutes: the raw rate is measured just
                    # before and just after the run, and the ratio taken to their mean.
                    before = raw_ed25519_rate()
                    out = subprocess.run([*command[:3], f"-d{args.seconds}s", *command[3:]],
                                         capture_output=True, text=True, check=True).stdout
                    after = raw_ed25519_rate()
                raw_here = (before + after) / 2
                figures = dict(line.split()[:2] for line in out.splitlines()
                               if line.strip().startswith(("50%", "99%")))
                rate = float(next(line.split()[1] for line in out.splitlines()
                                  if line.startswith("Requests/sec")))
                errors = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
                print(f"verification through HTTP, {label} (wrk, 8 connections, {args.seconds} s, "
                      f"{min(len(docs), 500)} different credentials{'; ' + errors if errors else ''}):")
                print(f"  {rate:.0f} verifications/s, p50 {figures.get('50%')}, p99 {figures.get('99%')}; "
                      f"ratio to raw Ed25519 verify ({before:.0f}/s before, {after:.0f}/s after): "
                      f"{rate / raw_here:.3f}")

            def measure_batch(label: str, docs: list[dict]) -> None:
                """/v1/verify/batch: the same checks, with the HTTP cost spread over 1,000."""
                with httpx.Client(base_url=base, timeout=300) as client:
                    started = time.perf_counter()
                    done = 0
                    for i in range(0, len(docs), 1000):
                        body = client.post("/v1/verify/batch", json={"credentials": docs[i:i + 1000]}).json()
                        done += body["count"]
                    rate = done / (time.perf_counter() - started)
                print(f"verification through HTTP, {label}, /v1/verify/batch of 1,000: "
                      f"{rate:.0f} verifications/s; ratio {rate / raw:.3f}")

            measure_batch("transcripts", files)
            measure_batch("degree certificates", degree_files)
            print(f"(server: eduledger serve --workers {args.workers})")
            if not shutil.which("wrk"):  # installed the way scripts/test installs what it needs
                subprocess.run(["bash", "-c", f". {REPO / 'scripts' / '_bootstrap.sh'} && eduledger_wrk"],
                               check=False)
            if shutil.which("wrk"):
                measure_wrk("degree certificates", degree_files)
                measure_wrk("transcript presentations (3 of 10 lines, key-bound)", presentations)
                measure_wrk("full transcripts (10 lines, 65 disclosures)", files)
            else:
                print("(wrk not installed: apt-get install wrk; measuring with a Python client, "
                      "which itself limits the rate)")
                measure("degree certificates", degree_files)
                measure("transcript presentations", presentations)
                measure("full transcripts", files)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
