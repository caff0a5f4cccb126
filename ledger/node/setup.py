"""A node's first start: the network is set up once per data directory.

``init_network`` creates every organisation's keystore, opens the node (the embedded
chain's genesis funds those accounts), deploys and populates the consortium, issues each
organisation's API key and writes the deployment record last: a directory without
``network.json`` was never initialised, whatever else it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ledger.consortium.apikeys import issue_api_keys
from ledger.consortium.definition import load_definition
from ledger.consortium.deployment import DEPLOYMENT_FILE
from ledger.consortium.network import (
    GENESIS_BALANCE,
    deploy_consortium,
    fund_organisations,
    organisation_keys,
)
from ledger.errors import Conflict
from ledger.fileio import private_directory
from ledger.node.node import Node
from ledger.settings import Settings

__all__ = ["ensure_network", "init_network"]

OpenNode = Callable[..., Node]


def init_network(settings: Settings, config: Path, *, open_node: OpenNode = Node) -> Node:
    definition = load_definition(config)
    data_dir = settings.data_dir
    if (data_dir / DEPLOYMENT_FILE).exists():
        raise Conflict(f"{data_dir} already holds a network (its {DEPLOYMENT_FILE} exists)",
                       code="already_initialised")
    if not settings.rpc_url and settings.chain_dir.exists() and any(settings.chain_dir.iterdir()):
        raise Conflict(f"{settings.chain_dir} holds a chain but no deployment record: an earlier "
                       "initialisation was interrupted; remove the directory and run again",
                       code="partial_initialisation")
    private_directory(data_dir)
    keys = organisation_keys(settings, definition)
    node = open_node(settings, alloc={k.address: GENESIS_BALANCE for k in keys.values()})
    try:
        fund_organisations(node.client, settings, keys)
        deployment = deploy_consortium(node.client, definition, keys)
        issue_api_keys(settings, definition)
        deployment.save(data_dir)
    except BaseException:
        node.close()
        raise
    return node




def ensure_network(settings: Settings, config: Path, *, open_node: OpenNode = Node) -> Node:
    """Open the node, initialising the network first if the data directory is empty."""
    if (settings.data_dir / DEPLOYMENT_FILE).exists():
        return open_node(settings)
    return init_network(settings, config, open_node=open_node)
