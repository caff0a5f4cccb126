"""Anchoring batches of salted leaf hashes under Merkle roots, durably and exactly once."""

from ledger.anchoring.service import AnchoringService, AnchorProof, parse_kind

__all__ = ["AnchorProof", "AnchoringService", "parse_kind"]
