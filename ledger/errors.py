"""One error hierarchy for the whole domain core.

Every error carries a stable machine `code` and a human `message`; the API maps the
class to an HTTP status (see `http_status`) and the CLI prints `message` on one line.
"""

from __future__ import annotations

import re
from typing import Any

_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` fit for one line of a terminal: control characters and line separators (an
    input's text quoted in a message may hold them) are written as their escapes."""
    return _LINE_BREAKING.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


class LedgerError(Exception):
    code = "ledger_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(LedgerError):
    code = "invalid_input"
    http_status = 422


class TooLarge(InvalidInput):
    """A request, file or roster over its size limit (HTTP 413)."""

    code = "too_large"
    http_status = 413


class NotFound(LedgerError):
    code = "not_found"
    http_status = 404


class PermissionDenied(LedgerError):
    code = "permission_denied"
    http_status = 403


class Conflict(LedgerError):
    code = "conflict"
    http_status = 409


class ConfigError(LedgerError):
    """A settings value, consortium file or data directory is wrong."""

    code = "config_error"
    http_status = 500


class KeystoreError(LedgerError):
    code = "keystore_error"
    http_status = 500


class ChainError(LedgerError):
    code = "chain_error"
    http_status = 502


class ChainUnavailable(ChainError):
    code = "chain_unavailable"
    http_status = 503


class ContractReverted(ChainError):
    """A call or transaction reverted; `reason` is the contract's named reason."""

    code = "contract_reverted"
    http_status = 409

    def __init__(self, reason: str, *, function: str = "", **details: Any) -> None:
        where = f" in {function}" if function else ""
        super().__init__(f"rejected by the contract{where}: {reason}", **details)
        self.reason = reason
        self.function = function
        self.details.setdefault("reason", reason)


class StoreLocked(ChainError):
    """Another process already has the embedded chain store open."""

    code = "store_locked"
    http_status = 503
