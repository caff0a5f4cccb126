#!/usr/bin/env python3
"""Identity-card benchmark: a roster with photos issued end to end, recognition through HTTP,
and the registry alone.

End to end (the default): a ZIP roster of --count student cards with JPEG photos is parsed,
checked, sealed and issued by the identity service on the demo network (embedded chain on
disk); then --verify recognitions (challenge answered by a key-bound presentation, checked
against the chain, with the photo) are posted to the API over HTTP from --threads clients:
rate, p50 and p99, beside the raw Ed25519 verify rate measured just before and after.

Registry alone (--registry-only): issues --count student cards (default 10,000) through
IdentityRegistry.issueBatch, 100 per transaction, on the embedded chain (in memory, or on
disk with --disk) or on any JSON-RPC node (--rpc URL --funder-key KEY, e.g. anvil); then
graduates the first batch (cards with a predecessor) and reads every card's state back
with card_states. Prints time and gas; asserts nothing.
Run: .venv/bin/python scripts/bench_identity.py [--count 1000] [--registry-only]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402

from ledger.chain import ChainAPI, ChainClient, EmbeddedChain, embedded_client  # noqa: E402
from ledger.contracts import (  # noqa: E402
    MAX_CARD_BATCH,
    CardKind,
    CardSpec,
    ConsortiumContract,
    IdentityRegistryContract,
    ProposalAction,
    Role,
)

ETHER = 10**18
REPO = Path(__file__).resolve().parents[1]


def run(client: ChainAPI, funder: LocalAccount, count: int) -> None:
    school: LocalAccount = Account.create()
    client.transfer(funder, school.address, 1000 * ETHER)
    consortium = ConsortiumContract.deploy(client, funder, "Bench Bureau", [funder.address], 1)
    consortium.propose(funder, ProposalAction.ADMIT, name="Bench School", role=Role.SCHOOL,
                       account=school.address)
    registry = IdentityRegistryContract.deploy(client, funder, consortium)
    cards = [CardSpec(secrets.token_bytes(32), CardKind.STUDENT, secrets.token_bytes(32))
             for _ in range(count)]
    started, gas = time.perf_counter(), 0
    for start in range(0, count, MAX_CARD_BATCH):
        gas += registry.issue_batch(school, cards[start:start + MAX_CARD_BATCH]).gas_used
    elapsed = time.perf_counter() - started
    print(f"  issued {count} cards in {elapsed:.1f} s ({count / elapsed:.0f} cards/s), "
          f"{-(-count // MAX_CARD_BATCH)} transactions, gas {gas} ({gas // count} per card)")
    first = cards[:MAX_CARD_BATCH]
    graduates = [CardSpec(secrets.token_bytes(32), CardKind.GRADUATE, c.portrait,
                          predecessor=c.card_id) for c in first]
    result = registry.issue_batch(school, graduates)
    print(f"  graduated {len(first)} cards in one transaction: gas {result.gas_used} "
          f"({result.gas_used // len(first)} per card)")
    started = time.perf_counter()
    states = registry.card_states([c.card_id for c in cards])
    elapsed = time.perf_counter() - started
    assert all(s is not None for s in states)
    print(f"  read {len(states)} card states in {elapsed:.1f} s")


def raw_ed25519_rate(n: int = 20_000) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public, message = key.public_key(), b"x" * 300
    signature = key.sign(message)
    started = time.perf_counter()
    for _ in range(n):
        public.verify(signature, message)
    return n / (time.perf_counter() - started)


def end_to_end(count: int, verify: int, threads: int) -> None:
    import base64
    import json
    import os
    import statistics
    import subprocess
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.credentials import jose, sdjwt
    from ledger.identity.roster import parse_card_roster
    from ledger.node import NodeServices, init_network
    from ledger.settings import Settings
    from node_config import DEMO_CONSORTIUM
    from tests.identity_fixtures import photo, roster_zip, student
    from tests.servers import free_port

    os.environ.setdefault("EDULEDGER_KEYSTORE_PASSPHRASE", "benchmark only")
    os.environ.setdefault("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    with tempfile.TemporaryDirectory() as tmp:
        node = init_network(Settings(data_dir=Path(tmp) / "data"), DEMO_CONSORTIUM)
        services = NodeServices(node)
        zipped = roster_zip([student(n) for n in range(count)])
        print(f"roster: {count} student cards, ZIP of {len(zipped) / 2**20:.1f} MiB with their photos")
        started = time.perf_counter()
        entries = parse_card_roster(zipped, kind="student", fmt="zip")
        parsed = time.perf_counter()
        issued = services.identity.issue("school-a", "student", entries)
        total = time.perf_counter() - started
        print(f"issuance end to end: {total:.1f} s, {count / total:.0f} cards/s "
              f"(roster and photos checked in {parsed - started:.1f} s; sealing, SQL and "
              f"{-(-count // MAX_CARD_BATCH)} registry transactions in {total - (parsed - started):.1f} s)")

        # The answers a holder's wallet would send, made here; then the node serves them in
        # a process of its own (eduledger serve), so that the clients do not share its GIL.
        answers = []
        for card in issued.cards[:verify + 1]:
            holder = Ed25519PrivateKey.generate()
            claimed = services.identity.claim(card.claim_code, jose.ed25519_jwk(holder.public_key()))
            asked = services.identity.new_challenge("partner", "https://exam.example", ["name"])
            chosen = sdjwt.select(claimed.sd_jwt, lambda path, _v: len(path) >= 2 and path[1] in
                                  ("name", "portrait"))
            answers.append({"challenge_id": asked.id,
                            "presentation": sdjwt.add_key_binding(chosen, holder_key=holder,
                                                                  aud=asked.audience, nonce=asked.nonce),
                            "photo_base64": base64.b64encode(photo(card.position)).decode()})
        node.close()
        data_dir = Path(tmp) / "data"
        keys = json.loads((data_dir / "api-keys.json").read_text())
        exam = {"Authorization": f"Bearer {keys['partner']}"}
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--workers", "0"], env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("eduledger serve did not come up")
                time.sleep(0.2)
            # The first answer waits for the node's indexer to reach the chain's head (a
            # serving node's background pass keeps it there); it is not counted.
            with httpx.Client(base_url=base, timeout=300) as warm:
                first = warm.post("/v1/identity/verify", headers=exam, json=answers.pop()).json()
                if not first.get("valid"):
                    raise SystemExit(f"the first recognition failed: {first}")
            before = raw_ed25519_rate()
            latencies: list[float] = []
            local = threading.local()

            def post(body: dict[str, object]) -> bool:
                if not hasattr(local, "client"):  # one keep-alive connection per client
                    local.client = httpx.Client(base_url=base, timeout=60)
                t0 = time.perf_counter()
                verdict = local.client.post("/v1/identity/verify", headers=exam, json=body).json()
                latencies.append(time.perf_counter() - t0)
                return bool(verdict["valid"] and verdict["photo_matches"])

            started = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                valid = sum(pool.map(post, answers))
            elapsed = time.perf_counter() - started
            after = raw_ed25519_rate()
        finally:
            server.terminate()
            server.wait(timeout=30)
        reference = (before + after) / 2
        rate = len(answers) / elapsed
        ordered = sorted(latencies)
        print(f"recognition over HTTP ({threads} clients, {len(answers)} answers, {valid} valid with the "
              f"photo matching; eduledger serve in its own process): {rate:.0f}/s, "
              f"p50 {statistics.median(ordered) * 1000:.1f} ms, "
              f"p99 {ordered[int(len(ordered) * 0.99) - 1] * 1000:.1f} ms")
        print(f"  raw Ed25519 verify rate of this run: {before:.0f}/s before, {after:.0f}/s after; "
              f"ratio {rate / reference:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--verify", type=int, default=500, help="recognitions posted over HTTP")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--registry-only", action="store_true", help="the registry contract alone")
    parser.add_argument("--disk", action="store_true", help="the embedded chain on disk")
    parser.add_argument("--rpc", help="a JSON-RPC node instead of the embedded chain")
    parser.add_argument("--funder-key", help="a funded private key on the --rpc node")
    args = parser.parse_args()
    if not args.registry_only:
        end_to_end(args.count, args.verify, args.threads)
        return 0
    if args.rpc:
        if not args.funder_key:
            parser.error("--rpc needs --funder-key")
        print(f"JSON-RPC node {args.rpc}:")
        run(ChainClient.from_url(args.rpc), Account.from_key(args.funder_key), args.count)
        return 0
    funder: LocalAccount = Account.create()
    with tempfile.TemporaryDirectory() as tmp:
        chain = EmbeddedChain(Path(tmp) / "chain" if args.disk else None,
                              alloc={funder.address: 10**9 * ETHER})
        try:
            print(f"embedded chain ({'on disk' if args.disk else 'in memory'}):")
            run(embedded_client(chain), funder, args.count)
        finally:
            chain.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
