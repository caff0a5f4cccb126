"""The errors of the learning record store, each with the status xAPI 2.0 requires.

xAPI answers a statement that breaks its rules with 400 (not the 422 the rest of the API
gives for a malformed body), a statement id already stored with other content with 409,
a failed precondition with 412 and an oversized request with 413.
"""

from __future__ import annotations

from ledger.errors import Conflict, LedgerError, NotFound, PermissionDenied, TooLarge

__all__ = [
    "BadStatement",
    "LearnerNotOpaque",
    "NationalIdLearner",
    "PreconditionFailed",
    "RecordNotFound",
    "StatementConflict",
    "TooManyStatements",
    "VoidingRefused",
    "XapiUnauthenticated",
    "XapiVersionMissing",
]


class BadStatement(LedgerError):
    """A statement (or query parameter) that breaks a rule of xAPI 2.0; the message names
    the property and the rule."""

    code = "bad_statement"
    http_status = 400


class XapiVersionMissing(BadStatement):
    code = "xapi_version"


class LearnerNotOpaque(BadStatement):
    """The actor is not an opaque account (homePage + name) nor an identity card."""

    code = "learner_not_opaque"


class NationalIdLearner(BadStatement):
    """A learner named by what looks like a resident identity number (身份证号)."""

    code = "national_id_learner"


class VoidingRefused(BadStatement):
    code = "voiding_refused"


class StatementConflict(Conflict):
    code = "statement_conflict"


class PreconditionFailed(LedgerError):
    code = "precondition_failed"
    http_status = 412


class TooManyStatements(TooLarge):
    code = "too_many_statements"


class RecordNotFound(NotFound):
    code = "statement_not_found"


class XapiUnauthenticated(PermissionDenied):
    code = "unauthenticated"
    http_status = 401
