"""The `eduledger` command line: every command of the project, the wallet's included.

One module per group of commands (``node``: serve and network; ``credentials``: issue and
verify; ``audit``; ``identity``: an organisation's card commands over the API; ``wallet``;
``sign``/``verify-signature``; ``sso``), sharing ``common`` (the one-line parser, settings from the
arguments, the progress bar, the table printer). A new capability adds its module here and
registers it in ``build_parser``.

Errors print one line to stderr and exit non-zero; tracebacks never reach the user.
"""

from __future__ import annotations

import logging

from api.cli.audit import add_audit_commands
from api.cli.common import OneLineArgumentParser
from api.cli.credentials import add_credential_commands
from api.cli.identity import add_identity_commands
from api.cli.node import add_node_commands
from api.cli.signatures import add_signature_commands
from api.cli.sso import add_sso_commands
from api.cli.wallet import add_wallet_commands
from ledger.errors import LedgerError

__all__ = ["build_parser", "main"]


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="eduledger", description="A permissioned ledger for education.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_node_commands(sub)
    add_credential_commands(sub)
    add_wallet_commands(sub)
    add_audit_commands(sub)
    add_signature_commands(sub)
    add_sso_commands(sub)
    add_identity_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LedgerError as exc:
        return parser.report(exc.message)
    except KeyboardInterrupt:
        return 130
