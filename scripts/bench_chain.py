#!/usr/bin/env python3
"""Chain benchmark: anchoring throughput per backend, gas, and reopening a long chain.

Prints its figures; asserts nothing. Run: .venv/bin/python scripts/bench_chain.py
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402

from ledger.chain import ChainClient, EmbeddedChain, embedded_client  # noqa: E402
from ledger.contracts.bindings import (  # noqa: E402
    AnchorKind,
    AnchorRegistryContract,
    ConsortiumContract,
    ProposalAction,
    Role,
)
from ledger.merkle import MerkleTree  # noqa: E402

ETHER = 10**18
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def setup(client: ChainClient, funder):  # type: ignore[no-untyped-def]
    """A bureau (the funder) and one admitted school; returns the school and the registry."""
    school = Account.create()
    client.transfer(funder, school.address, 100 * ETHER)
    consortium = ConsortiumContract.deploy(client, funder, "Bench Bureau", [funder.address], 1)
    consortium.propose(funder, ProposalAction.ADMIT, name="Bench School", role=Role.SCHOOL,
                       account=school.address)
    registry = AnchorRegistryContract.deploy(client, funder, consortium)
    return school, registry


def anchor_rate(client: ChainClient, funder, count: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    school, registry = setup(client, funder)
    started = time.perf_counter()
    gas = 0
    for _ in range(count):
        result = registry.anchor(school, secrets.token_bytes(32), AnchorKind.CREDENTIAL, 100,
                                 b"\x00" * 32)
        gas = result.gas_used
    return count / (time.perf_counter() - started), gas


def gas_figures(client: ChainClient, funder) -> None:  # type: ignore[no-untyped-def]
    school, registry = setup(client, funder)
    for size in (1, 100, 10_000):
        tree = MerkleTree([secrets.token_bytes(32) for _ in range(size)])
        result = registry.anchor(school, tree.root, AnchorKind.CREDENTIAL, size, b"\x00" * 32)
        print(f"  gas of one anchor, batch of {size:>6}: {result.gas_used}")
        if size == 10_000:
            proof = tree.proof(0)
            status = registry.revoke(school, tree.leaves[0], tree.root, proof, 1)
            print(f"  gas of one status change (revoke, proof of {len(proof)} hashes): "
                  f"{status.gas_used}")


def reopen_time(blocks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain"
        chain = EmbeddedChain(path)
        started = time.perf_counter()
        step = 1000
        for _ in range(blocks // step):
            chain.tester.mine_blocks(step)
        build = time.perf_counter() - started
        chain.close()
        started = time.perf_counter()
        chain = EmbeddedChain(path)
        head = embedded_client(chain).block_number()
        opened = time.perf_counter() - started
        chain.close()
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        print(f"  built {head} blocks in {build:.1f} s ({head / build:.0f} blocks/s), "
              f"store {size:.1f} MiB")
        print(f"  reopen a chain of {head} blocks: {opened * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--anchors", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--no-anvil", action="store_true")
    args = parser.parse_args()

    funder = Account.create()
    alloc = {funder.address: 10**9 * ETHER}
    print(f"anchor transactions per second ({args.anchors} anchors each):")
    memory = EmbeddedChain(None, alloc=alloc)
    mem_rate, gas = anchor_rate(embedded_client(memory), funder, args.anchors)
    print(f"  embedded, in-memory store: {mem_rate:.0f} tx/s")
    with tempfile.TemporaryDirectory() as tmp:
        disk = EmbeddedChain(Path(tmp) / "chain", alloc=alloc)
        disk_rate, _ = anchor_rate(embedded_client(disk), funder, args.anchors)
        disk.close()
    print(f"  embedded, disk store:      {disk_rate:.0f} tx/s "
          f"(disk/memory = {disk_rate / mem_rate:.2f})")
    if not args.no_anvil:
        from tests.conftest_services import _stop, anvil_binary, start_anvil

        binary = anvil_binary()
        if binary is None:
            print("  anvil: not installed (./scripts/test installs it into .tools/)")
        else:
            log = Path(tempfile.mkstemp(suffix=".log")[1])
            proc, url = start_anvil(binary, log)
            try:
                anvil_rate, _ = anchor_rate(ChainClient.from_url(url),
                                            Account.from_key(ANVIL_DEV_KEY), args.anchors)
                print(f"  anvil (HTTP JSON-RPC):     {anvil_rate:.0f} tx/s")
            finally:
                _stop(proc)
                os.unlink(log)
    print("gas (embedded chain):")
    gas_figures(embedded_client(memory), funder)
    print("reopening the disk store:")
    reopen_time(args.blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
