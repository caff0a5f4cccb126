"""Typed Python binding for IdentityRegistry.vy: education identity cards by opaque id.

The same conventions as ``ledger.contracts.bindings``: writes go through
``ChainClient.transact`` (estimated first, so a refused call never reaches a block) and
raise ``ContractReverted`` with the contract's named reason; reads take an optional
``block`` (what was true at block N: archive reads work on every backend); bytes32
values are accepted as 32 bytes or 0x-hex and returned as bytes.

The card's packed word (see the contract's docstring) is decoded by ``CardState.unpack``;
``card_states`` reads many cards' words in a few calls, for rosters of thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.chain.client import TxResult
from ledger.chain.interfaces import ChainAPI
from ledger.contracts.bindings import (
    ZERO32,
    BlockId,
    ConsortiumContract,
    _Binding,
    to_address,
    to_bytes32,
)
from ledger.errors import InvalidInput

__all__ = [
    "MAX_CARD_BATCH",
    "MAX_CARD_TIMESTAMP",
    "CardInfo",
    "CardKind",
    "CardSpec",
    "CardState",
    "CardStatus",
    "IdentityRegistryContract",
]

MAX_CARD_BATCH = 100  # MAX_BATCH in IdentityRegistry.vy
MAX_CARD_TIMESTAMP = 2**48 - 1  # validFrom / validUntil are 48 bits in the card word
MAX_REASON = 2**16 - 1

_MASK48 = 2**48 - 1
_MASK56 = 2**56 - 1
_MASK64 = 2**64 - 1
_CONTINUED_BIT = 1 << 248


class CardKind(IntEnum):
    STUDENT = 1
    TEACHER = 2
    GRADUATE = 3


class CardStatus(IntEnum):
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3  # final
    ENDED = 4  # final

    @property
    def is_final(self) -> bool:
        return self in (CardStatus.REVOKED, CardStatus.ENDED)


def _check_int(value: int, limit: int, what: str) -> int:
    number = int(value)
    if not 0 <= number <= limit:
        raise InvalidInput(f"{what} must be between 0 and {limit}, got {value}")
    return number


def _check_window(valid_from: int, valid_until: int | None) -> tuple[int, int]:
    start = _check_int(valid_from, MAX_CARD_TIMESTAMP, "valid_from")
    end = 0 if valid_until is None else _check_int(valid_until, MAX_CARD_TIMESTAMP, "valid_until")
    if end != 0 and end <= start:
        raise InvalidInput(f"valid_until ({end}) must be after valid_from ({start})",
                           code="bad_validity")
    return start, end


def _opt32(value: bytes | str | None, what: str) -> bytes:
    return ZERO32 if value is None else to_bytes32(value, what)


def _none_if_zero(value: bytes) -> bytes | None:
    raw = bytes(value)
    return None if raw == ZERO32 else raw


# --- value objects ----------------------------------------------------------------


@dataclass(frozen=True)
class CardState:
    """A card's packed word, decoded: everything but the commitments."""

    issuer: int  # member id of the issuing member
    kind: CardKind
    status: CardStatus
    reason: int  # of the last status change; 0 at issuance
    valid_from: int  # unix seconds; 0 = open
    valid_until: int | None  # unix seconds, exclusive; None = open
    changed_block: int  # the block of the last change to the card
    continued: bool  # a later card continues this one (graduation, a move)

    @classmethod
    def unpack(cls, word: int) -> CardState | None:
        """None for 0 (a card never issued)."""
        if word == 0:
            return None
        until = (word >> 144) & _MASK48
        return CardState(issuer=word & _MASK64, kind=CardKind((word >> 64) & 0xFF),
                         status=CardStatus((word >> 72) & 0xFF), reason=(word >> 80) & 0xFFFF,
                         valid_from=(word >> 96) & _MASK48, valid_until=until or None,
                         changed_block=(word >> 192) & _MASK56,
                         continued=bool(word & _CONTINUED_BIT))

    def pack(self) -> int:
        """The word as the contract stores it (the inverse of `unpack`)."""
        start, end = _check_window(self.valid_from, self.valid_until)
        return (_check_int(self.issuer, _MASK64, "issuer")
                | (int(CardKind(self.kind)) << 64)
                | (int(CardStatus(self.status)) << 72)
                | (_check_int(self.reason, MAX_REASON, "reason") << 80)
                | (start << 96) | (end << 144)
                | (_check_int(self.changed_block, _MASK56, "changed_block") << 192)
                | (_CONTINUED_BIT if self.continued else 0))

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    def in_window(self, timestamp: int) -> bool:
        """`timestamp` (unix seconds) lies in the validity window."""
        return self.valid_from <= timestamp and (self.valid_until is None
                                                 or timestamp < self.valid_until)

    def valid_at(self, timestamp: int) -> bool:
        """Active and in its window at `timestamp`: read the card at block N and pass N's
        timestamp to learn whether it was valid then (`IdentityRegistryContract.valid_at_block`)."""
        return self.status is CardStatus.ACTIVE and self.in_window(timestamp)


