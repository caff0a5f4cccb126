"""A chain client that works the same on the embedded chain, anvil and Besu.

Transactions are signed here with the member's own key (never an unlocked node
account), carry explicit gas and fees, and take nonces from a local counter that is
re-read from the node when the node disagrees, so restarts and other processes using
the same account do not wedge it. Every rejection becomes `ContractReverted` with the
contract's named reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, FilterParams, LogReceipt

from ledger.errors import ChainError, ChainUnavailable, ContractReverted

ERROR_SELECTOR = bytes.fromhex("08c379a0")
GAS_MARGIN = 1.25
GAS_PAD = 10_000


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    status: int
    logs: list[Any]
    contract_address: str | None = None


def decode_revert(data: Any, message: str = "") -> str:
    """The revert reason from revert data (Error(string)), else from the message."""
    raw = b""
    if isinstance(data, str) and data.startswith("0x"):
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            raw = b""
    elif isinstance(data, bytes | bytearray):
        raw = bytes(data)
    if raw[:4] == ERROR_SELECTOR:
        try:
            return str(abi_decode(["string"], raw[4:])[0])
        except Exception:  # noqa: BLE001 - malformed reason data: fall back to the message
            pass
    text = message or "execution reverted"
    for prefix in ("execution reverted: ", "execution reverted:", "Execution reverted: "):
        if prefix in text:
            return text.split(prefix, 1)[1].strip() or "execution reverted"
    return text


def _reverted(exc: Exception, function: str) -> ContractReverted:
    data = getattr(exc, "data", None)
    message = getattr(exc, "message", None) or (str(exc.args[0]) if exc.args else str(exc))
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    return ContractReverted(decode_revert(data, str(message)), function=function)


class ChainClient:
    def __init__(self, w3: Web3, *, receipt_timeout: float = 60.0) -> None:
        self.w3 = w3
        self.receipt_timeout = receipt_timeout
        self._nonces: dict[str, int] = {}
        self._nonce_lock = threading.Lock()
        try:
            self.chain_id = int(w3.eth.chain_id)
        except Exception as exc:  # noqa: BLE001 - any failure here means: no node
            raise ChainUnavailable(f"the chain node does not answer: {_short(exc)}") from None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ChainClient:
        if not url.startswith(("http://", "https://")):
            raise ChainUnavailable(f"not an HTTP JSON-RPC URL: {url!r}")
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
        try:
            return cls(w3, **kwargs)
        except ChainUnavailable:
            raise ChainUnavailable(f"the chain node at {url} does not answer") from None

    # -- reads -------------------------------------------------------------------

    def block_number(self) -> int:
        return int(self._guard(lambda: self.w3.eth.block_number))

    def block(self, block: BlockIdentifier = "latest") -> Any:
        return self._guard(lambda: self.w3.eth.get_block(block))

    def receipt(self, tx_hash: str) -> Any:
        """The receipt of a mined transaction; web3's TransactionNotFound if there is none."""
        return self._guard(lambda: self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]

    def get_logs(self, address: str | Sequence[str], from_block: int, to_block: BlockIdentifier = "latest",
                 topics: list[str | None] | None = None) -> list[LogReceipt]:
        """The logs of the contract(s) at `address` in the block range, oldest first."""
        query: dict[str, Any] = {"address": address if isinstance(address, str) else list(address),
                                 "fromBlock": from_block, "toBlock": to_block}
        if topics is not None:
            query["topics"] = topics
        filter_params = cast(FilterParams, query)
        return list(self._guard(lambda: self.w3.eth.get_logs(filter_params)))

    def balance(self, address: str) -> int:
        return int(self._guard(lambda: self.w3.eth.get_balance(Web3.to_checksum_address(address))))

    def contract(self, address: str, abi: list[Any]) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def call(self, contract: Contract, function: str, *args: Any,
             block: BlockIdentifier = "latest") -> Any:
        fn = contract.functions[function](*args)
        try:
            return self._guard(lambda: fn.call(block_identifier=block))
        except (ContractLogicError, Web3RPCError) as exc:
            raise _reverted(exc, function) from None

    # -- writes ------------------------------------------------------------------

    def transact(self, signer: LocalAccount, contract: Contract, function: str, *args: Any,
                 gas: int | None = None, value: int = 0) -> TxResult:
        fn = contract.functions[function](*args)
        tx = {"from": signer.address, "to": contract.address, "value": value,
              "data": fn._encode_transaction_data()}
        return self.send(signer, tx, gas=gas, label=function)

    def deploy(self, signer: LocalAccount, abi: list[Any], bytecode: str | bytes,
               *args: Any, gas: int | None = None) -> TxResult:
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        data = factory.constructor(*args).data_in_transaction
        result = self.send(signer, {"from": signer.address, "data": data, "value": 0},
                           gas=gas, label="constructor")
        if not result.contract_address:
            raise ChainError("deployment mined without a contract address")
        return result

    def transfer(self, signer: LocalAccount, to: str, value: int) -> TxResult:
        return self.send(signer, {"from": signer.address, "to": Web3.to_checksum_address(to),
                                  "value": value, "data": b""}, gas=21_000, label="transfer")

    def send(self, signer: LocalAccount, tx: dict[str, Any], *, gas: int | None = None,
             label: str = "transaction") -> TxResult:
        if gas is None:
            # Estimating first also means a rejected call never reaches a block.
            try:
                estimate = self._guard(lambda: self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
            except (ContractLogicError, Web3RPCError) as exc:
                raise _reverted(exc, label) from None
            gas = int(estimate * GAS_MARGIN) + GAS_PAD
        full: dict[str, Any] = {**tx, "gas": gas, "chainId": self.chain_id, **self._fees()}
        full.pop("from", None)
        for attempt in range(2):
            full["nonce"] = self._next_nonce(signer.address)
            raw = signer.sign_transaction(full).raw_transaction
            try:
                tx_hash = self._guard(partial(self.w3.eth.send_raw_transaction, raw))
                break
            except ChainUnavailable:
                self._forget_nonce(signer.address)  # it may not have been sent: ask the node again
                raise
            except (Web3RPCError, ValueError) as exc:
                text = _short(exc).lower()
                self._forget_nonce(signer.address)
                if attempt == 0 and ("nonce" in text or "already known" in text):
                    continue
                raise ChainError(f"the node refused the {label}: {_short(exc)}") from None
        return self._receipt(HexBytes(tx_hash), tx, label)

    # -- internals ---------------------------------------------------------------

    def _receipt(self, tx_hash: HexBytes, tx: dict[str, Any], label: str) -> TxResult:
        try:
            r = self._guard(lambda: self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=0.05))
        except TimeExhausted:
            raise ChainError(f"{label} {tx_hash.to_0x_hex()} was not mined in time") from None
        result = TxResult(
            tx_hash=HexBytes(r["transactionHash"]).to_0x_hex(),
            block_number=int(r["blockNumber"]),
            block_hash=HexBytes(r["blockHash"]).to_0x_hex(),
            gas_used=int(r["gasUsed"]),
            status=int(r["status"]),
            logs=list(r["logs"]),
            contract_address=r.get("contractAddress"),
        )
        if result.status != 1:
            # Replay at the block to learn the reason the estimate did not predict.
            try:
                self.w3.eth.call({**tx, "gas": r["gasUsed"] + GAS_PAD}, r["blockNumber"] - 1)  # type: ignore[typeddict-item]
                reason = "out of gas or reverted without a reason"
            except (ContractLogicError, Web3RPCError) as exc:
                reason = _reverted(exc, label).reason
            raise ContractReverted(reason, function=label, tx_hash=result.tx_hash)
        return result

    def _fees(self) -> dict[str, int]:
        latest = self.block("latest")
        base = latest.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self._guard(lambda: self.w3.eth.gas_price))}
        try:
            tip = int(self._guard(lambda: self.w3.eth.max_priority_fee))
        except ChainError:
            tip = 0
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    def _next_nonce(self, address: str) -> int:
        with self._nonce_lock:
            if address not in self._nonces:
                self._nonces[address] = int(self._guard(
                    lambda: self.w3.eth.get_transaction_count(address, "pending")))  # type: ignore[arg-type]
            nonce = self._nonces[address]
            self._nonces[address] = nonce + 1
            return nonce

    def _forget_nonce(self, address: str) -> None:
        with self._nonce_lock:
            self._nonces.pop(address, None)

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (ContractLogicError, Web3RPCError, TimeExhausted, ValueError):
            raise
        except OSError as exc:
            raise ChainUnavailable(f"the chain node does not answer: {_short(exc)}") from None
        except Exception as exc:
            if type(exc).__module__.startswith(("requests", "urllib3", "aiohttp")):
                raise ChainUnavailable(f"the chain node does not answer: {_short(exc)}") from None
            raise


def _short(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    if isinstance(exc.args[0] if exc.args else None, dict):
        text = str(exc.args[0].get("message", text))
    return text.splitlines()[0][:300]
