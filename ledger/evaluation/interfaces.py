"""The seams of evaluation: what it needs of others, and what others may use of it.

- ``StudentCards``: the identity cards a record or a teacher is named by (the identity
  service: the card's row, and its fields, which give a student's grade and class).
- ``Clock``: today's date and the time (Beijing dates decide a notice period's end).
- ``SealedRecords``: what the integrity audit asks of evaluation: for each sealed term record
  of an anchored batch, its stored leaf, the leaf its stored document hashes to, the leaf the
  live rows behind it hash to now, and whether the school's signature holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ledger.identity.models import IdentityCard

__all__ = ["Clock", "SealCheck", "SealedRecords", "StudentCards", "SystemClock"]


class StudentCards(Protocol):
    def get(self, card_id: str) -> IdentityCard: ...

    def fields_of(self, card: IdentityCard) -> dict[str, Any]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        from ledger.store.columns import utcnow

        return utcnow()


@dataclass(frozen=True)
class SealCheck:
    seal_id: str
    term: str
    student_card: str
    position: int
    leaf_hash: str  # as stored beside the seal
    document_leaf: str | None  # keccak256(salt || stored document); None: it does not open
    live_leaf: str | None  # keccak256(salt || the document rebuilt from the rows now); None: unreadable
    signature_valid: bool
    kid: str | None


class SealedRecords(Protocol):
    def seals_in_batch(self, batch_id: str) -> list[SealCheck]: ...