@dataclass(frozen=True)
class CardInfo(CardState):
    """Every field of a card."""

    card_id: bytes
    holder_key: bytes | None  # commitment to the holder's current key; None until bound
    portrait: bytes | None  # salted portrait commitment; None = none recorded
    predecessor: bytes | None  # the card this one continues

    @property
    def state(self) -> CardState:
        return CardState(self.issuer, self.kind, self.status, self.reason, self.valid_from,
                         self.valid_until, self.changed_block, self.continued)


@dataclass(frozen=True)
class CardSpec:
    """One card to issue (an `issue_batch` row)."""

    card_id: bytes | str
    kind: CardKind | int
    portrait: bytes | str | None = None
    predecessor: bytes | str | None = None
    valid_from: int = 0
    valid_until: int | None = None

    def abi(self) -> tuple[bytes, int, bytes, bytes, int, int]:
        """The contract's CardSpec tuple, checked here so that a bad row never costs a call."""
        card_id = to_bytes32(self.card_id, "card id")
        if card_id == ZERO32:
            raise InvalidInput("a card id must not be zero", code="zero_card_id")
        try:
            kind = CardKind(int(self.kind))
        except ValueError:
            raise InvalidInput(f"not a card kind: {self.kind!r}", code="invalid_kind") from None
        start, end = _check_window(self.valid_from, self.valid_until)
        return (card_id, int(kind), _opt32(self.portrait, "portrait"),
                _opt32(self.predecessor, "predecessor"), start, end)


# --- the binding ------------------------------------------------------------------


