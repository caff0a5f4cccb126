"""What other packages may use of the learning record store.

- ``RecordProofs``: a statement's record file (statement, salt, inclusion proof) and the
  verification of one (what an archive export or the integrity audit asks of records).
- ``WaitingRecords``: anchor the statements waiting for a batch (the node's duties).
"""

from __future__ import annotations

from typing import Any, Protocol

from ledger.anchoring.models import AnchorBatch
from ledger.records.service import LrsCaller

__all__ = ["RecordProofs", "WaitingRecords"]


class RecordProofs(Protocol):
    def record_file(self, caller: LrsCaller, statement_id: str) -> dict[str, Any]: ...

    def verify(self, record: Any) -> dict[str, Any]: ...

    def audit(self) -> list[str]: ...


class WaitingRecords(Protocol):
    def anchor_due(self, *, force: bool = False) -> list[AnchorBatch]: ...

    def waiting(self) -> int: ...
