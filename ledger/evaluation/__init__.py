"""Comprehensive quality evaluation (综合素质评价): frameworks, records, the procedure, sealing."""

from ledger.evaluation.service import EvaluationService

__all__ = ["EvaluationService"]
