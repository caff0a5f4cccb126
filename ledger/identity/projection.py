"""The registry's card states as the indexer sees them, for recognition.

Recognising a holder needs the card's state on chain: status, validity, issuer, the
holder-key and portrait commitments. Reading it runs the contract (an ``eth_call`` through
the EVM, about 10 ms on the embedded chain); an exam hall checks a candidate a second. The
registry logs every change it makes, with every field it changes, so the indexer keeps a
copy of each card's state in the same transaction as the events it comes from
(`project_card_state`), and `IndexedCards` answers from that copy.

The copy is never behind the chain it answers for: before each read `IndexedCards` asks the
chain for its head and runs the indexer up to it if the copy is older, so a suspension made
on any node counts from the block it is in, as a read of the contract would. A card the copy
does not hold (issued before the projection existed) is read from the contract; a missing row
never means "no such card".
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.contracts.bindings import to_bytes32
from ledger.contracts.identity import CardInfo, CardKind, CardState, CardStatus, IdentityRegistryContract
from ledger.identity.models import IdentityCardState
from ledger.store import session_scope

if TYPE_CHECKING:
    from ledger.indexer import Indexer
    from ledger.indexer.models import ChainEvent

ZERO32 = "0x" + "00" * 32


class CardSource(Protocol):
    """Where recognition reads a card's state on chain."""

    def card(self, card_id: bytes | str) -> CardInfo | None: ...


def _commitment(value: Any) -> str | None:
    text = str(value).lower()
    return None if text == ZERO32 else text


def _touch(row: IdentityCardState, block: int, **changes: Any) -> None:
    """Apply `changes` to the row's packed word, which records `block` as its last change."""
    state = CardState.unpack(int(row.word, 16))
    assert state is not None  # a row is only made by CardIssued
    row.word = f"0x{dataclasses.replace(state, **changes, changed_block=block).pack():064x}"


def project_card_state(session: Session, events: list[ChainEvent]) -> None:
    """Each card's state after these events (in chain order), as the contract holds it.
    Events of cards the copy does not hold are left to the chain (see the module)."""
    for event in events:
        if not event.event.startswith("Card"):
            continue
        args = json.loads(event.args_json)
        card_id = str(args["cardId"]).lower()
        block = event.block_number
        if event.event == "CardIssued":
            state = CardState(issuer=int(args["issuer"]), kind=CardKind(int(args["kind"])),
                              status=CardStatus.ACTIVE, reason=0, valid_from=int(args["validFrom"]),
                              valid_until=int(args["validUntil"]) or None, changed_block=block,
                              continued=False)
            predecessor = _commitment(args["predecessor"])
            session.merge(IdentityCardState(card_id=card_id, word=f"0x{state.pack():064x}",
                                            portrait=_commitment(args["portrait"]), predecessor=predecessor))
            before = session.get(IdentityCardState, predecessor) if predecessor else None
            if before is not None:  # the continued card: its status change came in its own event
                _touch(before, block, continued=True)
            continue
        row = session.get(IdentityCardState, card_id)
        if row is None:
            continue
        if event.event == "CardStatusChanged":
            _touch(row, block, status=CardStatus(int(args["status"])), reason=int(args["reason"]))
        elif event.event in ("CardKeyBound", "CardKeyRotated"):
            _touch(row, block)
            row.holder_key = _commitment(args["commitment"])
        elif event.event == "CardPortraitChanged":
            _touch(row, block)
            row.portrait = _commitment(args["portrait"])
        elif event.event == "CardValidityChanged":
            _touch(row, block, valid_from=int(args["validFrom"]), valid_until=int(args["validUntil"]) or None)
        session.add(row)


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value[2:])


class IndexedCards:
    """``CardSource``: the indexed copy, brought up to the chain's head before each read;
    without an indexer (a process that only reads), every read goes to the contract."""

    def __init__(self, engine: Engine, registry: IdentityRegistryContract, indexer: Indexer | None) -> None:
        self.engine = engine
        self.registry = registry
        self.indexer = indexer
        self._indexed_to = -1
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        assert self.indexer is not None
        head = self.registry.client.block_number()
        if head <= self._indexed_to:
            return
        with self._lock:
            if head > self._indexed_to:
                self.indexer.run_once()  # indexes up to the head it reads, at least `head`
                self._indexed_to = head

    def card(self, card_id: bytes | str) -> CardInfo | None:
        if self.indexer is None:
            return self.registry.card(card_id)
        key = "0x" + to_bytes32(card_id, "card id").hex()  # a malformed id: InvalidInput, as the contract's
        self._catch_up()
        with session_scope(self.engine) as session:
            row = session.get(IdentityCardState, key)
        if row is None:
            return self.registry.card(card_id)
        state = CardState.unpack(int(row.word, 16))
        assert state is not None
        return CardInfo(**dataclasses.asdict(state), card_id=bytes.fromhex(key[2:]),
                        holder_key=_bytes(row.holder_key),
                        portrait=_bytes(row.portrait), predecessor=_bytes(row.predecessor))
