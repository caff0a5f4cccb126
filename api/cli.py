"""The `eduledger` command line.

Errors print one line to stderr and exit non-zero; tracebacks never reach the user.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from api.cli_audit import add_audit_commands
from api.cli_credentials import add_credential_commands
from ledger.errors import LedgerError, OneLineArgumentParser
from ledger.settings import Settings
from node_config.cli import add_besu_arguments, run_besu
from wallet.cli import add_wallet_commands

DEMO_CONSORTIUM = Path(__file__).resolve().parents[1] / "node_config" / "demo.toml"


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "data_dir", None):
        settings = replace(settings, data_dir=Path(args.data_dir))
    if getattr(args, "host", None):
        settings = replace(settings, host=args.host)
    if getattr(args, "port", None):
        settings = replace(settings, port=args.port)
    if getattr(args, "workers", None) is not None:
        if args.workers < 0:
            raise LedgerError("--workers must be 0 or more", code="bad_argument")
        settings = replace(settings, workers=args.workers)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from ledger.consortium.network import ensure_network
    from ledger.credentials.signing import shared_pool
    from ledger.node import Node

    settings = _settings(args)
    node = ensure_network(settings, Path(settings.consortium_file or DEMO_CONSORTIUM),
                          open_node=Node)
    try:
        print(f"eduledger: chain {node.client.chain_id}, head {node.client.block_number()}, "
              f"serving on http://{settings.host}:{settings.port}", file=sys.stderr)
        # The node signs large rosters on a pool of processes: start it now, not at the first
        # roster (only here: the --workers processes never sign).
        shared_pool().warm_in_background()
        if settings.workers > 0:
            from api.workers import SharedState, run_in_process

            shared = SharedState()
            shared.install_rate_limit()
            run_in_process(node, settings, shared, create_app(node, status_generation=shared.generation))
        else:
            uvicorn.run(create_app(node), host=settings.host, port=settings.port, log_level="warning")
    finally:
        node.close()
    return 0


def cmd_network_init(args: argparse.Namespace) -> int:
    from ledger.consortium.network import init_network
    from ledger.node import Node

    settings = _settings(args)
    node = init_network(settings, Path(args.config or DEMO_CONSORTIUM), open_node=Node)
    try:
        deployment = node.deployment
        assert deployment is not None
        print(f"deployed on chain {deployment.chain_id}: consortium {deployment.consortium}, "
              f"anchor registry {deployment.anchor_registry}")
        print(f"{len(deployment.organisations)} organisations admitted; API keys in "
              f"{settings.data_dir / 'api-keys.json'}")
    finally:
        node.close()
    return 0


def cmd_network_besu(args: argparse.Namespace) -> int:
    """Generate a Besu network; with --data-dir, its organisations' own keys are allowlisted."""
    if args.data_dir:
        from ledger.consortium.network import organisation_keys
        from ledger.consortium.definition import load_definition

        settings = _settings(args)
        keys = organisation_keys(settings, load_definition(Path(args.config)))
        given = {item.partition("=")[0] for item in args.account}
        args.account += [f"{org}={k.address}" for org, k in keys.items() if org not in given]
    return run_besu(args)


class _Parser(OneLineArgumentParser):
    error_prefix = "eduledger: "


def build_parser() -> OneLineArgumentParser:
    parser = _Parser(prog="eduledger", description="A permissioned ledger for education.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the embedded node and the API")
    serve.add_argument("--data-dir")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, metavar="N",
                       help="more processes serving the same port, each verifying credentials itself "
                            "(default: EDULEDGER_WORKERS, or one per CPU core beyond the first)")
    serve.set_defaults(func=cmd_serve)

    network = sub.add_parser("network", help="set up and describe the consortium network")
    net_sub = network.add_subparsers(dest="network_command", required=True)
    init = net_sub.add_parser("init", help="deploy the contracts and admit the members")
    init.add_argument("--config", help="consortium definition (TOML); default: the demo consortium")
    init.add_argument("--data-dir")
    init.set_defaults(func=cmd_network_init)
    besu = net_sub.add_parser("besu", help="generate a Besu QBFT network")
    add_besu_arguments(besu)
    besu.add_argument("--data-dir", help="create (or reuse) the organisations' keystores here and "
                      "allowlist and fund their accounts")
    besu.set_defaults(func=cmd_network_besu)
    add_credential_commands(sub)
    add_wallet_commands(sub)
    add_audit_commands(sub)
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


if __name__ == "__main__":
    sys.exit(main())
