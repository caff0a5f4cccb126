"""The learning record store: statements stored to xAPI 2.0, found by its filters, voided
by its rules, and anchored in batches, exactly once.

**Storing.** A request's statements are validated (ledger.records.validation), then stored
in one transaction: either all of them or none. Each gets ``stored``, ``authority`` (the
recording organisation, from its credentials) and ``version`` (2.0.0 if absent), a random
32-byte salt and its leaf (ledger.records.hashing). A statement id already stored is a
no-op if the content is the same and 409 otherwise; a voiding statement marks its target
voided (or, if the target comes later, the target arrives voided).

**Anchoring.** A stored statement waits for a batch (``batch_id`` empty). ``anchor_due``
(the node's background pass, every second) takes, per recording organisation, the waiting
statements once there are ``batch_size`` of them or the oldest has waited
``batch_seconds``: it hands their leaves to the anchoring service, and the rows are tied to
the batch in the very transaction that accepts it (``BatchRecords``). So a statement is in
exactly one batch: a crash before that transaction leaves it waiting (the next pass takes
it), a crash after leaves a pending batch that ``AnchoringService.resume`` anchors once.

**Reading.** Who may read: a school or partner reads the statements it recorded; the
bureau and the auditor read every statement of this node.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import Engine, Table, and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ledger.anchoring.interfaces import AnchoringAPI
from ledger.anchoring.models import AnchorBatch
from ledger.anchoring.proof import AnchorProof
from ledger.consortium.deployment import Deployment
from ledger.contracts.bindings import AnchorKind, AnchorRegistryContract
from ledger.errors import ChainError, ChainUnavailable, Conflict, InvalidInput, NotFound, PermissionDenied
from ledger.merkle import MerkleTree, new_salt, verify_proof
from ledger.records.errors import (
    BadStatement,
    RecordNotFound,
    StatementConflict,
    TooManyStatements,
    VoidingRefused,
)
from ledger.records.hashing import agent_key, formatted, same_statement, statement_leaf
from ledger.records.models import LearningRecord, LearningRecordRef
from ledger.records.validation import (
    VOIDED,
    check_iri,
    check_learner,
    check_statement,
    check_uuid,
    parse_timestamp,
)
from ledger.store import session_scope

__all__ = [
    "MAX_STATEMENTS",
    "LrsCaller",
    "iso_time",
    "now_ms",
    "RecordService",
    "StatementQuery",
    "StatementPage",
]

MAX_STATEMENTS = 1000  # per request (larger: 413)
MAX_LIMIT = 500  # statements per page; limit=0 means this
MAX_ANCHOR_BATCH = 10_000
RECORD_FORMAT = "eduledger-record/1"
WRITE_ROLES = ("school",)  # the AnchorRegistry lets only schools anchor learning records
READ_ALL_ROLES = ("bureau", "auditor")
SENSITIVE = ("health", "psychological")
CATEGORY_BASE = "https://w3id.org/eduledger/xapi/categories/"

_RECORD: Table = LearningRecord.__table__  # type: ignore[attr-defined]
_REF: Table = LearningRecordRef.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LrsCaller:
    """Who calls the LRS: an organisation (by its credentials) and its role."""

    org: str
    role: str

    @property
    def reads_all(self) -> bool:
        return self.role in READ_ALL_ROLES


@dataclass(frozen=True)
class StatementQuery:
    agent: dict[str, Any] | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 0
    ascending: bool = False
    # paging: the last seq returned, and the newest seq the first page could see
    after: int | None = None
    through: int | None = None


@dataclass
class StatementPage:
    statements: list[dict[str, Any]]
    more: StatementQuery | None  # the query of the next page, if there is one
    last_stored: datetime | None  # the newest `stored` of the page (Last-Modified)


@dataclass
class _Stored:
    ids: list[str] = field(default_factory=list)
    created: int = 0


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # xAPI keeps milliseconds


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _category(statement: dict[str, Any]) -> str | None:
    activities = statement.get("context", {}).get("contextActivities", {}).get("category", [])
    for activity in activities if isinstance(activities, list) else [activities]:
        activity_id = activity.get("id", "")
        if activity_id.startswith(CATEGORY_BASE):
            return str(activity_id[len(CATEGORY_BASE) :].split("/")[0])[:32]
    return None


def _refs(statement: dict[str, Any]) -> set[tuple[str, str, bool]]:
    """(kind, value, narrow) of every agent and activity a statement is found by."""
    refs: set[tuple[str, str, bool]] = set()

    def agent(value: Any, narrow: bool) -> None:
        if isinstance(value, dict):
            key = agent_key(value)
            if key is not None:
                refs.add(("agent", key, narrow))
            for member in value.get("member", []) if value.get("objectType") == "Group" else []:
                member_key = agent_key(member)
                if member_key is not None:
                    refs.add(("agent", member_key, False))

    def part(value: dict[str, Any], top: bool) -> None:
        agent(value.get("actor"), top)
        target = value.get("object", {})
        kind = target.get("objectType", "Activity")
        if kind == "Activity":
            refs.add(("activity", target["id"], top))
        elif kind in ("Agent", "Group"):
            agent(target, top)
        elif kind == "SubStatement":
            part(target, False)
        context = value.get("context", {})
        agent(context.get("instructor"), False)
        agent(context.get("team"), False)
        for entry in context.get("contextAgents", []):
            agent(entry.get("agent"), False)
        for entry in context.get("contextGroups", []):
            agent(entry.get("group"), False)
        for items in context.get("contextActivities", {}).values():
            for activity in items if isinstance(items, list) else [items]:
                refs.add(("activity", activity["id"], False))

    part(statement, True)
    agent(statement.get("authority"), False)
    return refs


def _statement_of(row: LearningRecord) -> dict[str, Any]:
    if row.statement_json is None:
        raise PermissionDenied("this statement is sealed (a sensitive category)", code="record_sealed")
    value: dict[str, Any] = json.loads(row.statement_json)
    return value


class _Batch:
    """``BatchRecords``: ties the waiting statements to their batch, in the batch's transaction."""

    def __init__(self, seqs: Sequence[int]) -> None:
        self.seqs = list(seqs)

    def attach(self, session: Session, batch: AnchorBatch, tree: MerkleTree) -> None:
        for position, seq in enumerate(self.seqs):
            session.execute(
                update(_RECORD)
                .where(_RECORD.c.seq == seq, _RECORD.c.batch_id.is_(None))
                .values(batch_id=batch.id, position=position)
            )
        taken = session.execute(
            select(func.count()).select_from(_RECORD).where(_RECORD.c.batch_id == batch.id)
        ).scalar_one()
        if taken != len(self.seqs):  # another pass took some of them first: this batch is void
            raise Conflict("statements were taken into another batch", code="records_taken")

    def detach(self, session: Session, batch_id: str) -> None:
        session.execute(
            update(_RECORD).where(_RECORD.c.batch_id == batch_id).values(batch_id=None, position=None)
        )


