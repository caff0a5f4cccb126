"""Command line for the Besu network generator.

The main CLI wires `eduledger network besu` with:

    besu = net_sub.add_parser("besu", help="generate a Besu QBFT network")
    add_besu_arguments(besu)
    besu.set_defaults(func=run_besu)

It also runs on its own: `python -m node_config besu --config FILE --out DIR`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ledger.errors import ConfigError, LedgerError, OneLineArgumentParser
from node_config.besu import DEFAULT_CHAIN_ID, DEFAULT_EVM_FORK, EVM_FORKS, generate_besu_network
from ledger.consortium.definition import load_definition


def add_besu_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="consortium definition (TOML), e.g. node_config/demo.toml")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID)
    parser.add_argument("--block-period", type=int, default=2, metavar="SECONDS")
    parser.add_argument("--evm-fork", choices=list(EVM_FORKS), default=DEFAULT_EVM_FORK,
                        help="EVM milestone active from genesis (contracts must not need newer)")
    parser.add_argument("--account", action="append", default=[], metavar="ORG=ADDRESS",
                        help="an organisation's signing account, funded in genesis and "
                             "allowlisted (repeat for each organisation)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a network already in DIR (new keys, chain data wiped)")


def run_besu(args: argparse.Namespace) -> int:
    """Generate the network and print a summary; errors are raised as LedgerError."""
    accounts: dict[str, str] = {}
    for item in args.account:
        org_id, sep, address = item.partition("=")
        if not sep or not org_id.strip() or not address.strip():
            raise ConfigError(f"--account expects ORG=ADDRESS, got {item!r}")
        accounts[org_id.strip()] = address.strip()
    network = generate_besu_network(
        load_definition(Path(args.config)),
        Path(args.out),
        chain_id=args.chain_id,
        block_period_seconds=args.block_period,
        account_addresses=accounts,
        evm_fork=args.evm_fork,
        overwrite=args.force,
    )
    print(f"Besu QBFT network for {len(network.nodes)} validators written to {network.directory}")
    print(f"chain id {network.chain_id}; accounts allowlisted and funded: {len(network.accounts)}")
    for node in network.nodes:
        print(f"  {node.org_id:<16} {node.address}  p2p {node.host}:{node.p2p_port}  "
              f"rpc {node.rpc_url}")
    print(f"start each node with: cd {network.directory}/<org-id> && "
          "besu --config-file=config.toml")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m node_config",
                                   description="eduledger node configuration")
    sub = parser.add_subparsers(dest="command", required=True)
    besu = sub.add_parser("besu", help="generate a Besu QBFT network")
    add_besu_arguments(besu)
    besu.set_defaults(func=run_besu)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LedgerError as exc:
        return parser.report(exc.message)
