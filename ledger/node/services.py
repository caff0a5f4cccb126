"""The domain services of one node, wired once: what the API's routers and the in-process
commands use, so that neither wires a service itself.

Each capability's service is built on first use from the node (its chain client, store,
deployment and indexer) and the organisations' keys. A new capability adds its service
here, typed, and its duties (if any) to ``ledger.node.duties``.
"""

from __future__ import annotations

from functools import cached_property
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from sqlmodel import select

from ledger.anchoring import AnchoringService
from ledger.audit.accesslog import AccessLog
from ledger.audit.history import History
from ledger.audit.integrity import IntegrityAudit
from ledger.audit.models import AuditRun, AuditRunStatus
from ledger.consortium.deployment import Deployment
from ledger.consortium.views import network_view
from ledger.credentials.did import member_did_document
from ledger.credentials.oid4vci import Oid4vciIssuer
from ledger.credentials.oid4vp import PresentationVerifier
from ledger.credentials.service import CredentialService
from ledger.errors import NotFound
from ledger.evaluation import EvaluationService
from ledger.identity.documents import HolderDocuments
from ledger.identity.exams import ExamService
from ledger.identity.holder_auth import HolderProofs
from ledger.identity.personal import NodeSecrets
from ledger.identity.projection import IndexedCards
from ledger.identity.service import IdentityService
from ledger.identity.sso import ProviderKeys, SsoService
from ledger.indexer import IndexedLeafStatus
from ledger.keys import Keyring, OrganisationKeys, keystore_path
from ledger.node.node import Node
from ledger.records import RecordService
from ledger.signatures import SignatureService
from ledger.signatures.sm2 import SealKeys
from ledger.store import session_scope

__all__ = ["NodeServices"]


