"""`eduledger issue` and `eduledger verify`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Literal

from api.cli.common import ProgressBar, Subcommands, node_settings, write_private
from ledger.errors import ConfigError, InvalidInput
from ledger.settings import Settings


def cmd_issue(args: argparse.Namespace) -> int:
    """Issue a roster in-process against this data directory (the node must not be serving)."""
    from ledger.credentials.roster import parse_roster
    from ledger.credentials.signing import shared_pool
    from ledger.credentials.types import CredentialType
    from ledger.node import Node, NodeServices

    path = Path(args.roster)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", code="unreadable_roster") from None
    fmt: Literal["json", "csv"] = args.format or ("csv" if path.suffix.lower() == ".csv" else "json")
    ctype = CredentialType.parse(args.type)
    if len(data) > 100_000:  # a few hundred rows or more: start the signing processes meanwhile
        shared_pool().warm_in_background()
    rows = parse_roster(data, fmt=fmt, ctype=ctype)
    print(f"{len(rows)} rows valid", file=sys.stderr)
    node = Node(node_settings(args))
    try:
        batch = NodeServices(node).credentials.issue(
            args.org, ctype, rows, idempotency_key=args.idempotency_key, progress=ProgressBar("signing"))
    finally:
        node.close()
    text = json.dumps(batch.to_dict(), ensure_ascii=False, indent=2)
    if args.out:
        write_private(args.out, text)
        print(f"batch {batch.batch_id}: {len(batch.credentials)} credentials anchored; "
              f"claim codes in {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def _trusted_registry(args: argparse.Namespace) -> str:
    if args.registry:
        return str(args.registry)
    from_settings = Settings().registry
    if from_settings:
        return from_settings
    if args.data_dir:
        from ledger.consortium.deployment import Deployment

        return Deployment.load(Path(args.data_dir)).anchor_registry
    raise ConfigError("which registry do you trust? pass --registry ADDRESS (published by the "
                      "consortium), set EDULEDGER_REGISTRY, or --data-dir of a node")


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify a credential file against a node alone: no organisation's API is asked."""
    from ledger.chain import ChainClient
    from ledger.credentials.anchorproof import read_credential
    from ledger.credentials.verify import CredentialVerifier

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror}", code="unreadable") from None
    sd_jwt, anchor = read_credential(data)
    verifier = CredentialVerifier(ChainClient.from_url(args.rpc), _trusted_registry(args))
    result = verifier.verify(sd_jwt, anchor)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "-   "}
        for check in result.to_dict()["checks"]:
            print(f"{mark[check['outcome']]} {check['check']:<15} {check['message']}")
        verdict = "VALID 有效" if result.valid else "NOT VALID 无效: " + ", ".join(result.failures)
        print(f"\n{verdict}  ({result.issuer.get('name') or '?'}, {result.credential_type or '?'})")
    return 0 if result.valid else 1


def add_credential_commands(sub: Subcommands) -> None:
    issue = sub.add_parser("issue", help="issue a roster of credentials (in-process)")
    issue.add_argument("--roster", required=True, help="JSON or CSV roster file")
    issue.add_argument("--type", required=True,
                       help="graduation, degree, transcript, certificate or training")
    issue.add_argument("--org", required=True, help="the issuing organisation's id")
    issue.add_argument("--format", choices=["json", "csv"])
    issue.add_argument("--idempotency-key")
    issue.add_argument("--out", help="write the batch (with claim codes) here, mode 0600")
    issue.add_argument("--data-dir")
    issue.set_defaults(func=cmd_issue)

    verify = sub.add_parser("verify", help="verify a credential file against a chain node alone")
    verify.add_argument("file")
    verify.add_argument("--rpc", required=True, help="JSON-RPC URL of any node of the network")
    verify.add_argument("--registry", help="the AnchorRegistry address you trust")
    verify.add_argument("--data-dir", help="take the trusted registry from this node's deployment")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)
