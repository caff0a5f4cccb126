"""Standard Ethereum JSON-RPC over the embedded chain.

The same dispatcher serves `POST /rpc` for other processes and, through
`EmbeddedProvider`, web3 in this process, so both paths run the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_tester.exceptions import (
    BlockNotFound,
    FilterNotFound,
    TransactionFailed,
    TransactionNotFound,
    ValidationError,
)
from eth_utils import to_checksum_address
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from ledger.chain.embedded import EmbeddedChain

CLIENT_VERSION = "eduledger-embedded/0.1 (py-evm)"
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)

_KEY_OVERRIDES = {"coinbase": "miner"}
_DROP = {"state_root_receipt"}


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _camel(key: str) -> str:
    if key in _KEY_OVERRIDES:
        return _KEY_OVERRIDES[key]
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_rpc(value: Any, key: str = "") -> Any:
    """eth-tester's Python values → JSON-RPC's hex strings and camelCase keys."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if key == "logs_bloom":
            return "0x" + value.to_bytes(256, "big").hex()
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {_camel(k): to_rpc(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_rpc(v, key) for v in value]
    return value


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise RpcError(-32602, f"invalid params: {name} must be a hex quantity")


def _block_id(tag: Any) -> Any:
    if tag in (None, "latest", "safe", "finalized", "pending"):
        return "latest"
    if tag == "earliest":
        return "earliest"
    if isinstance(tag, dict):  # EIP-1898
        if "blockHash" in tag:
            return tag["blockHash"]
        return _block_id(tag.get("blockNumber"))
    return _quantity(tag, "block")


_TX_FIELDS = {
    "from": "from", "to": "to", "data": "data", "input": "data", "gas": "gas",
    "gasPrice": "gas_price", "value": "value", "maxFeePerGas": "max_fee_per_gas",
    "maxPriorityFeePerGas": "max_priority_fee_per_gas", "nonce": "nonce",
}
_TX_QUANTITIES = {"gas", "gas_price", "value", "max_fee_per_gas", "max_priority_fee_per_gas", "nonce"}


def _call_tx(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RpcError(-32602, "invalid params: transaction object expected")
    tx: dict[str, Any] = {}
    for key, value in raw.items():
        name = _TX_FIELDS.get(key)
        if name is None or value is None:
            continue
        tx[name] = _quantity(value, key) if name in _TX_QUANTITIES else value
    tx.setdefault("from", "0x" + "00" * 20)
    tx["from"] = to_checksum_address(tx["from"])
    if "to" in tx:
        tx["to"] = to_checksum_address(tx["to"])
    # A call needs no fee; eth-tester would otherwise demand a funded sender.
    tx.pop("gas_price", None)
    tx.pop("max_fee_per_gas", None)
    tx.pop("max_priority_fee_per_gas", None)
    return tx


def _revert(exc: TransactionFailed) -> RpcError:
    reason = exc.args[0] if exc.args else "execution reverted"
    if isinstance(reason, bytes):
        message = "execution reverted"
        if reason[:4] == ERROR_SELECTOR:
            try:
                message += ": " + str(abi_decode(["string"], reason[4:])[0])
            except Exception:  # noqa: BLE001 - malformed reason: the data still goes back
                pass
        return RpcError(3, message, "0x" + reason.hex())
    reason = str(reason)
    data = "0x" + (ERROR_SELECTOR + abi_encode(["string"], [reason])).hex()
    return RpcError(3, f"execution reverted: {reason}", data)


class RpcDispatcher:
    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain
        t = chain.tester
        self._methods: dict[str, Callable[..., Any]] = {
            "web3_clientVersion": lambda: CLIENT_VERSION,
            "net_version": lambda: str(chain.chain_id),
            "net_listening": lambda: True,
            "net_peerCount": lambda: "0x0",
            "eth_chainId": lambda: hex(chain.chain_id),
            "eth_syncing": lambda: False,
            "eth_accounts": lambda: [],
            "eth_blockNumber": lambda: hex(t.get_block_by_number("latest")["number"]),
            "eth_gasPrice": self._gas_price,
            "eth_maxPriorityFeePerGas": lambda: "0x0",
            "eth_getBlockByNumber": self._block_by_number,
            "eth_getBlockByHash": self._block_by_hash,
            "eth_getTransactionByHash": self._transaction,
            "eth_getTransactionReceipt": self._receipt,
            "eth_getTransactionCount": lambda a, b="latest": hex(t.get_nonce(a, _block_id(b))),
            "eth_getBalance": lambda a, b="latest": hex(t.get_balance(a, _block_id(b))),
            "eth_getCode": lambda a, b="latest": t.get_code(a, _block_id(b)),
            "eth_getStorageAt": self._storage_at,
            "eth_call": lambda tx, b="latest", *_: t.call(_call_tx(tx), _block_id(b)),
            "eth_estimateGas": lambda tx, b="latest": hex(t.estimate_gas(_call_tx(tx), _block_id(b))),
            "eth_sendRawTransaction": t.send_raw_transaction,
            "eth_getLogs": self._logs,
        }

    # -- the JSON-RPC envelope -------------------------------------------------

    def handle(self, payload: Any) -> Any:
        if isinstance(payload, list):
            if not payload:
                return _error(None, RpcError(-32600, "invalid request: empty batch"))
            return [self.handle_one(item) for item in payload]
        return self.handle_one(payload)

    def handle_one(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, RpcError(-32600, "invalid request"))
        req_id = request.get("id")
        params = request.get("params") or []
        if not isinstance(params, list):
            return _error(req_id, RpcError(-32602, "invalid params: a list is expected"))
        try:
            result = self.call(request["method"], params)
        except RpcError as exc:
            return _error(req_id, exc)
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    def call(self, method: str, params: list[Any]) -> Any:
        fn = self._methods.get(method)
        if fn is None:
            raise RpcError(-32601, f"the method {method} does not exist/is not available")
        with self.chain.lock:
            try:
                return to_rpc(fn(*params))
            except TypeError as exc:
                raise RpcError(-32602, f"invalid params for {method}: {exc}") from None
            except TransactionFailed as exc:
                raise _revert(exc) from None
            except (BlockNotFound, TransactionNotFound, FilterNotFound):
                return None
            except ValidationError as exc:
                raise RpcError(-32000, str(exc)) from None
            except RpcError:
                raise
            except Exception as exc:  # noqa: BLE001 - a node answers errors, it does not crash
                raise RpcError(-32000, f"{type(exc).__name__}: {exc}") from None

    # -- methods ---------------------------------------------------------------

    def _gas_price(self) -> int:
        pending = self.chain.backend.chain.header  # type: ignore[attr-defined]
        return int(pending.base_fee_per_gas) + 10**9

    def _block_by_number(self, tag: Any, full: bool = False) -> Any:
        if tag == "pending":
            tag = "latest"
        return self.chain.tester.get_block_by_number(_block_id(tag), bool(full))

    def _block_by_hash(self, block_hash: str, full: bool = False) -> Any:
        return self.chain.tester.get_block_by_hash(block_hash, bool(full))

    def _transaction(self, tx_hash: str) -> Any:
        tx = dict(self.chain.tester.get_transaction_by_hash(tx_hash))
        tx["input"] = tx.pop("data", "0x")
        return tx

    def _receipt(self, tx_hash: str) -> Any:
        receipt = dict(self.chain.tester.get_transaction_receipt(tx_hash))
        receipt.pop("state_root", None)  # pre-Byzantium field; status replaces it
        receipt["logs"] = [_log(entry) for entry in receipt.get("logs", [])]
        receipt.setdefault("logs_bloom", 0)
        return receipt

    def _storage_at(self, address: str, slot: Any, block: Any = "latest") -> Any:
        return self.chain.tester.get_storage_at(address, _quantity(slot, "slot"), _block_id(block))

    def _logs(self, flt: Any) -> list[dict[str, Any]]:
        if not isinstance(flt, dict):
            raise RpcError(-32602, "invalid params: filter object expected")
        t = self.chain.tester
        head = t.get_block_by_number("latest")["number"]
        if "blockHash" in flt:
            number = t.get_block_by_hash(flt["blockHash"])["number"]
            lo = hi = number
        else:
            lo = _resolve(flt.get("fromBlock", "latest"), head)
            hi = _resolve(flt.get("toBlock", "latest"), head)
        address = flt.get("address")
        topics = flt.get("topics")
        filter_id = t.create_log_filter(from_block=lo, to_block=hi, address=address, topics=topics)
        try:
            return [_log(entry) for entry in t.get_only_filter_changes(filter_id)]
        finally:
            t.delete_filter(filter_id)


def _resolve(tag: Any, head: int) -> int:
    block = _block_id(tag)
    if block == "latest":
        return head
    if block == "earliest":
        return 0
    return int(block)


def _log(entry: dict[str, Any]) -> dict[str, Any]:
    log = {k: v for k, v in entry.items() if k != "type"}
    log["removed"] = False
    return log


def _error(req_id: Any, exc: RpcError) -> dict[str, Any]:
    err: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        err["data"] = exc.data
    return {"jsonrpc": "2.0", "id": req_id, "error": err}


class EmbeddedProvider(JSONBaseProvider):
    """A web3 provider that talks to the embedded chain without HTTP."""

    def __init__(self, dispatcher: RpcDispatcher) -> None:
        super().__init__()
        self.dispatcher = dispatcher

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return self.dispatcher.handle_one(  # type: ignore[return-value]
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params or [])}
        )

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True