class NodeServices:
    """`status_generation`: see IndexedLeafStatus; `indexing=False` in processes that must only
    read what the node's indexer writes (the verification workers)."""

    def __init__(self, node: Node, *, status_generation: Synchronized[int] | None = None,
                 indexing: bool = True) -> None:
        self.node = node
        self.status_generation = status_generation
        self.indexing = indexing

    # -- what every service shares -----------------------------------------------------

    @property
    def deployment(self) -> Deployment:
        return self.node.require_deployment()

    @cached_property
    def keyring(self) -> Keyring:
        """The organisations' keystores of this data directory (the passphrase is read here)."""
        settings = self.node.settings
        return Keyring(settings.keystore_dir, settings.keystore_secret())

    def keys_for(self, org_id: str) -> OrganisationKeys:
        return self.keyring.keys_for(org_id)

    def check_keys(self) -> list[str]:
        """Unlock every organisation keystore this node holds, so that a wrong passphrase
        stops ``serve`` at start-up instead of failing the first issuance; returns the
        organisations unlocked (the keys stay cached for their first use)."""
        unlocked = []
        for org_id in self.deployment.organisations:
            if keystore_path(self.node.settings.keystore_dir, org_id).exists():
                self.keys_for(org_id)
                unlocked.append(org_id)
        return unlocked

    @cached_property
    def anchoring(self) -> AnchoringService:
        return self.node.anchoring(self.keyring)

    @cached_property
    def leaf_statuses(self) -> IndexedLeafStatus:
        return IndexedLeafStatus(self.node.engine, self.node.indexer() if self.indexing else None,
                                 generation=self.status_generation)

    # -- capabilities ------------------------------------------------------------------

    @cached_property
    def credentials(self) -> CredentialService:
        self.deployment  # noqa: B018 - no network deployed: NotFound no_network, before any key is read
        return CredentialService(engine=self.node.engine, client=self.node.client,
                                 deployment=self.deployment, anchoring=self.anchoring,
                                 keys=self.keyring, status_index=self.leaf_statuses)

    @cached_property
    def oid4vci(self) -> Oid4vciIssuer:
        """Credentials for standard wallets (OpenID4VCI 1.0)."""
        return Oid4vciIssuer(engine=self.node.engine, credentials=self.credentials)

    @cached_property
    def oid4vp(self) -> PresentationVerifier:
        """Presentation requests to standard wallets (OpenID4VP 1.0)."""
        return PresentationVerifier(engine=self.node.engine, verifier=self.credentials.verifier)

    @cached_property
    def node_secrets(self) -> NodeSecrets:
        """The node's identity secrets (person-key HMAC secret, master key of personal data),
        sealed under the keystore passphrase; made at first use."""
        settings = self.node.settings
        return NodeSecrets(settings.data_dir, settings.keystore_secret(), scrypt_n=settings.keystore_scrypt_n)

    @cached_property
    def identity(self) -> IdentityService:
        registry = self.node.identity_registry()
        if registry is None:
            raise NotFound("this network has no identity registry (set up before identity cards)",
                           code="no_identity_registry")
        return IdentityService(engine=self.node.engine, client=self.node.client, deployment=self.deployment,
                               registry=registry, keys=self.keyring, secrets=self.node_secrets,
                               verifier=self.credentials.verifier,
                               cards=IndexedCards(self.node.engine, registry, self.node.indexer()))

    @cached_property
    def evaluation(self) -> EvaluationService:
        """Comprehensive quality evaluation: students and teachers are named by identity cards."""
        identity = self.identity
        return EvaluationService(engine=self.node.engine, deployment=self.deployment, cards=identity,
                                 cipher=identity.cipher, keys=self.keyring, anchoring=self.anchoring)

    @cached_property
    def seal_keys(self) -> SealKeys:
        """The organisations' SM2 seal keys, sealed under the keystore passphrase; made at first use."""
        settings = self.node.settings
        return SealKeys(settings.data_dir, settings.keystore_secret(), scrypt_n=settings.keystore_scrypt_n)

    @cached_property
    def signatures(self) -> SignatureService:
        self.deployment  # noqa: B018 - no network deployed: NotFound no_network, before any key is read
        return SignatureService(engine=self.node.engine, client=self.node.client, deployment=self.deployment,
                                anchoring=self.anchoring, keys=self.keyring, seal_keys=self.seal_keys,
                                verifier=self.credentials.verifier, cards=self.node.identity_registry())

    @cached_property
    def sso(self) -> SsoService:
        """Single sign-on with the card (the OpenID Provider); its keys made at first use."""
        settings = self.node.settings
        keys = ProviderKeys(settings.data_dir, settings.keystore_secret(),
                            scrypt_n=settings.keystore_scrypt_n)
        return SsoService(engine=self.node.engine, identity=self.identity, keys=keys)

    @cached_property
    def holder_documents(self) -> HolderDocuments:
        """Documents encrypted to cards' holders (the store alone)."""
        return HolderDocuments(self.node.engine)

    @cached_property
    def holder_proofs(self) -> HolderProofs:
        """Checks the proofs by which a card's holder authenticates with their wallet key."""
        return HolderProofs(self.node.engine)

    @cached_property
    def exams(self) -> ExamService:
        return ExamService(identity=self.identity)

    @cached_property
    def records(self) -> RecordService:
        """The learning record store (xAPI 2.0), its statements anchored in batches."""
        settings = self.node.settings
        _, registry = self.node.contracts()
        return RecordService(engine=self.node.engine, anchoring=self.anchoring, registry=registry,
                             deployment=self.deployment, authority_home=settings.records_authority_home,
                             batch_size=settings.records_batch_size,
                             batch_seconds=settings.records_batch_seconds)

    @cached_property
    def access_log(self) -> AccessLog:
        return AccessLog(self.node.engine)

    def record_access(self, actor: str, role: str, action: str, kind: str, resource_id: str,
                      purpose: str | None = None, client: str | None = None) -> None:
        """Log a read of personal data: who, when, what and why (committed before we answer)."""
        self.access_log.record(actor, role, action, kind, resource_id, purpose=purpose, client=client)

    def history(self) -> History:
        """The audit trail of records, from a current event index."""
        self.node.indexer().run_once()  # the index is current before it is read
        return History(self.node.engine, self.node.client, self.deployment)

    def integrity_audit(self, auditor_org: str | None, *, anchor: bool = True, deep: bool = True,
                        workers: int = 1) -> IntegrityAudit:
        """An audit whose report `auditor_org` signs and (with `anchor`) anchors; unsigned
        and unanchored when None."""
        _, registry = self.node.contracts()
        evaluation = self.evaluation if self.node.identity_registry() is not None else None
        return IntegrityAudit(self.node.engine, self.node.client, registry,
                              auditor_keys=self.keys_for(auditor_org) if auditor_org else None,
                              anchoring=self.anchoring if auditor_org and anchor else None,
                              deployment=self.deployment, deep=deep, workers=workers,
                              evaluation=evaluation)

    def unfinished_audit_runs(self) -> list[AuditRun]:
        with session_scope(self.node.engine) as session:
            return list(session.exec(select(AuditRun).where(AuditRun.status.in_(  # type: ignore[attr-defined]
                [AuditRunStatus.PENDING.value, AuditRunStatus.RUNNING.value]))).all())

    def did_document(self, did: str) -> dict[str, Any]:
        return member_did_document(did, client=self.node.client, deployment=self.node.deployment,
                                   engine=self.node.engine, indexer=self.node.indexer())

    def network_view(self) -> dict[str, Any]:
        return network_view(self.node.client, self.node.deployment, embedded=self.node.chain is not None)
