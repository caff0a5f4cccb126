"""Learning records: a standard xAPI 2.0 learning record store whose statements are anchored."""

from ledger.records.service import LrsCaller, RecordService, StatementPage, StatementQuery

__all__ = ["LrsCaller", "RecordService", "StatementPage", "StatementQuery"]
