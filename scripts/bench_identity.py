#!/usr/bin/env python3
"""Identity-card benchmark: issuing a roster of cards in batches, then reading it back.

Issues --count student cards (default 10,000) through IdentityRegistry.issueBatch, 100 per
transaction, on the embedded chain (in memory, or on disk with --disk) or on any JSON-RPC
node (--rpc URL --funder-key KEY, e.g. anvil); then graduates the first batch (cards with
a predecessor) and reads every card's state back with card_states. Prints time and gas;
asserts nothing. Run: .venv/bin/python scripts/bench_identity.py [--count 1000]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--disk", action="store_true", help="the embedded chain on disk")
    parser.add_argument("--rpc", help="a JSON-RPC node instead of the embedded chain")
    parser.add_argument("--funder-key", help="a funded private key on the --rpc node")
    args = parser.parse_args()
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
