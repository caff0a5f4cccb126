"""The domain services one app uses, built once from its node."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from fastapi import Request

from ledger.audit.accesslog import AccessLog
from ledger.consortium.network import signer_loader
from ledger.credentials.service import CredentialService
from ledger.errors import NotFound
from ledger.indexer import IndexedLeafStatus
from ledger.keys import OrganisationKeys, load_keystore
from ledger.node import Node
from ledger.settings import keystore_passphrase


class Services:
    """`status_generation`: see IndexedLeafStatus; `indexing=False` in processes that must only
    read what the node's indexer writes (the verification workers)."""

    def __init__(self, node: Node, *, status_generation: Any = None, indexing: bool = True) -> None:
        self.node = node
        self.status_generation = status_generation
        self.indexing = indexing

    def keys_for(self, org_id: str) -> OrganisationKeys:
        return load_keystore(self.node.settings.keystore_dir, org_id, keystore_passphrase())

    @cached_property
    def access_log(self) -> AccessLog:
        return AccessLog(self.node.engine)

    def record_access(self, request: Request, actor: str, role: str, action: str, kind: str,
                      resource_id: str, purpose: str | None = None) -> None:
        """Log a read of personal data: who, when, what and why (committed before we answer)."""
        client = request.client.host if request.client else None
        self.access_log.record(actor, role, action, kind, resource_id, purpose=purpose, client=client)

    @cached_property
    def credentials(self) -> CredentialService:
        deployment = self.node.deployment
        if deployment is None:
            raise NotFound("no network deployed here", code="no_network")
        return CredentialService(engine=self.node.engine, client=self.node.client,
                                 deployment=deployment,
                                 anchoring=self.node.anchoring(signer_loader(self.node.settings)),
                                 keys_for=self.keys_for,
                                 status_index=IndexedLeafStatus(
                                     self.node.engine, self.node.indexer() if self.indexing else None,
                                     generation=self.status_generation))
