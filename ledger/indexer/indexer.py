"""Copies every event of the eduledger contracts into SQL.

Each pass reads logs from the block after the cursor up to the head, in chunks, and
commits the events of a chunk together with the new cursor in one transaction: a crash
leaves either both or neither, and the unique (chain, tx, log index) key makes a repeat
harmless. Queries and audit trails read this copy and never scan the chain.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from web3.contract import Contract

from ledger.chain import ChainAPI
from ledger.indexer.models import ChainEvent, IndexerCursor
from ledger.store import session_scope
from ledger.store.columns import utcnow

log = logging.getLogger("eduledger.indexer")

CHUNK_BLOCKS = 2_000

# Builds a derived table from newly indexed events, inside the indexing transaction.
Projection = Callable[[Session, list[ChainEvent]], None]
REORG_DEPTH = 64


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class Indexer:
    def __init__(self, engine: Engine, client: ChainAPI, contracts: Iterable[Contract], *,
                 name: str = "contracts", from_block: int = 0,
                 projections: Iterable[Projection] = ()) -> None:
        self.engine = engine
        self.client = client
        self.name = name
        self.from_block = from_block
        self.contracts = list(contracts)
        self.addresses = [c.address for c in self.contracts]
        # topic0 → (contract, event name), to decode any log of ours.
        self._events: dict[bytes, tuple[Contract, str]] = {}
        for contract in self.contracts:
            for abi in contract.abi:
                if abi.get("type") == "event":
                    abi = cast(ABIEvent, abi)
                    self._events[bytes(event_abi_to_log_topic(abi))] = (contract, abi["name"])
        self.projections = list(projections)
        self._lock = threading.Lock()

    def cursor(self) -> IndexerCursor | None:
        with session_scope(self.engine) as session:
            return session.get(IndexerCursor, self.name)

    def run_once(self) -> int:
        """Index everything up to the current head; returns how many events were stored."""
        with self._lock:
            head = self.client.block_number()
            start = self._start_block()
            stored = 0
            while start <= head:
                end = min(start + CHUNK_BLOCKS - 1, head)
                try:
                    stored += self._index_range(start, end)
                except IntegrityError:
                    # Another process (a CLI next to the serving node) indexed this range
                    # first; nothing was written here, and the next pass starts from its cursor.
                    log.info("indexer %s: blocks %s-%s already indexed elsewhere", self.name, start, end)
                    break
                start = end + 1
            return stored

    def _start_block(self) -> int:
        cursor = self.cursor()
        if cursor is None:
            return self.from_block
        block = self.client.block(cursor.last_block)
        if HexBytes(block["hash"]).to_0x_hex() == cursor.last_block_hash:
            return cursor.last_block + 1
        # The chain changed under us (only possible on a forking test node): re-read the tail.
        rewind = max(self.from_block, cursor.last_block - REORG_DEPTH)
        log.warning("indexer %s: block %s changed; re-indexing from %s",
                    self.name, cursor.last_block, rewind)
        with session_scope(self.engine) as session:
            session.execute(delete(ChainEvent).where(
                ChainEvent.chain_id == self.client.chain_id,  # type: ignore[arg-type]
                ChainEvent.block_number >= rewind))  # type: ignore[arg-type]
        return rewind

    def _index_range(self, start: int, end: int) -> int:
        logs = self.client.get_logs(self.addresses, start, end)
        times: dict[int, datetime] = {}
        rows = []
        for entry in logs:
            known = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
            if known is None:
                continue
            contract, event_name = known
            decoded = contract.events[event_name]().process_log(entry)
            number = int(entry["blockNumber"])
            if number not in times:
                times[number] = datetime.fromtimestamp(int(self.client.block(number)["timestamp"]), UTC)
            rows.append(ChainEvent(
                chain_id=self.client.chain_id,
                contract=str(entry["address"]).lower(),
                event=event_name,
                block_number=number,
                block_hash=HexBytes(entry["blockHash"]).to_0x_hex(),
                block_time=times[number],
                tx_hash=HexBytes(entry["transactionHash"]).to_0x_hex(),
                log_index=int(entry["logIndex"]),
                args_json=json.dumps(_jsonable(dict(decoded["args"])), sort_keys=True),
            ))
        last = self.client.block(end)
        with session_scope(self.engine) as session:
            session.add_all(rows)
            # Derived tables change in the same transaction as the events they come from.
            for project in self.projections:
                project(session, rows)
            cursor = session.get(IndexerCursor, self.name) or IndexerCursor(
                name=self.name, chain_id=self.client.chain_id, last_block=end, last_block_hash="")
            cursor.last_block = end
            cursor.last_block_hash = HexBytes(last["hash"]).to_0x_hex()
            cursor.updated_at = utcnow()
            session.add(cursor)
        return len(rows)

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - keep indexing; the next pass retries
                log.exception("indexer %s: pass failed", self.name)
            stop.wait(interval)