class RecordService:
    """The LRS of one node over its store, the anchoring service and the registry."""

    def __init__(
        self,
        *,
        engine: Engine,
        anchoring: AnchoringAPI,
        registry: AnchorRegistryContract,
        deployment: Deployment,
        authority_home: str,
        batch_size: int = 1000,
        batch_seconds: float = 5.0,
    ) -> None:
        self.engine = engine
        self.anchoring = anchoring
        self.registry = registry
        self.deployment = deployment
        self.authority_home = authority_home
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds

    # -- storing -------------------------------------------------------------------------

    def authority(self, org: str) -> dict[str, Any]:
        return {"objectType": "Agent", "name": org, "account": {"homePage": self.authority_home, "name": org}}

    def store(
        self, caller: LrsCaller, statements: Sequence[Any], *, statement_id: str | None = None
    ) -> list[str]:
        """Store `statements` (all or none); their ids, in order. `statement_id`: the id a PUT names."""
        if caller.role not in WRITE_ROLES:
            raise PermissionDenied(
                f"a {caller.role} may not record learning statements (the anchor "
                "registry lets only schools anchor learning records)",
                code="role_not_allowed",
            )
        if not statements:
            raise BadStatement("send at least one statement", code="bad_statement")
        if len(statements) > MAX_STATEMENTS:
            raise TooManyStatements(f"at most {MAX_STATEMENTS} statements per request")
        now = now_ms()
        prepared: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (as stored, as sent)
        seen: set[str] = set()
        for i, raw in enumerate(statements):
            path = "statement" if len(statements) == 1 else f"statements[{i}]"
            statement = check_statement(raw, path)
            check_learner(statement)
            if statement_id is not None:
                if "id" in statement and statement["id"].lower() != statement_id.lower():
                    raise BadStatement(
                        "the statement's id differs from the statementId parameter", code="bad_statement"
                    )
                statement = {**statement, "id": statement_id}
            stored = {**statement, "id": str(statement.get("id") or uuid.uuid4()).lower()}
            if stored["id"] in seen:
                raise BadStatement(f"{path}.id repeats an id of this request", code="bad_statement")
            seen.add(stored["id"])
            if _category(stored) in SENSITIVE:
                # Their rows are designed (LearningRecord.sealed, learner_key); until the
                # learner keys are wired they are refused rather than stored in the clear.
                raise BadStatement(
                    f"{path}: statements of the {_category(stored)} category are kept "
                    "encrypted per learner, which this node does not do yet",
                    code="sensitive_category",
                )
            sent = dict(stored)
            stored["stored"] = iso_time(now)
            stored["authority"] = self.authority(caller.org)
            stored.setdefault("version", "2.0.0")
            stored.setdefault("timestamp", stored["stored"])
            prepared.append((stored, sent))
        try:
            with session_scope(self.engine, write=True) as session:
                return self._store(session, caller, prepared, now).ids
        except IntegrityError:  # the same id stored by a concurrent request: compare again
            with session_scope(self.engine, write=True) as session:
                return self._store(session, caller, prepared, now).ids

    def _store(
        self,
        session: Session,
        caller: LrsCaller,
        statements: list[tuple[dict[str, Any], dict[str, Any]]],
        now: datetime,
    ) -> _Stored:
        result = _Stored()
        for statement, sent in statements:
            sid = statement["id"]
            result.ids.append(sid)
            existing = session.execute(
                select(_RECORD.c.statement_json, _RECORD.c.recorder_org).where(_RECORD.c.statement_id == sid)
            ).first()
            if existing is not None:
                if existing.statement_json is None or not same_statement(
                    json.loads(existing.statement_json), sent
                ):
                    raise StatementConflict(
                        f"a statement with id {sid} is already stored, with other content", statement_id=sid
                    )
                continue
            target = (
                statement["object"].get("id")
                if statement["object"].get("objectType") == "StatementRef"
                else None
            )
            target_id = target.lower() if isinstance(target, str) else None
            voiding = statement["verb"]["id"] == VOIDED
            voided_by = None
            if voiding and target_id is not None:
                victim = session.execute(
                    select(_RECORD.c.seq, _RECORD.c.is_voiding, _RECORD.c.recorder_org).where(
                        _RECORD.c.statement_id == target_id
                    )
                ).first()
                if victim is not None:
                    if victim.is_voiding:
                        raise VoidingRefused(
                            f"statement {target_id} is itself a voiding statement; a "
                            "voiding statement cannot be voided",
                            statement_id=sid,
                        )
                    if victim.recorder_org != caller.org:
                        raise PermissionDenied(
                            f"statement {target_id} was recorded by another "
                            "organisation; only its recorder may void it",
                            code="void_not_allowed",
                        )
                    session.execute(
                        update(_RECORD)
                        .where(_RECORD.c.seq == victim.seq, _RECORD.c.voided_by.is_(None))
                        .values(voided_by=sid)
                    )
            else:  # a voiding statement that came first voids this one as it arrives
                earlier = session.execute(
                    select(_RECORD.c.statement_id, _RECORD.c.recorder_org)
                    .where(_RECORD.c.target_statement_id == sid, _RECORD.c.is_voiding)
                    .order_by(_RECORD.c.seq)
                ).first()
                if earlier is not None and earlier.recorder_org == caller.org:
                    voided_by = earlier.statement_id
            salt = new_salt()
            row = LearningRecord(
                statement_id=sid,
                recorder_org=caller.org,
                stored=now,
                verb_id=statement["verb"]["id"],
                registration=statement.get("context", {}).get("registration", "").lower() or None,
                target_statement_id=target_id,
                is_voiding=voiding,
                voided_by=voided_by,
                category=_category(statement),
                statement_json=json.dumps(statement, ensure_ascii=False),
                salt="0x" + salt.hex(),
                leaf_hash="0x" + statement_leaf(salt, statement).hex(),
            )
            session.add(row)
            session.flush()
            session.execute(
                _REF.insert(),
                [
                    {"seq": row.seq, "kind": kind, "value": value[:2048], "narrow": narrow}
                    for kind, value, narrow in sorted(_refs(statement))
                ],
            )
            result.created += 1
        return result

    # -- reading -------------------------------------------------------------------------

    def _visible(self, caller: LrsCaller) -> list[Any]:
        return [] if caller.reads_all else [_RECORD.c.recorder_org == caller.org]

    def get(
        self, caller: LrsCaller, statement_id: str, *, voided: bool = False
    ) -> tuple[dict[str, Any], datetime]:
        """A statement by id (not voided), or with `voided` a voided one by its id."""
        check_uuid(statement_id, "statementId" if not voided else "voidedStatementId")
        with session_scope(self.engine) as session:
            row = session.execute(
                select(LearningRecord).where(
                    _RECORD.c.statement_id == statement_id.lower(), *self._visible(caller)
                )
            ).scalar_one_or_none()
        if row is None or (row.voided_by is not None) != voided:
            what = "voided statement" if voided else "statement"
            hint = (
                ""
                if row is None
                else (
                    " (it is voided: ask with voidedStatementId)"
                    if not voided
                    else " (it is not voided: ask with statementId)"
                )
            )
            raise RecordNotFound(f"no {what} {statement_id}{hint}")
        return _statement_of(row), row.stored

    def query(self, caller: LrsCaller, q: StatementQuery) -> StatementPage:
        conditions: list[Any] = []
        own: list[Any] = []
        if q.verb is not None:
            own.append(_RECORD.c.verb_id == check_iri(q.verb, "verb"))
        if q.registration is not None:
            own.append(_RECORD.c.registration == check_uuid(q.registration, "registration").lower())
        for kind, value, broad in (
            ("agent", q.agent, q.related_agents),
            ("activity", q.activity, q.related_activities),
        ):
            if value is None:
                continue
            key = agent_key(value) if isinstance(value, dict) else check_iri(value, "activity")
            if key is None:
                raise BadStatement("agent: an anonymous Group cannot be a filter", code="bad_statement")
            match = [_REF.c.seq == _RECORD.c.seq, _REF.c.kind == kind, _REF.c.value == key]
            own.append(exists().where(*match, *([] if broad else [_REF.c.narrow.is_(True)])))
        if own:
            # xAPI: a statement targeting another (StatementRef) matches when its target
            # matches, recursively; since, until and limit apply to the targeting one.
            matched = select(_RECORD.c.statement_id).where(and_(*own)).cte("matched", recursive=True)
            targeting = _RECORD.alias("targeting")
            matched = matched.union(
                select(targeting.c.statement_id).where(
                    targeting.c.target_statement_id == matched.c.statement_id
                )
            )
            conditions.append(_RECORD.c.statement_id.in_(select(matched.c.statement_id)))
        if q.since is not None:
            conditions.append(_RECORD.c.stored > q.since)
        if q.until is not None:
            conditions.append(_RECORD.c.stored <= q.until)
        if q.through is not None:
            conditions.append(_RECORD.c.seq <= q.through)
        if q.after is not None:
            conditions.append(_RECORD.c.seq > q.after if q.ascending else _RECORD.c.seq < q.after)
        limit = MAX_LIMIT if q.limit <= 0 else min(q.limit, MAX_LIMIT)
        order = _RECORD.c.seq.asc() if q.ascending else _RECORD.c.seq.desc()
        with session_scope(self.engine) as session:
            through = (
                q.through
                if q.through is not None
                else session.execute(select(func.max(_RECORD.c.seq))).scalar_one_or_none()
            )
            rows = session.execute(
                select(_RECORD.c.seq, _RECORD.c.statement_json, _RECORD.c.stored)
                .where(
                    _RECORD.c.voided_by.is_(None),
                    _RECORD.c.statement_json.is_not(None),
                    *self._visible(caller),
                    *conditions,
                )
                .order_by(order)
                .limit(limit + 1)
            ).all()
        more = None
        if len(rows) > limit:
            rows = rows[:limit]
            more = StatementQuery(**{**q.__dict__, "after": rows[-1].seq, "through": through})
        return StatementPage(
            statements=[json.loads(r.statement_json) for r in rows],
            more=more,
            last_stored=max((r.stored for r in rows), default=None),
        )

    @staticmethod
    def formatted(statement: dict[str, Any], fmt: str, accept_language: str = "") -> dict[str, Any]:
        if fmt not in ("exact", "ids", "canonical"):
            raise BadStatement("format is one of exact, ids, canonical", code="bad_statement")
        return formatted(statement, fmt, accept_language)

    # -- anchoring -----------------------------------------------------------------------

    def anchor_due(self, *, force: bool = False) -> list[AnchorBatch]:
        """Anchor, per recording organisation, the statements waiting for a batch once
        there are `batch_size` of them or the oldest has waited `batch_seconds` (`force`:
        whatever waits)."""
        deadline = now_ms() - timedelta(seconds=self.batch_seconds)
        with session_scope(self.engine) as session:
            waiting = session.execute(
                select(_RECORD.c.recorder_org, func.count(), func.min(_RECORD.c.stored))
                .where(_RECORD.c.batch_id.is_(None))
                .group_by(_RECORD.c.recorder_org)
            ).all()
        batches = []
        for org, count, oldest in waiting:
            oldest_at = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            if not (force or count >= self.batch_size or oldest_at <= deadline):
                continue
            with session_scope(self.engine) as session:
                rows = session.execute(
                    select(_RECORD.c.seq, _RECORD.c.leaf_hash)
                    .where(_RECORD.c.batch_id.is_(None), _RECORD.c.recorder_org == org)
                    .order_by(_RECORD.c.seq)
                    .limit(MAX_ANCHOR_BATCH)
                ).all()
            if not rows:
                continue
            try:
                batches.append(
                    self.anchoring.anchor(
                        org,
                        AnchorKind.LEARNING_RECORD,
                        [r.leaf_hash for r in rows],
                        records=_Batch([r.seq for r in rows]),
                    )
                )
            except Conflict as exc:
                if exc.code != "records_taken":
                    raise
        return batches

    def waiting(self) -> int:
        """Statements stored but not yet in a batch."""
        with session_scope(self.engine) as session:
            return int(
                session.execute(
                    select(func.count()).select_from(_RECORD).where(_RECORD.c.batch_id.is_(None))
                ).scalar_one()
            )

    def _row(self, caller: LrsCaller | None, statement_id: str) -> LearningRecord:
        check_uuid(statement_id, "statement_id")
        with session_scope(self.engine) as session:
            row = session.execute(
                select(LearningRecord).where(
                    _RECORD.c.statement_id == statement_id.lower(),
                    *(self._visible(caller) if caller is not None else []),
                )
            ).scalar_one_or_none()
        if not isinstance(row, LearningRecord):
            raise RecordNotFound(f"no statement {statement_id}")
        return row

    def record_file(self, caller: LrsCaller, statement_id: str) -> dict[str, Any]:
        """The statement with its salt and inclusion proof: what a verifier checks against the chain."""
        row = self._row(caller, statement_id)
        proof = self.anchoring.proof_for(row.leaf_hash)
        if proof is None:
            raise NotFound(
                f"statement {statement_id} is not anchored yet (batches are anchored every "
                f"{self.batch_seconds:g} s)",
                code="record_not_anchored",
            )
        return {
            "format": RECORD_FORMAT,
            "statement": _statement_of(row),
            "salt": row.salt,
            "anchor": proof.to_dict(),
        }

    # -- verifying -----------------------------------------------------------------------

    def verify(self, record: Any) -> dict[str, Any]:
        """Check a record file (``record_file``) against the chain and this node's store."""
        statement, salt, proof = read_record(record)
        checks: list[dict[str, Any]] = []

        def check(name: str, ok: bool, detail: str) -> bool:
            checks.append({"check": name, "ok": ok, "detail": detail})
            return ok

        leaf = statement_leaf(salt, statement)
        check("leaf", "0x" + leaf.hex() == proof.leaf, "the statement and salt hash to the proof's leaf")
        check(
            "inclusion",
            verify_proof(leaf, proof.proof_bytes(), bytes(HexBytes(proof.root))),
            "the leaf is in the tree of the root",
        )
        recorded_by = anchored_at = None
        block_number = None
        try:
            info = self.registry.root_info(proof.root)
            if check(
                "anchored",
                info.anchored
                and info.kind == AnchorKind.LEARNING_RECORD
                and proof.chain_id == self.registry.client.chain_id
                and proof.contract.lower() == self.registry.address.lower(),
                "the root is anchored on this chain's registry as learning records",
            ):
                recorded_by = self.deployment.org_of_member(info.member_id)
                block_number = info.block_number
                block = self.registry.client.block(info.block_number)
                anchored_at = datetime.fromtimestamp(int(block["timestamp"]), UTC)
        except ChainUnavailable:
            raise
        except ChainError as exc:
            check("anchored", False, exc.message)
        authority = statement.get("authority", {}).get("account", {}).get("name")
        check(
            "recorder",
            recorded_by is not None and authority == recorded_by,
            "the statement's authority is the member that anchored it",
        )
        voided_by = None
        with session_scope(self.engine) as session:
            row = session.execute(
                select(_RECORD.c.voided_by, _RECORD.c.leaf_hash).where(
                    _RECORD.c.statement_id == str(statement["id"]).lower()
                )
            ).first()
        if row is not None:
            voided_by = row.voided_by
        return {
            "statement_id": statement["id"],
            "valid": all(c["ok"] for c in checks),
            "recorded_by": recorded_by,
            "stored": statement.get("stored"),
            "anchored_at": iso_time(anchored_at) if anchored_at else None,
            "block_number": block_number,
            "tx_hash": proof.tx_hash,
            "voided": voided_by is not None,
            "voided_by": voided_by,
            "known_here": row is not None,
            "checks": checks,
        }

    def audit(self) -> list[str]:
        """Ids of stored statements whose row no longer hashes to its leaf (edited in the database)."""
        bad = []
        with session_scope(self.engine) as session:
            for sid, text, salt, leaf in session.execute(
                select(
                    _RECORD.c.statement_id, _RECORD.c.statement_json, _RECORD.c.salt, _RECORD.c.leaf_hash
                ).where(_RECORD.c.statement_json.is_not(None))
            ):
                if "0x" + statement_leaf(bytes(HexBytes(salt)), json.loads(text)).hex() != leaf:
                    bad.append(sid)
        return bad


