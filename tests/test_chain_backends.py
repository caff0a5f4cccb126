"""One chain suite, run against every backend (see CHAIN_BACKENDS in conftest)."""

from __future__ import annotations

import time
from functools import cache

import pytest
import vyper
from web3 import Web3

from ledger.chain import ChainClient
from ledger.errors import ChainUnavailable, ContractReverted
from tests.chain_env import ETHER, ChainEnv

PROBE = """
# pragma version ~=0.4.3
event Poked:
    who: indexed(address)
    value: uint256

total: public(uint256)

@external
def poke(x: uint256) -> uint256:
    assert x != 0, "zero-not-allowed"
    self.total += x
    log Poked(who=msg.sender, value=x)
    return self.total
"""


@cache
def probe() -> tuple[list, str]:
    out = vyper.compile_code(PROBE, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def deploy_probe(env: ChainEnv, signer):  # type: ignore[no-untyped-def]
    abi, bytecode = probe()
    result = env.client.deploy(signer, abi, bytecode)
    return env.client.contract(result.contract_address, abi)


def test_chain_id_and_head_advance(any_chain: ChainEnv) -> None:
    client = any_chain.client
    assert client.chain_id == int(client.w3.eth.chain_id) > 0
    before = client.block_number()
    account = any_chain.new_account(1)
    assert client.block_number() > before
    assert client.w3.eth.get_balance(account.address) == ETHER


def test_transfer_receipt(any_chain: ChainEnv) -> None:
    a = any_chain.new_account(2)
    result = any_chain.client.transfer(a, "0x" + "42" * 20, 12345)
    assert result.status == 1 and result.gas_used == 21_000
    assert any_chain.client.w3.eth.get_balance(Web3.to_checksum_address("0x" + "42" * 20)) >= 12345
    block = any_chain.client.block(result.block_number)
    assert block["hash"].to_0x_hex() == result.block_hash


def test_contract_call_transact_and_logs(any_chain: ChainEnv) -> None:
    a = any_chain.new_account()
    c = deploy_probe(any_chain, a)
    result = any_chain.client.transact(a, c, "poke", 7)
    assert any_chain.client.call(c, "total") == 7
    events = c.events.Poked().process_receipt({"logs": result.logs})
    assert [(e.args.who, e.args.value) for e in events] == [(a.address, 7)]
    logs = any_chain.client.w3.eth.get_logs(
        {"fromBlock": result.block_number, "toBlock": result.block_number, "address": c.address}
    )
    assert len(logs) == 1 and logs[0]["transactionHash"].to_0x_hex() == result.tx_hash


def test_revert_reason_is_typed_and_changes_nothing(any_chain: ChainEnv) -> None:
    a = any_chain.new_account()
    c = deploy_probe(any_chain, a)
    head = any_chain.client.block_number()
    nonce = any_chain.client.w3.eth.get_transaction_count(a.address)
    with pytest.raises(ContractReverted) as err:
        any_chain.client.transact(a, c, "poke", 0)
    assert err.value.reason == "zero-not-allowed"
    assert err.value.function == "poke"
    assert any_chain.client.block_number() == head
    assert any_chain.client.w3.eth.get_transaction_count(a.address) == nonce
    with pytest.raises(ContractReverted) as err:
        any_chain.client.call(c, "poke", 0)
    assert err.value.reason == "zero-not-allowed"


def test_mined_revert_with_explicit_gas_is_typed(any_chain: ChainEnv) -> None:
    a = any_chain.new_account()
    c = deploy_probe(any_chain, a)
    with pytest.raises(ContractReverted) as err:
        any_chain.client.transact(a, c, "poke", 0, gas=100_000)
    assert err.value.reason == "zero-not-allowed"
    # The failed transaction used its nonce; the next one must still go through.
    any_chain.client.transact(a, c, "poke", 1)
    assert any_chain.client.call(c, "total") == 1


def test_nonces_stay_right_across_clients(any_chain: ChainEnv) -> None:
    a = any_chain.new_account()
    first = any_chain.client
    first.transfer(a, "0x" + "43" * 20, 1)
    # A second client (another process, or this one after a restart) on the same account.
    second = ChainClient(first.w3)
    second.transfer(a, "0x" + "43" * 20, 1)
    second.transfer(a, "0x" + "43" * 20, 1)
    # The first client's counter is now stale; it must resync, not fail.
    first.transfer(a, "0x" + "43" * 20, 1)
    assert first.w3.eth.get_transaction_count(a.address) == 4


def test_block_timestamps_follow_wall_clock(any_chain: ChainEnv) -> None:
    a = any_chain.new_account()
    stamps = []
    for _ in range(8):
        r = any_chain.client.transfer(a, "0x" + "44" * 20, 1)
        stamps.append(int(any_chain.client.block(r.block_number)["timestamp"]))
    now = time.time()
    assert stamps == sorted(stamps)
    # Eight blocks in well under a second must not push time ahead of the clock.
    assert stamps[-1] <= now + 2
    assert stamps[0] >= now - 60


def test_unreachable_node_is_a_clear_error() -> None:
    with pytest.raises(ChainUnavailable, match="does not answer"):
        ChainClient.from_url("http://127.0.0.1:9/rpc")
    with pytest.raises(ChainUnavailable, match="not an HTTP"):
        ChainClient.from_url("ftp://example/rpc")
