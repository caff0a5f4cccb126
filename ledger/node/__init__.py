"""The node's runtime: the node itself (chain, store, deployment), its services wired once,
its background duties and its first-start set-up. Used alike by ``eduledger serve`` (api/)
and by the in-process commands; nothing here knows about HTTP."""

from ledger.consortium.deployment import DEPLOYMENT_FILE, Deployment
from ledger.node.duties import NodeDuties
from ledger.node.node import Node
from ledger.node.services import NodeServices
from ledger.node.setup import ensure_network, init_network

__all__ = ["DEPLOYMENT_FILE", "Deployment", "Node", "NodeDuties", "NodeServices", "ensure_network",
           "init_network"]