def read_record(record: Any) -> tuple[dict[str, Any], bytes, AnchorProof]:
    """A record file's statement, salt and proof; anything else is ``malformed``."""
    if not isinstance(record, dict) or record.get("format", RECORD_FORMAT) != RECORD_FORMAT:
        raise InvalidInput(f"a record file is a JSON object of format {RECORD_FORMAT}", code="malformed")
    unknown = sorted(set(record) - {"format", "statement", "salt", "anchor"})
    if unknown:
        raise InvalidInput(
            f"the record file has unknown fields: {', '.join(unknown)[:200]}", code="malformed"
        )
    statement, salt = record.get("statement"), record.get("salt")
    if not isinstance(statement, dict) or not isinstance(statement.get("id"), str):
        raise InvalidInput("the record file holds a statement with its id", code="malformed")
    if not isinstance(salt, str) or len(salt) != 66 or not salt.startswith("0x"):
        raise InvalidInput("the record file's salt is 32 bytes of hex", code="malformed")
    try:
        salt_bytes = bytes.fromhex(salt[2:])
    except ValueError:
        raise InvalidInput("the record file's salt is 32 bytes of hex", code="malformed") from None
    try:
        parse_timestamp(statement.get("stored"), "statement.stored")
    except BadStatement as exc:
        raise InvalidInput(exc.message, code="malformed") from None
    return statement, salt_bytes, AnchorProof.from_dict(record.get("anchor"))
