"""The history of any record: a credential, a leaf, a batch root or a member.

Every entry comes from the indexed copy of the chain's events (plus, for a credential, its
issuance as recorded off chain), oldest first. With `check_chain`, each entry is read again
from the chain — the receipt of its transaction must hold the same log — and marked
confirmed or missing, so an auditor need not trust the index.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import Engine
from sqlmodel import select
from web3.exceptions import TransactionNotFound

from ledger.anchoring.models import AnchorBatch, AnchorLeaf
from ledger.chain import ChainAPI
from ledger.consortium.deployment import Deployment
from ledger.contracts.bindings import LeafStatus, MemberStatus, Role
from ledger.credentials.models import CredentialRecord
from ledger.errors import InvalidInput, NotFound
from ledger.indexer.models import ChainEvent
from ledger.store import session_scope

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_STATUS_ACTION = {LeafStatus.REVOKED: "revoke", LeafStatus.SUSPENDED: "suspend",
                  LeafStatus.REINSTATED: "reinstate", LeafStatus.SUPERSEDED: "supersede"}
_MEMBER_EVENTS = ("MemberAdmitted", "MemberStatusChanged", "MemberRoleChanged", "AccountAdded",
                  "AccountRetired", "SigningKeyAdded", "SigningKeyRetired", "ProposalCreated",
                  "ProposalExecuted")


@dataclass
class HistoryEntry:
    action: str
    actor: str | None
    reason: int | None
    tx_hash: str | None
    block_number: int | None
    block_time: str | None
    details: dict[str, Any]
    chain: str | None = None  # "confirmed" | "missing" when checked against the chain
    log_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("log_index")
        if self.chain is None:
            out.pop("chain")
        return out


class History:
    def __init__(self, engine: Engine, client: ChainAPI, deployment: Deployment) -> None:
        self.engine = engine
        self.client = client
        self.deployment = deployment
        self._org_by_member = {int(o["member_id"]): org_id
                               for org_id, o in deployment.organisations.items()}
        self._org_by_account = {o["account"].lower(): org_id
                                for org_id, o in deployment.organisations.items()}

    def of(self, record_id: str, *, check_chain: bool = False) -> dict[str, Any]:
        record_id = record_id.strip()
        if record_id.startswith("urn:uuid:"):
            subject, entries = self._credential(record_id)
        elif _HEX32.match(record_id):
            subject, entries = self._hash(record_id.lower())
        elif record_id.isdigit() or record_id in self.deployment.organisations or _ADDRESS.match(record_id):
            subject, entries = self._member(record_id)
        else:
            raise InvalidInput("give a credential id (urn:uuid:...), a 32-byte hash (0x + 64 hex), "
                               "an organisation id, a member number or an account address",
                               code="bad_id")
        entries.sort(key=lambda e: (e.block_number if e.block_number is not None else -1,
                                    e.log_index if e.log_index is not None else -1))
        if check_chain:
            for entry in entries:
                if entry.tx_hash is not None:
                    entry.chain = "confirmed" if self._on_chain(entry) else "missing"
        return {"subject": subject, "history": [e.to_dict() for e in entries]}

    # -- subjects ------------------------------------------------------------------------

    def _credential(self, credential_id: str) -> tuple[dict[str, Any], list[HistoryEntry]]:
        with session_scope(self.engine) as session:
            record = session.get(CredentialRecord, credential_id)
            batch = session.get(AnchorBatch, record.batch_id) if record is not None else None
        if record is None or batch is None:
            raise NotFound(f"no credential {credential_id}", code="credential_not_found")
        issue = HistoryEntry(
            "issue", record.issuer_org, None, None, None,
            record.created_at.isoformat().replace("+00:00", "Z"),
            {"credential_id": record.id, "type": record.type, "batch_id": record.batch_id,
             "supersedes": record.supersedes})
        # Issued before its batch is anchored: it sorts first.
        issue.block_number = (batch.block_number or 0) - 1 if batch.block_number else None
        entries = [issue, *self._anchored(batch.root), *self._status(record.leaf_hash)]
        subject = {"kind": "credential", "id": record.id, "leaf": record.leaf_hash,
                   "root": batch.root, "issuer": record.issuer_org, "status": record.status}
        return subject, entries

    def _hash(self, value: str) -> tuple[dict[str, Any], list[HistoryEntry]]:
        with session_scope(self.engine) as session:
            batch = session.exec(select(AnchorBatch).where(AnchorBatch.root == value)).first()
            leaf = session.exec(select(AnchorLeaf).where(AnchorLeaf.leaf_hash == value)).first()
            leaf_batch = session.get(AnchorBatch, leaf.batch_id) if leaf is not None else None
        anchored = self._anchored(value)
        status_as_root = self._status(value, field="root")
        if batch is not None or anchored or (status_as_root and leaf is None):
            subject = {"kind": "batch", "root": value,
                       "batch_id": batch.id if batch else None,
                       "count": batch.leaf_count if batch else None}
            return subject, anchored + status_as_root
        status = self._status(value)
        if leaf_batch is None and not status:
            raise NotFound(f"nothing on record for {value}", code="not_found")
        entries = (self._anchored(leaf_batch.root) if leaf_batch else []) + status
        return {"kind": "leaf", "leaf": value, "root": leaf_batch.root if leaf_batch else None}, entries

    def _member(self, value: str) -> tuple[dict[str, Any], list[HistoryEntry]]:
        if value.isdigit():
            member_id = int(value)
        elif value in self.deployment.organisations:
            member_id = int(self.deployment.organisations[value]["member_id"])
        else:
            org = self._org_by_account.get(value.lower())
            member_id = int(self.deployment.organisations[org]["member_id"]) if org else 0
        if member_id not in self._org_by_member:
            raise NotFound(f"no member {value}", code="member_not_found")
        events = self._events(self.deployment.consortium, _MEMBER_EVENTS, {"memberId": member_id})
        entries = [self._entry(e, self._member_action(e)) for e in events]
        return {"kind": "member", "member_id": member_id, "org_id": self._org_by_member[member_id]}, entries

    # -- events ----------------------------------------------------------------------------

    def _anchored(self, root: str) -> list[HistoryEntry]:
        return [self._entry(e, "anchor") for e in
                self._events(self.deployment.anchor_registry, ("Anchored",), {"root": root})]

    def _status(self, value: str, field: str = "leaf") -> list[HistoryEntry]:
        out = []
        for event in self._events(self.deployment.anchor_registry, ("StatusChanged",), {field: value}):
            status = LeafStatus(int(json.loads(event.args_json)["status"]))
            out.append(self._entry(event, _STATUS_ACTION.get(status, status.name.lower())))
        return out

    def _events(self, contract: str, names: tuple[str, ...], match: dict[str, Any]) -> list[ChainEvent]:
        # args_json is json.dumps(sort_keys=True): a key and its value appear as `"k": v`.
        needles = [f'"{key}": {json.dumps(value)}' for key, value in match.items()]
        with session_scope(self.engine) as session:
            query = select(ChainEvent).where(
                ChainEvent.contract == contract.lower(),
                ChainEvent.event.in_(names))  # type: ignore[attr-defined]
            for needle in needles:
                query = query.where(ChainEvent.args_json.contains(needle))  # type: ignore[attr-defined]
            return list(session.exec(query))

    def _entry(self, event: ChainEvent, action: str) -> HistoryEntry:
        args = json.loads(event.args_json)
        actor_account = args.get("changedBy") or args.get("anchoredBy") or args.get("proposer") \
            or args.get("addedBy") or args.get("retiredBy")
        actor = self._org_by_account.get(str(actor_account).lower()) if actor_account else None
        if actor is None and "memberId" in args and event.event in ("Anchored", "StatusChanged"):
            actor = self._org_by_member.get(int(args["memberId"]))
        return HistoryEntry(action, actor, args.get("reason"), event.tx_hash, event.block_number,
                            event.block_time.isoformat().replace("+00:00", "Z"),
                            {"event": event.event, **args}, log_index=event.log_index)

    @staticmethod
    def _member_action(event: ChainEvent) -> str:
        args = json.loads(event.args_json)
        if event.event == "MemberStatusChanged":
            return {MemberStatus.SUSPENDED: "suspend", MemberStatus.ACTIVE: "reinstate",
                    MemberStatus.REMOVED: "remove"}.get(MemberStatus(int(args["newStatus"])), "status")
        if event.event == "MemberRoleChanged":
            return f"role:{Role(int(args['newRole'])).name.lower()}"
        return {"MemberAdmitted": "admit", "AccountAdded": "add_account",
                "AccountRetired": "retire_account", "SigningKeyAdded": "add_signing_key",
                "SigningKeyRetired": "retire_signing_key", "ProposalCreated": "propose",
                "ProposalExecuted": "execute_proposal"}.get(event.event, event.event)

    def _on_chain(self, entry: HistoryEntry) -> bool:
        if entry.tx_hash is None:
            return False
        try:
            receipt = self.client.receipt(entry.tx_hash)
        except TransactionNotFound:  # not on this node: missing
            return False
        if int(receipt["blockNumber"]) != entry.block_number:
            return False
        for log in receipt["logs"]:
            if int(log["logIndex"]) == entry.log_index:
                return HexBytes(log["transactionHash"]).to_0x_hex() == entry.tx_hash
        return False
