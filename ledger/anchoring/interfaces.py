"""The seams between anchoring and the capabilities that anchor (credentials, records,
evaluation data, resources, audit reports, the access log).

- ``AnchoringAPI``: accept a batch of leaves (durably, in SQL) and anchor its Merkle root;
  resume accepted batches after a restart; hand out each leaf's proof.
- ``BatchRecords``: the caller's own rows behind a batch's leaves. They are written in
  the very transaction that accepts the batch, so they exist exactly when the batch does,
  and removed again if the contract refuses the batch.
- ``ProofSource``: the proof of an anchored leaf (what a verifier asks of anchoring).
- ``LeafStatusSource``: a leaf's status under a root (valid, revoked, suspended,
  superseded), from the contract itself or from the indexed copy of its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlmodel import Session

from ledger.anchoring.models import AnchorBatch
from ledger.anchoring.proof import AnchorProof
from ledger.contracts.bindings import AnchorKind, LeafStatusInfo
from ledger.merkle import MerkleTree

__all__ = ["AnchoringAPI", "BatchRecords", "LeafStatusSource", "ProofSource"]


class BatchRecords(Protocol):
    def attach(self, session: Session, batch: AnchorBatch, tree: MerkleTree) -> None:
        """Add the rows behind the leaves, in the transaction that accepts `batch`."""
        ...

    def detach(self, session: Session, batch_id: str) -> None:
        """Remove what `attach` added (the contract refused the batch)."""
        ...


class ProofSource(Protocol):
    def proof_for(self, leaf: bytes | str) -> AnchorProof | None:
        """The proof of an anchored leaf; None if it is in no anchored batch."""
        ...


class AnchoringAPI(ProofSource, Protocol):
    # The block the registry was deployed in: no batch of it is older.
    from_block: int

    def accept(self, member_org: str, kind: str | int | AnchorKind, leaves: Sequence[bytes | str], *,
               metadata_hash: bytes | None = None, idempotency_key: str | None = None,
               request_hash: str | None = None, records: BatchRecords | None = None) -> AnchorBatch:
        """Validate, build the tree and commit the batch (status pending); nothing is on
        chain yet. A repeated `idempotency_key` returns the batch it first made, if
        `request_hash` (a digest of what was asked) is the same; otherwise 422
        ``idempotency_key_reused``."""
        ...

    def anchor(self, member_org: str, kind: str | int | AnchorKind, leaves: Sequence[bytes | str], *,
               metadata_hash: bytes | None = None, idempotency_key: str | None = None,
               request_hash: str | None = None, records: BatchRecords | None = None) -> AnchorBatch:
        """Accept a batch and anchor it now; a batch the contract refuses leaves no trace."""
        ...

    def process(self, batch_id: str) -> AnchorBatch:
        """Anchor an accepted batch (exactly once, however often it is asked)."""
        ...

    def resume(self) -> list[AnchorBatch]:
        """Anchor every accepted batch that is not anchored yet."""
        ...

    def get(self, batch_id: str) -> AnchorBatch: ...

    def proof_in(self, batch: AnchorBatch, leaf_hash: str, proof: list[str]) -> AnchorProof:
        """The proof of a leaf of `batch`, given its Merkle path."""
        ...


class LeafStatusSource(Protocol):
    def status_of(self, leaf: bytes, root: bytes) -> LeafStatusInfo: ...
