"""A running node: the chain (embedded or remote), the SQL store and the deployment.

Both the API and the CLI open one of these; nothing here knows about HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.anchoring import AnchoringService
from ledger.chain import ChainClient, EmbeddedChain, RpcDispatcher, embedded_client
from ledger.contracts.bindings import AnchorRegistryContract, ConsortiumContract
from ledger.errors import ConfigError, NotFound
from ledger.fileio import atomic_write
from ledger.indexer import Indexer, project_leaf_status
from ledger.settings import Settings
from ledger.store import make_engine, migrate

DEPLOYMENT_FILE = "network.json"


@dataclass
class Deployment:
    """Where the contracts live and which organisation is which member."""

    chain_id: int
    consortium: str
    anchor_registry: str
    deployed_block: int
    organisations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, data_dir: Path) -> None:
        atomic_write(data_dir / DEPLOYMENT_FILE,
                     json.dumps(asdict(self), indent=2, ensure_ascii=False).encode("utf-8"),
                     mode=0o644)

    @classmethod
    def load(cls, data_dir: Path) -> Deployment:
        path = data_dir / DEPLOYMENT_FILE
        if not path.exists():
            raise NotFound(f"no network deployed in {data_dir} (run: eduledger network init)")
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid deployment record: {exc}") from None


class Node:
    def __init__(self, settings: Settings, *, alloc: dict[str, int] | None = None,
                 migrate_schema: bool = True) -> None:
        self.settings = settings
        self.chain: EmbeddedChain | None = None
        self.dispatcher: RpcDispatcher | None = None
        self._indexer: Indexer | None = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.resolved_database_url())
        if migrate_schema:  # not in a serving node's worker processes: the node did it
            migrate(self.engine)
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

    def contracts(self) -> tuple[ConsortiumContract, AnchorRegistryContract]:
        deployment = self.deployment
        if deployment is None:
            raise NotFound("no network deployed here (run: eduledger network init)",
                           code="no_network")
        return (ConsortiumContract.at(self.client, deployment.consortium),
                AnchorRegistryContract.at(self.client, deployment.anchor_registry))

    def indexer(self) -> Indexer:
        """The node's one indexer: every user shares it, and so its lock."""
        if self._indexer is None:
            consortium, registry = self.contracts()
            assert self.deployment is not None
            self._indexer = Indexer(self.engine, self.client,
                                    [consortium.contract, registry.contract],
                                    from_block=self.deployment.deployed_block,
                                    projections=[project_leaf_status])
        return self._indexer

    def anchoring(self, signer_for: Callable[[str], LocalAccount]) -> AnchoringService:
        _, registry = self.contracts()
        assert self.deployment is not None
        return AnchoringService(self.engine, self.client, registry, signer_for,
                                from_block=self.deployment.deployed_block)

    def close(self) -> None:
        self.engine.dispose()
        if self.chain is not None:
            self.chain.close()
