"""The chain-event indexer: an SQL copy of every contract event, and projections of it."""

from ledger.indexer.indexer import Indexer, Projection
from ledger.indexer.projections import IndexedLeafStatus, project_leaf_status

__all__ = ["IndexedLeafStatus", "Indexer", "Projection", "project_leaf_status"]
