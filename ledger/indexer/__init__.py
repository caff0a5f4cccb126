"""The chain-event indexer: an SQL copy of every contract event."""

from ledger.indexer.indexer import Indexer

__all__ = ["Indexer"]
