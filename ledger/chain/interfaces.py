"""The seam between the chain and everything that uses it.

``ChainAPI`` is what a capability may ask of a chain node: reads, logs, contract calls
and signed transactions. ``ledger.chain.ChainClient`` implements it over any web3
provider (the embedded py-evm node in-process, its ``/rpc``, anvil, Besu); every failure
to reach the node is ``ChainUnavailable`` and every rejection ``ContractReverted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import BlockData, BlockIdentifier, LogReceipt, TxReceipt

from ledger.chain.client import TxResult

__all__ = ["ChainAPI"]


class ChainAPI(Protocol):
    @property
    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def block(self, block: BlockIdentifier = "latest") -> BlockData: ...

    def receipt(self, tx_hash: str) -> TxReceipt:
        """The receipt of a mined transaction; web3's TransactionNotFound if there is none."""
        ...

    def get_logs(self, address: str | Sequence[str], from_block: int, to_block: BlockIdentifier = "latest",
                 topics: list[str | None] | None = None) -> list[LogReceipt]: ...

    def balance(self, address: str) -> int: ...

    def contract(self, address: str, abi: list[Any]) -> Contract: ...

    def call(self, contract: Contract, function: str, *args: Any,
             block: BlockIdentifier = "latest") -> Any: ...

    def transact(self, signer: LocalAccount, contract: Contract, function: str, *args: Any,
                 gas: int | None = None, value: int = 0) -> TxResult: ...

    def deploy(self, signer: LocalAccount, abi: list[Any], bytecode: str | bytes,
               *args: Any, gas: int | None = None) -> TxResult: ...

    def transfer(self, signer: LocalAccount, to: str, value: int) -> TxResult: ...
