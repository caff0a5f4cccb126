"""A node: the chain (embedded or remote), the SQL store and the deployment, opened once.

Both ``eduledger serve`` and the in-process commands open one of these; nothing here knows
about HTTP.
"""

from __future__ import annotations

from ledger.anchoring import AnchoringService
from ledger.chain import ChainAPI, ChainClient, EmbeddedChain, RpcDispatcher, embedded_client
from ledger.consortium.deployment import Deployment
from ledger.contracts.bindings import AnchorRegistryContract, ConsortiumContract
from ledger.contracts.identity import IdentityRegistryContract
from ledger.errors import NotFound
from ledger.fileio import private_directory, private_sqlite_file
from ledger.identity.projection import project_card_state
from ledger.indexer import Indexer, project_leaf_status
from ledger.keys import AccountSource
from ledger.settings import SQLITE_FILE, Settings
from ledger.store import make_engine, migrate

__all__ = ["Node"]


class Node:
    def __init__(self, settings: Settings, *, alloc: dict[str, int] | None = None,
                 migrate_schema: bool = True) -> None:
        self.settings = settings
        self.chain: EmbeddedChain | None = None
        self.dispatcher: RpcDispatcher | None = None
        self._indexer: Indexer | None = None
        private_directory(settings.data_dir)
        if not settings.database_url:  # the default SQLite store lives in the data directory
            private_sqlite_file(settings.data_dir / SQLITE_FILE)
        self.engine = make_engine(settings.resolved_database_url())
        if migrate_schema:  # not in a serving node's worker processes: the node did it
            migrate(self.engine)
        self.client: ChainAPI
        if settings.rpc_url:
            self.client = ChainClient.from_url(settings.rpc_url)
        else:
            self.chain = EmbeddedChain(settings.chain_dir, alloc=alloc)
            self.dispatcher = RpcDispatcher(self.chain)
            self.client = embedded_client(self.chain)

    @property
    def deployment(self) -> Deployment | None:
        try:
            return Deployment.load(self.settings.data_dir)
        except NotFound:
            return None

    def require_deployment(self) -> Deployment:
        deployment = self.deployment
        if deployment is None:
            raise NotFound("no network deployed here (run: eduledger network init)", code="no_network")
        return deployment

    def contracts(self) -> tuple[ConsortiumContract, AnchorRegistryContract]:
        deployment = self.require_deployment()
        return (ConsortiumContract.at(self.client, deployment.consortium),
                AnchorRegistryContract.at(self.client, deployment.anchor_registry))

    def identity_registry(self) -> IdentityRegistryContract | None:
        """The IdentityRegistry; None for a network deployed before it existed."""
        address = self.require_deployment().identity_registry
        return IdentityRegistryContract.at(self.client, address) if address else None

    def indexer(self) -> Indexer:
        """The node's one indexer: every user shares it, and so its lock. It copies the
        events of every contract of the deployment."""
        if self._indexer is None:
            consortium, registry = self.contracts()
            identity = self.identity_registry()
            watched = [consortium.contract, registry.contract]
            if identity is not None:
                watched.append(identity.contract)
            self._indexer = Indexer(self.engine, self.client, watched,
                                    from_block=self.require_deployment().deployed_block,
                                    projections=[project_leaf_status, project_card_state])
        return self._indexer

    def anchoring(self, signers: AccountSource) -> AnchoringService:
        _, registry = self.contracts()
        return AnchoringService(self.engine, self.client, registry, signers,
                                from_block=self.require_deployment().deployed_block)

    def close(self) -> None:
        self.engine.dispose()
        if self.chain is not None:
            self.chain.close()
