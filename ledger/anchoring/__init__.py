"""Anchoring batches of salted leaf hashes under Merkle roots, durably and exactly once."""

from ledger.anchoring.interfaces import AnchoringAPI, BatchRecords, LeafStatusSource, ProofSource
from ledger.anchoring.proof import AnchorProof
from ledger.anchoring.service import AnchoringService, parse_kind

__all__ = ["AnchorProof", "AnchoringAPI", "AnchoringService", "BatchRecords", "LeafStatusSource",
           "ProofSource", "parse_kind"]
