"""The embedded chain: py-evm through eth-tester, on a persistent store.

One process owns the store and serves everyone else through standard JSON-RPC
(`ledger.chain.rpc`). Every transaction is mined into its own block at once, and the
block is committed to disk before the transaction hash is handed back, so whatever a
caller was told is on disk.

Block timestamps follow the wall clock: a new block takes the current time, or its
parent's when blocks come faster than one a second. The strict `child > parent` rule of
Ethereum would otherwise push timestamps ahead of the clock under load.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth import EVM_RECURSION_LIMIT
from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import MiningChain
from eth.consensus import ConsensusApplier, NoProofConsensus
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.estimators.gas import binary_gas_search_exact
from eth.exceptions import CanonicalHeadNotFound
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import (
    EVMSpoofTransaction,
    _get_vm_for_block_number,
    get_default_genesis_params,
)
from eth_tester.exceptions import TransactionFailed
from eth_utils import to_canonical_address, to_wei

from ledger.chain.kvstore import SqliteKV


def safe_recursion_limit() -> None:
    """Undo py_ecc's recursion limit of 100,000: at that depth the C stack overflows first,
    so a deeply nested JSON body could crash the process instead of raising. py-evm needs
    only its own EVM_RECURSION_LIMIT (1,024 call frames)."""
    sys.setrecursionlimit(EVM_RECURSION_LIMIT)


safe_recursion_limit()

DEFAULT_CHAIN_ID = 4477
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
GAS_LIMIT = 30_000_000


class WallClockPragueVM(PragueVM):
    @classmethod
    def validate_header(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        if parent_header is not None and header.timestamp == parent_header.timestamp:
            # Equal timestamps are allowed here (see module docstring); everything else
            # is checked as py-evm checks it.
            parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
        super().validate_header(header, parent_header)


def _wall_clock(parent: BlockHeaderAPI | None) -> int:
    now = int(time.time())
    return now if parent is None else max(now, parent.timestamp)


def _run(state: StateAPI, transaction: SignedTransactionAPI, gas: int) -> ComputationAPI:
    snapshot = state.snapshot()
    try:
        spoofed = SpoofTransaction(transaction, gas=gas, gas_price=0)
        return state.apply_transaction(spoofed)  # type: ignore[arg-type]
    finally:
        state.revert(snapshot)


def measured_gas_estimate(state: StateAPI, transaction: SignedTransactionAPI) -> int:
    """Gas that is enough for `transaction`, in two runs instead of a binary search.

    One run with the block's limit tells what the transaction consumes; a second run
    checks that this much suffices (with calls, the 63/64 rule can demand more than is
    consumed). Only when it does not, fall back to py-evm's exact search.
    """
    full = _run(state, transaction, state.gas_limit)
    if full.is_error:
        raise full.error
    consumed = state.gas_limit - full.get_gas_remaining()
    for candidate in (consumed, consumed * 64 // 63 + 2_300):
        if candidate <= state.gas_limit and not _run(state, transaction, candidate).is_error:
            return candidate
    return int(binary_gas_search_exact(state, transaction))


def _chain_class(chain_id: int) -> type[MiningChain]:
    vm_config = ConsensusApplier(NoProofConsensus).amend_vm_configuration(
        ((0, WallClockPragueVM),)
    )

    class EduledgerChain(MiningChain):
        vm_configuration = vm_config
        gas_estimator = staticmethod(measured_gas_estimate)

        def create_header_from_parent(self, parent_header, **header_params):  # type: ignore[no-untyped-def]
            header_params["gas_limit"] = parent_header.gas_limit
            header_params.setdefault("timestamp", _wall_clock(parent_header))
            return super().create_header_from_parent(parent_header, **header_params)

        def get_transaction_builder(self):  # type: ignore[no-untyped-def]
            return super().get_vm().get_transaction_builder()

    EduledgerChain.chain_id = chain_id
    return EduledgerChain


class _PersistentBackend(PyEVMBackend):  # type: ignore[misc]  # eth-tester ships no types
    """PyEVMBackend whose chain lives in a store that survives restarts."""

    def __init__(self, base_db: Any, kv: SqliteKV | None, chain_id: int,
                 alloc: Mapping[str, int]) -> None:
        self._base_db = base_db
        self._kv = kv
        self._chain_id = chain_id
        self._alloc = alloc
        super().__init__()

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        chain_class = _chain_class(self._chain_id)
        self.account_keys = ()
        try:
            self._base_db  # noqa: B018
            from eth.db.chain import ChainDB

            ChainDB(self._base_db).get_canonical_head()
        except CanonicalHeadNotFound:
            params = get_default_genesis_params({"gas_limit": GAS_LIMIT})
            state: dict[Any, Any] = {
                to_canonical_address(addr): {"balance": bal, "nonce": 0, "code": b"", "storage": {}}
                for addr, bal in self._alloc.items()
            }
            self.chain = chain_class.from_genesis(self._base_db, params, state)
            self._commit()
        else:
            self.chain = chain_class(self._base_db)
        self._refresh_timestamp()

    def _commit(self) -> None:
        if self._kv is not None:
            self._kv.commit()

    def _refresh_timestamp(self) -> None:
        chain: MiningChain = self.chain  # type: ignore[assignment]
        pending = chain.header
        if not chain.get_block().transactions:
            parent = chain.get_canonical_head()
            chain.header = pending.copy(timestamp=_wall_clock(parent))

    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        self._refresh_timestamp()
        tx_hash: bytes = super().send_raw_transaction(raw_transaction)
        return tx_hash

    def call(self, transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        tx = dict(transaction)
        tx.setdefault("gas", self._max_available_gas())
        unsigned = self._get_normalized_and_unsigned_evm_transaction(tx, block_number)
        spoofed = EVMSpoofTransaction(unsigned, from_=tx["from"])
        state = _get_vm_for_block_number(self.chain, block_number).state
        snapshot = state.snapshot()
        # An eth_call costs nothing (as on geth): let an unfunded caller pay for it in
        # this throwaway state, which is reverted below.
        upfront = unsigned.gas * unsigned.max_fee_per_gas + unsigned.value
        state.set_balance(tx["from"], state.get_balance(tx["from"]) + upfront)
        computation = state.apply_transaction(spoofed)
        state.revert(snapshot)
        if computation.is_error:
            error = computation.error
            data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
            if data[:4] == ERROR_SELECTOR:
                try:
                    raise TransactionFailed(abi_decode(["string"], data[4:])[0])
                except TransactionFailed:
                    raise
                except Exception:  # noqa: BLE001 - malformed reason: report the raw data
                    pass
            raise TransactionFailed(data or str(error))
        return bytes(computation.output)

    def estimate_gas(self, transaction: dict[str, Any], block_number: Any = "latest") -> int:
        try:
            return int(super().estimate_gas(transaction, block_number))
        except TransactionFailed as exc:
            # Keep the raw revert data (eth-tester passes on only its repr).
            cause = exc.__cause__ or exc.__context__
            if cause is not None and cause.args and isinstance(cause.args[0], bytes):
                raise TransactionFailed(cause.args[0]) from None
            raise

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> tuple[bytes, ...]:
        hashes = []
        for _ in range(num_blocks):
            self._refresh_timestamp()
            hashes.extend(super().mine_blocks(1) if coinbase is None else super().mine_blocks(1, coinbase))
            # Durable before anyone learns of the block.
            self._commit()
        return tuple(hashes)


class EmbeddedChain:
    """A py-evm chain in this process, on disk (`path`) or in memory (`path=None`).

    `alloc` funds accounts at genesis; it is used only when the store is new, so
    reopening never re-creates genesis.
    """

    def __init__(self, path: Path | None = None, *, chain_id: int = DEFAULT_CHAIN_ID,
                 alloc: Mapping[str, int] | None = None) -> None:
        self.path = path
        self._kv = SqliteKV(path) if path is not None else None
        base_db = AtomicDB(self._kv if self._kv is not None else MemoryDB())
        self.backend = _PersistentBackend(base_db, self._kv, chain_id, alloc or {})
        self.tester = EthereumTester(self.backend, auto_mine_transactions=True)
        self.chain_id = int(self.backend.chain.chain_id)
        # eth-tester is not thread-safe; the HTTP server and in-process callers share it.
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            if self._kv is not None:
                self._kv.close()
                self._kv = None

    @staticmethod
    def ether(amount: int) -> int:
        return int(to_wei(amount, "ether"))
