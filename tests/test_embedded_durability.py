"""A kill -9 at any moment loses nothing the embedded chain acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from eth_account import Account

from ledger.chain import EmbeddedChain, embedded_client
from ledger.errors import StoreLocked
from tests.chain_env import ETHER

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from eth_account import Account
    from ledger.chain import EmbeddedChain, embedded_client
    key, path = sys.argv[1], Path(sys.argv[2])
    account = Account.from_key(key)
    chain = EmbeddedChain(path, alloc={account.address: 10**24})
    client = embedded_client(chain)
    print("ready", flush=True)
    while True:
        result = client.transfer(account, "0x" + "55" * 20, 1)
        # Printed only once the client was told the transaction is in a block.
        print(result.tx_hash, result.block_number, flush=True)
    """
)


def run_and_kill(key: str, path: Path, after_lines: int) -> list[tuple[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, key, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    acknowledged: list[tuple[str, int]] = []
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        while len(acknowledged) < after_lines:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "writer died"
            tx_hash, block = line.split()
            acknowledged.append((tx_hash, int(block)))
        # Kill at an arbitrary point inside the next transaction.
        time.sleep(random.uniform(0, 0.02))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return acknowledged


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    key = Account.create().key.hex()
    path = tmp_path / "chain"
    genesis_hash = None
    total: list[tuple[str, int]] = []
    for round_ in range(4):
        total += run_and_kill(key, path, after_lines=random.randint(5, 25))
        chain = EmbeddedChain(path)
        try:
            client = embedded_client(chain)
            genesis = client.block(0)["hash"].to_0x_hex()
            genesis_hash = genesis_hash or genesis
            assert genesis == genesis_hash, f"genesis re-created in round {round_}"
            for tx_hash, block in total:
                receipt = client.w3.eth.get_transaction_receipt(tx_hash)
                assert receipt["blockNumber"] == block and receipt["status"] == 1
            assert client.block_number() >= total[-1][1]
        finally:
            chain.close()


def test_reopen_keeps_state_and_genesis(tmp_path: Path) -> None:
    funder = Account.create()
    path = tmp_path / "chain"
    chain = EmbeddedChain(path, alloc={funder.address: 10 * ETHER})
    client = embedded_client(chain)
    for _ in range(5):
        client.transfer(funder, "0x" + "66" * 20, 3)
    head, genesis = client.block_number(), client.block(0)["hash"]
    chain.close()
    # Reopening with another alloc must not re-create genesis.
    other = Account.create()
    chain = EmbeddedChain(path, alloc={other.address: ETHER})
    client = embedded_client(chain)
    assert client.block_number() == head and client.block(0)["hash"] == genesis
    assert client.w3.eth.get_balance(other.address) == 0
    assert client.w3.eth.get_balance("0x" + "66" * 20) == 15
    # The nonce continues from the chain, not from zero.
    client.transfer(funder, "0x" + "66" * 20, 3)
    chain.close()


def test_only_one_process_opens_the_store(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path / "chain")
    try:
        with pytest.raises(StoreLocked, match="open in another process"):
            EmbeddedChain(tmp_path / "chain")
    finally:
        chain.close()