class IdentityRegistryContract(_Binding):
    NAME = "IdentityRegistry"

    @classmethod
    def deploy(cls, client: ChainAPI, signer: LocalAccount,
               consortium: str | ConsortiumContract) -> IdentityRegistryContract:
        target = consortium.address if isinstance(consortium, ConsortiumContract) else consortium
        address, tx = cls._deploy_contract(client, signer, to_address(target, "consortium"))
        return cls(client, address, tx)

    @classmethod
    def at(cls, client: ChainAPI, address: str) -> IdentityRegistryContract:
        return cls(client, address)

    def consortium_address(self) -> str:
        return Web3.to_checksum_address(self._call("CONSORTIUM"))

    def max_batch(self) -> int:
        return int(self._call("MAX_BATCH"))

    # -- issuance --

    def issue(self, signer: LocalAccount, card_id: bytes | str, kind: CardKind | int, *,
              portrait: bytes | str | None = None, predecessor: bytes | str | None = None,
              valid_from: int = 0, valid_until: int | None = None,
              gas: int | None = None) -> TxResult:
        """Issue one card, active from this block, with no holder key yet."""
        spec = CardSpec(card_id, kind, portrait, predecessor, valid_from, valid_until)
        return self._send(signer, "issue", *spec.abi(), gas=gas)

    def issue_batch(self, signer: LocalAccount, cards: Sequence[CardSpec], *,
                    gas: int | None = None) -> TxResult:
        """Issue up to MAX_CARD_BATCH cards in one transaction; all or none."""
        if not cards:
            raise InvalidInput("a batch holds at least one card", code="empty_batch")
        if len(cards) > MAX_CARD_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_CARD_BATCH} cards, got {len(cards)}",
                               code="batch_too_large")
        return self._send(signer, "issueBatch", [c.abi() for c in cards], gas=gas)

    # -- changes --

    def set_status(self, signer: LocalAccount, card_id: bytes | str,
                   status: CardStatus | int, reason: int = 0) -> TxResult:
        return self._send(signer, "setStatus", to_bytes32(card_id, "card id"), int(status),
                          _check_int(reason, MAX_REASON, "reason"))

    def suspend(self, signer: LocalAccount, card_id: bytes | str, reason: int = 0) -> TxResult:
        return self.set_status(signer, card_id, CardStatus.SUSPENDED, reason)

    def reinstate(self, signer: LocalAccount, card_id: bytes | str, reason: int = 0) -> TxResult:
        return self.set_status(signer, card_id, CardStatus.ACTIVE, reason)

    def revoke(self, signer: LocalAccount, card_id: bytes | str, reason: int = 0) -> TxResult:
        return self.set_status(signer, card_id, CardStatus.REVOKED, reason)

    def end(self, signer: LocalAccount, card_id: bytes | str, reason: int = 0) -> TxResult:
        return self.set_status(signer, card_id, CardStatus.ENDED, reason)

    def bind_key(self, signer: LocalAccount, card_id: bytes | str,
                 commitment: bytes | str) -> TxResult:
        """Bind the holder's first key commitment (when the holder claims the card)."""
        return self._send(signer, "bindKey", to_bytes32(card_id, "card id"),
                          to_bytes32(commitment, "key commitment"))

    def rotate_key(self, signer: LocalAccount, card_id: bytes | str,
                   commitment: bytes | str) -> TxResult:
        """Replace the holder's key commitment from this block on."""
        return self._send(signer, "rotateKey", to_bytes32(card_id, "card id"),
                          to_bytes32(commitment, "key commitment"))

    def set_portrait(self, signer: LocalAccount, card_id: bytes | str,
                     portrait: bytes | str) -> TxResult:
        return self._send(signer, "setPortrait", to_bytes32(card_id, "card id"),
                          to_bytes32(portrait, "portrait"))

    def set_validity(self, signer: LocalAccount, card_id: bytes | str, valid_from: int = 0,
                     valid_until: int | None = None) -> TxResult:
        start, end = _check_window(valid_from, valid_until)
        return self._send(signer, "setValidity", to_bytes32(card_id, "card id"), start, end)

    # -- views --

    def card(self, card_id: bytes | str, *, block: BlockId = "latest") -> CardInfo | None:
        """Every field of the card; None for a card not issued (at `block`)."""
        raw = to_bytes32(card_id, "card id")
        (issuer, kind, status, reason, valid_from, valid_until, changed, continued, holder_key,
         portrait, predecessor) = self._call("card", raw, block=block)
        if int(status) == 0:
            return None
        return CardInfo(issuer=int(issuer), kind=CardKind(kind), status=CardStatus(status),
                        reason=int(reason), valid_from=int(valid_from),
                        valid_until=int(valid_until) or None, changed_block=int(changed),
                        continued=bool(continued), card_id=raw,
                        holder_key=_none_if_zero(holder_key), portrait=_none_if_zero(portrait),
                        predecessor=_none_if_zero(predecessor))

    def card_words(self, card_ids: Sequence[bytes | str], *,
                   block: BlockId = "latest") -> list[int]:
        """The packed words of any number of cards (0 for one not issued), MAX_CARD_BATCH
        per call, all read at the same block."""
        ids = [to_bytes32(c, "card id") for c in card_ids]
        if block == "latest" and len(ids) > MAX_CARD_BATCH:
            block = self.client.block_number()  # one consistent view across the calls
        words: list[int] = []
        for start in range(0, len(ids), MAX_CARD_BATCH):
            chunk = ids[start:start + MAX_CARD_BATCH]
            words.extend(int(w) for w in self._call("cardWords", chunk, block=block))
        return words

    def card_states(self, card_ids: Sequence[bytes | str], *,
                    block: BlockId = "latest") -> list[CardState | None]:
        """`CardState` (or None when not issued) of each card, in order."""
        return [CardState.unpack(w) for w in self.card_words(card_ids, block=block)]

    def holder_key_of(self, card_id: bytes | str, *, block: BlockId = "latest") -> bytes | None:
        return _none_if_zero(self._call("holderKeyOf", to_bytes32(card_id, "card id"),
                                        block=block))

    def valid_at_block(self, card_id: bytes | str, block_number: int) -> bool:
        """Whether the card was valid at block `block_number`: issued by then, active in
        the state of that block and in its window at that block's timestamp."""
        info = self.card(card_id, block=int(block_number))
        if info is None:
            return False
        timestamp = int(self.client.block(int(block_number))["timestamp"])
        return info.valid_at(timestamp)
