"""Chain backends: the embedded py-evm node and any JSON-RPC node, behind one client."""

from __future__ import annotations

from web3 import Web3

from ledger.chain.client import ChainClient, TxResult
from ledger.chain.embedded import EmbeddedChain
from ledger.chain.interfaces import ChainAPI
from ledger.chain.rpc import EmbeddedProvider, RpcDispatcher


def embedded_client(chain: EmbeddedChain) -> ChainClient:
    """A client for the embedded chain in this process (no HTTP in between)."""
    return ChainClient(Web3(EmbeddedProvider(RpcDispatcher(chain))))


__all__ = ["ChainAPI", "ChainClient", "EmbeddedChain", "RpcDispatcher", "TxResult", "embedded_client"]
