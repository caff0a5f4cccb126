"""`eduledger sso add-client|clients|disable-client`: the platforms that sign people in with
their education identity card (OpenID Connect relying parties), registered in-process.

Like `eduledger audit run`, these open the node on --data-dir: with the embedded chain the
node must not be serving at the same time, or set EDULEDGER_RPC_URL to a running node's
JSON-RPC URL. A serving node takes the same registration at POST /v1/sso/clients.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from api.cli.common import Subcommands, node_settings, print_table
from ledger.identity.sso.models import SsoClient

if TYPE_CHECKING:
    from ledger.node import Node, NodeServices


def _services(args: argparse.Namespace) -> tuple[Node, NodeServices]:
    from ledger.node import Node, NodeServices  # the node's stack, loaded only when a command runs

    node = Node(node_settings(args))
    return node, NodeServices(node)


def _row(client: SsoClient) -> list[object]:
    return [client.client_id, client.name, client.auth_method, client.sector,
            " ".join(json.loads(client.redirect_uris_json)), "disabled" if client.disabled_at else "active"]


def cmd_add_client(args: argparse.Namespace) -> int:
    node, services = _services(args)
    try:
        client, secret = services.sso.register_client(args.org, args.name, args.redirect_uri,
                                                      public=args.public, sector=args.sector,
                                                      auth_method=args.auth_method)
    finally:
        node.close()
    print(f"client_id      {client.client_id}")
    if secret is not None:
        print(f"client_secret  {secret}")
        print("(the secret is shown once: keep it in the platform's configuration)")
    print(f"sector         {client.sector}")
    print("discovery      <issuer>/.well-known/openid-configuration")
    return 0


def cmd_clients(args: argparse.Namespace) -> int:
    node, services = _services(args)
    try:
        clients = services.sso.clients_of(args.org)
    finally:
        node.close()
    if not clients:
        print(f"{args.org} has registered no clients")
        return 0
    print_table([["CLIENT", "NAME", "AUTH", "SECTOR", "REDIRECT URIS", "STATE"]]
                + [_row(c) for c in clients])
    return 0


def cmd_disable_client(args: argparse.Namespace) -> int:
    node, services = _services(args)
    try:
        client = services.sso.disable_client(args.org, args.client_id)
    finally:
        node.close()
    print(f"disabled {client.client_id} ({client.name}): no more sign-ins, its tokens stop now")
    return 0


def add_sso_commands(sub: Subcommands) -> None:
    sso = sub.add_parser("sso", help="platforms that sign people in with their identity card (OIDC)",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sso_sub = sso.add_subparsers(dest="sso_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--org", required=True, help="the organisation that runs the platform")
    common.add_argument("--data-dir", help="the node's data directory (default: EDULEDGER_DATA_DIR)")

    add = sso_sub.add_parser("add-client", parents=[common], help="register a platform (a relying party)")
    add.add_argument("--name", required=True, help="the platform's name, shown on the sign-in page")
    add.add_argument("--redirect-uri", required=True, action="append", metavar="URL",
                     help="an exact https redirect URI (repeat for several)")
    add.add_argument("--sector", help="pairwise subjects' sector (default: the redirect URIs' host)")
    add.add_argument("--public", action="store_true", help="a native or browser app: no secret, PKCE alone")
    add.add_argument("--auth-method", default="client_secret_basic",
                     choices=["client_secret_basic", "client_secret_post"],
                     help="how the platform authenticates at the token endpoint")
    add.set_defaults(func=cmd_add_client)

    listed = sso_sub.add_parser("clients", parents=[common], help="list the organisation's platforms")
    listed.set_defaults(func=cmd_clients)

    off = sso_sub.add_parser("disable-client", parents=[common],
                             help="stop a platform's sign-ins and tokens")
    off.add_argument("client_id", metavar="CLIENT_ID")
    off.set_defaults(func=cmd_disable_client)
