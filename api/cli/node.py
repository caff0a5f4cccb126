"""`eduledger serve` and `eduledger network init|besu`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from api.cli.common import Subcommands, count, node_settings
from ledger.errors import ConfigError
from node_config import DEMO_CONSORTIUM
from node_config.besu import DEFAULT_CHAIN_ID, DEFAULT_EVM_FORK, EVM_FORKS, generate_besu_network


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app, server_options
    from ledger.credentials.signing import shared_pool
    from ledger.node import NodeServices, ensure_network

    settings = node_settings(args)
    node = ensure_network(settings, Path(settings.consortium_file or DEMO_CONSORTIUM))
    try:
        NodeServices(node).check_keys()  # a wrong passphrase stops here, before /health says ok
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
            uvicorn.run(create_app(node), host=settings.host, port=settings.port, **server_options(settings))
    finally:
        node.close()
    return 0


def cmd_network_init(args: argparse.Namespace) -> int:
    from ledger.node import init_network

    settings = node_settings(args)
    node = init_network(settings, Path(args.config or DEMO_CONSORTIUM))
    try:
        deployment = node.require_deployment()
        print(f"deployed on chain {deployment.chain_id}: consortium {deployment.consortium}, "
              f"anchor registry {deployment.anchor_registry}, "
              f"identity registry {deployment.identity_registry}")
        print(f"{len(deployment.organisations)} organisations admitted; API keys in "
              f"{settings.data_dir / 'api-keys.json'}")
    finally:
        node.close()
    return 0


def cmd_network_besu(args: argparse.Namespace) -> int:
    """Generate a Besu network; with --data-dir, its organisations' own keys are allowlisted."""
    from ledger.consortium.definition import load_definition

    accounts: dict[str, str] = {}
    for item in args.account:
        org_id, sep, address = item.partition("=")
        if not sep or not org_id.strip() or not address.strip():
            raise ConfigError(f"--account expects ORG=ADDRESS, got {item!r}")
        accounts[org_id.strip()] = address.strip()
    definition = load_definition(Path(args.config))
    if args.data_dir:
        from ledger.consortium.network import organisation_keys

        for org, keys in organisation_keys(node_settings(args), definition).items():
            accounts.setdefault(org, keys.address)
    network = generate_besu_network(
        definition, Path(args.out), chain_id=args.chain_id, block_period_seconds=args.block_period,
        account_addresses=accounts, evm_fork=args.evm_fork, overwrite=args.force)
    print(f"Besu QBFT network for {len(network.nodes)} validators written to {network.directory}")
    print(f"chain id {network.chain_id}; accounts allowlisted and funded: {len(network.accounts)}")
    for besu_node in network.nodes:
        print(f"  {besu_node.org_id:<16} {besu_node.address}  p2p {besu_node.p2p_address}  "
              f"rpc {besu_node.rpc_url}")
    print(f"start each node with: cd {network.directory}/<org-id> && besu --config-file=config.toml")
    return 0


def add_node_commands(sub: Subcommands) -> None:
    serve = sub.add_parser("serve", help="run the node (embedded chain unless EDULEDGER_RPC_URL) and the API")
    serve.add_argument("--data-dir")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=count, metavar="N", dest="workers_serving",
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
    besu.add_argument("--config", required=True, metavar="FILE",
                      help="consortium definition (TOML), e.g. node_config/demo.toml")
    besu.add_argument("--out", required=True, metavar="DIR", help="output directory")
    besu.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID)
    besu.add_argument("--block-period", type=int, default=2, metavar="SECONDS")
    besu.add_argument("--evm-fork", choices=list(EVM_FORKS), default=DEFAULT_EVM_FORK,
                      help="EVM milestone active from genesis (contracts must not need newer)")
    besu.add_argument("--account", action="append", default=[], metavar="ORG=ADDRESS",
                      help="an organisation's signing account, funded in genesis and "
                           "allowlisted (repeat for each organisation)")
    besu.add_argument("--force", action="store_true",
                      help="overwrite a network already in DIR (new keys, chain data wiped)")
    besu.add_argument("--data-dir", help="create (or reuse) the organisations' keystores here and "
                      "allowlist and fund their accounts")
    besu.set_defaults(func=cmd_network_besu)
