"""Derived tables kept by the indexer, for questions asked on every request."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger.contracts.bindings import LeafStatus, LeafStatusInfo
from ledger.indexer.models import ChainEvent, LeafStatusRow
from ledger.store import session_scope

if TYPE_CHECKING:
    from ledger.indexer.indexer import Indexer

ZERO32 = "0x" + "00" * 32


def project_leaf_status(session: Session, events: list[ChainEvent]) -> None:
    """The latest StatusChanged per (leaf, root); events arrive in chain order."""
    for event in events:
        if event.event != "StatusChanged":
            continue
        args = json.loads(event.args_json)
        superseded = args.get("supersededBy")
        session.merge(LeafStatusRow(
            leaf=args["leaf"], root=args["root"], status=int(args["status"]),
            reason=int(args["reason"]), block_number=event.block_number,
            superseded_by=None if superseded in (None, ZERO32) else superseded))


class IndexedLeafStatus:
    """Leaf status from the indexed copy, refreshed at most every `max_age` seconds.

    The projection holds only leaves whose status ever changed, so it is kept in memory and
    each refresh reads just the rows changed since the last one; a lookup is a dict access.
    A status change made through this node re-indexes at once (see `refresh`); changes made
    elsewhere on the network show up within `max_age`.

    Without an `indexer` the projection only reads what the node's indexer wrote (the
    verification worker processes). `generation` is a counter shared with them: the node
    bumps it whenever its refresh saw changed rows, and a reader that sees it move refreshes
    before answering, so a revocation through this node is visible to every process at once.
    """

    def __init__(self, engine: Engine, indexer: Indexer | None, *, max_age: float = 1.0,
                 generation: Any = None) -> None:
        self.engine = engine
        self.indexer = indexer
        self.max_age = max_age
        self.generation = generation  # a multiprocessing.RawValue("q") or None
        self._generation_seen = generation.value if generation is not None else 0
        self._checked = 0.0
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], LeafStatusRow] = {}
        self._seen_block = -1

    def refresh(self) -> None:
        with self._lock:
            if self.generation is not None:
                self._generation_seen = self.generation.value  # before reading: never miss a bump
            if self.indexer is not None:
                self.indexer.run_once()
            with session_scope(self.engine) as session:
                changed = session.exec(select(LeafStatusRow).where(
                    LeafStatusRow.block_number >= self._seen_block)).all()
            news = 0
            for row in changed:
                old = self._rows.get((row.leaf, row.root))
                if old is None or (old.status, old.block_number) != (row.status, row.block_number):
                    news += 1
                self._rows[(row.leaf, row.root)] = row
                self._seen_block = max(self._seen_block, row.block_number)
            self._checked = time.monotonic()
            if news and self.indexer is not None and self.generation is not None:
                self.generation.value += 1  # the only writer: this node, under self._lock
                self._generation_seen = self.generation.value

    def status_of(self, leaf: bytes, root: bytes) -> LeafStatusInfo:
        """``LeafStatusSource``: the indexed status, refreshed as the class says."""
        if time.monotonic() - self._checked > self.max_age or (
                self.generation is not None and self.generation.value != self._generation_seen):
            self.refresh()
        row = self._rows.get(("0x" + leaf.hex(), "0x" + root.hex()))
        if row is None:
            return LeafStatusInfo(leaf, root, LeafStatus.VALID, 0, 0, None)
        return LeafStatusInfo(leaf, root, LeafStatus(row.status), row.reason, row.block_number,
                              bytes.fromhex(row.superseded_by[2:]) if row.superseded_by else None)
