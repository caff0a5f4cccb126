"""Integrity audit: prove that the off-chain store still matches the chain.

A run (table ``audit_run``) goes through phases, each in chunks; every chunk commits its
findings (table ``audit_finding``) together with the run's new cursor and progress in one
transaction. A run killed at any point (kill -9) therefore resumes from its last commit,
redoes at most one chunk, and ends with exactly the findings an uninterrupted run finds:
findings are numbered in the order the audit meets them, chunks are processed in a fixed
order, and (run, kind, item) is unique.

Phases:

1. ``events``: every log of the anchor registry on chain, from the deployment block to the
   run's head block, must have its row in the event index (``chain_event``), with the same
   event, block and arguments, and every index row of the registry must match a log.
   Events after the block the index had reached when the run started are counted, not
   reported: they are not missing, only not indexed yet.
2. ``batches``: batch by batch (ordered by id; batches accepted after the run started are
   left to the next run), the Merkle root is rebuilt from the stored
   leaves (ordered by position) and compared with the stored root; the stored root must be
   anchored in the registry by the batch's member, with its kind and leaf count. Then, for
   credential batches, every anchored leaf in chunks of positions: the credential behind
   it must exist, its leaf must recompute from its SD-JWT (keccak256 of the canonical
   issuer-signed payload without ``cnf``) and equal both its stored leaf and the anchored
   one; with ``deep`` (the default) the SD-JWT's signature and disclosures are verified
   too, and its signing key must be a key the chain lists for the issuing member, valid
   when the batch was anchored. Finally its stored status must equal its status on chain.
   For evaluation batches, every sealed term record behind a leaf (``SealedRecords``, from
   ``ledger.evaluation``): its stored document and the document its live rows make now must
   both hash to the anchored leaf, and the school's signature must verify by a key the chain
   lists (finding ``evaluation_record_changed``). Batches of other kinds (learning records,
   resources, audit reports...) get the batch checks only.
3. ``report``: the report (canonical JSON) is built from the findings, hashed, signed with
   the auditor's key; 4. ``anchor``: its hash is anchored (kind audit_report) by the
   auditor organisation, exactly once (idempotency key ``audit-report:<run id>``).

Chain reads are made at the run's head block, fixed when the run starts, so a resumed run
reads what the first attempt read; a batch anchored after that block is read at its own
block, and a status that differs at the head block is read again at the latest block
before it is reported (a change racing the audit is not a finding).

Which leaves get a ``statusOf`` call: the contract writes a leaf's status only in
``setStatus``, which always logs ``StatusChanged``; the audit reads every registry log
anyway (phase 1), so the (leaf, root) pairs that ever changed status are known from the
chain itself, trusting neither the store nor the indexer's projection. Those pairs, plus
every leaf whose stored status is not "valid" or that has a row in the ``leaf_status``
projection, are read with ``statusOf``; every other leaf is VALID on chain by construction.
For 100,000 credentials with a handful of revocations that is a handful of calls instead
of 100,000, and a revocation made behind the store's back (straight to the contract, not
yet indexed) is still caught.

The audit only reads: it changes nothing but its own two tables (and, at the end, anchors
its report). One worker per run: a second process running the same run concurrently
fails on its next commit (the cursor it read has moved) and changes nothing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger.anchoring.models import AnchorBatch, AnchorLeaf
from ledger.audit import report as reports
from ledger.audit.models import AuditFinding, AuditRun, AuditRunStatus, FindingKind
from ledger.canonical import canonical_json
from ledger.contracts.bindings import (
    AnchorRegistryContract,
    ConsortiumContract,
    KeyInfo,
    LeafStatus,
    RootInfo,
)
from ledger.credentials import jose, sdjwt
from ledger.credentials.anchorproof import credential_leaf
from ledger.credentials.did import issuer_did, parse_key_id
from ledger.credentials.models import CredentialRecord
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound
from ledger.indexer.indexer import _jsonable
from ledger.indexer.models import ChainEvent, IndexerCursor, LeafStatusRow
from ledger.merkle import MerkleTree
from ledger.store import session_scope
from ledger.store.columns import utcnow

if TYPE_CHECKING:
    from ledger.anchoring import AnchoringAPI
    from ledger.chain import ChainAPI
    from ledger.consortium.deployment import Deployment
    from ledger.evaluation.interfaces import SealedRecords
    from ledger.keys import OrganisationKeys

__all__ = ["AuditReport", "Finding", "IntegrityAudit", "Progress", "check_sd_jwt"]

log = logging.getLogger("eduledger.audit")

CHUNK_POSITIONS = 2_000  # leaf positions per committed chunk
CHUNK_EVENTS = 1_000  # registry logs per committed chunk
LOG_BLOCKS = 2_000  # blocks per eth_getLogs call
IN_LIMIT = 500  # values per SQL IN (...) list
POOL_MIN = 64  # fewer SD-JWTs than this in a chunk are checked in-process

_RUN: Table = AuditRun.__table__  # type: ignore[attr-defined]
_FINDING: Table = AuditFinding.__table__  # type: ignore[attr-defined]
_BATCH: Table = AnchorBatch.__table__  # type: ignore[attr-defined]
_LEAF: Table = AnchorLeaf.__table__  # type: ignore[attr-defined]
_CRED: Table = CredentialRecord.__table__  # type: ignore[attr-defined]
_EVENT: Table = ChainEvent.__table__  # type: ignore[attr-defined]
_STATUS: Table = LeafStatusRow.__table__  # type: ignore[attr-defined]

# stored credential status -> the on-chain statuses that agree with it
_STATUS_AGREES: dict[str, frozenset[LeafStatus]] = {
    "valid": frozenset({LeafStatus.VALID, LeafStatus.REINSTATED}),
    "revoked": frozenset({LeafStatus.REVOKED}),
    "suspended": frozenset({LeafStatus.SUSPENDED}),
    "superseded": frozenset({LeafStatus.SUPERSEDED}),
}

Progress = Callable[[int, int, str], None]  # (done, total, phase)


@dataclass(frozen=True)
class Finding:
    kind: str
    item: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditReport:
    run_id: str
    report_json: bytes  # canonical
    report_hash: str
    signature: str | None  # hex
    anchor: dict[str, Any] | None  # batch id, root, tx hash, block number

    @property
    def report(self) -> dict[str, Any]:
        return dict(json.loads(self.report_json))


def _hex(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- the per-credential check (also run in worker processes) --------------------------


def check_sd_jwt(sd_jwt: str, deep: bool = True) -> tuple[str | None, list[str], str | None]:
    """(recomputed leaf hex or None, problems, kid) of one stored SD-JWT.

    The leaf comes from the issuer-signed JWT alone. With ``deep``, the signature is
    checked with the key named by the JWT's ``kid`` (whether that key belongs to the
    issuer is for the caller to check against the chain) and every disclosure must match
    a digest of the signed payload (``signature_invalid``, ``claim_tampered``,
    ``malformed``, ``issuer_key_unknown``).
    """
    problems: list[str] = []
    header: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    if deep:
        def issuer_key(header: dict[str, Any], _payload: dict[str, Any]) -> Ed25519PublicKey:
            _, public = parse_key_id(header.get("kid"))
            return Ed25519PublicKey.from_public_bytes(public)

        try:
            verified = sdjwt.verify(sd_jwt, issuer_key=issuer_key)
            header, payload = verified.header, verified.payload
        except sdjwt.SdJwtError as exc:
            problems.append(exc.code)
        except InvalidInput:
            problems.append("issuer_key_unknown")
    else:
        try:
            parsed = sdjwt.parse(sd_jwt)
            header, payload = parsed.header, parsed.payload
        except sdjwt.SdJwtError as exc:
            problems.append(exc.code)
    try:
        if header is None or payload is None:  # the JWT alone, whatever its disclosures
            header, payload, _, _ = jose.decode_jws_unverified(sd_jwt.split("~", 1)[0])
        leaf = _hex(credential_leaf(payload))
    except (sdjwt.SdJwtError, LedgerError, AttributeError, TypeError, ValueError):
        return None, sorted(set(problems) | {"malformed"}), None
    kid = header.get("kid")
    return leaf, problems, kid if isinstance(kid, str) else None


def _check_many(sd_jwts: list[str], deep: bool) -> list[tuple[str | None, list[str], str | None]]:
    return [check_sd_jwt(s, deep) for s in sd_jwts]


# --- the audit ---------------------------------------------------------------------------


@dataclass
class _ChainScan:
    logs: list[dict[str, Any]]  # registry logs up to the head block, in chain order
    status_pairs: set[tuple[str, str]]  # (leaf, root) that ever had a StatusChanged


@dataclass
class _Batch:
    id: str
    kind: str
    status: str
    root: str
    leaf_count: int
    member_org: str
    block_number: int | None


class IntegrityAudit:
    """Audits the store against the chain; see the module docstring.

    ``deployment`` gives the deployment block (where log scans start) and which member
    each organisation is (to check who anchored a batch and who signed a credential);
    ``auditor_keys`` signs the report and ``anchoring`` anchors its hash (either may be
    None: the report is then left unsigned or unanchored). ``workers`` > 1 verifies
    SD-JWTs in that many processes.
    """

    def __init__(self, engine: Engine, client: ChainAPI, registry: AnchorRegistryContract, *,
                 auditor_keys: OrganisationKeys | None = None,
                 anchoring: AnchoringAPI | None = None,
                 deployment: Deployment | None = None,
                 deep: bool = True, workers: int = 1,
                 chunk_size: int = CHUNK_POSITIONS,
                 indexer_name: str = "contracts",
                 evaluation: SealedRecords | None = None) -> None:
        self.engine = engine
        self.evaluation = evaluation
        self.client = client
        self.registry = registry
        self.auditor_keys = auditor_keys
        self.anchoring = anchoring
        self.deployment = deployment
        self.deep = deep
        self.workers = max(1, int(workers))
        self.chunk_size = max(1, int(chunk_size))
        self.indexer_name = indexer_name
        if deployment is not None:
            self.from_block = int(deployment.deployed_block)
        elif anchoring is not None:
            self.from_block = int(anchoring.from_block)
        else:
            self.from_block = 0
        self.members: dict[str, int] = {
            org: int(info["member_id"])
            for org, info in (deployment.organisations.items() if deployment else ())}
        self._consortium: ConsortiumContract | None = None
        self._keys: dict[tuple[str, int], KeyInfo | None] = {}  # by key id and block read at
        self._event_names: dict[bytes, str] = {
            bytes(event_abi_to_log_topic(abi)): str(abi["name"])  # type: ignore[arg-type, typeddict-item]
            for abi in registry.contract.abi if abi.get("type") == "event"}
        self._pool: ProcessPoolExecutor | None = None

    # -- public API ----------------------------------------------------------------

    def start(self, requested_by: str) -> str:
        """Create a pending run, fixed to the current chain head; returns its id."""
        if not requested_by or len(requested_by) > 64:
            raise InvalidInput("requested_by must be 1 to 64 characters", code="bad_requester")
        head = self.client.block_number()
        with session_scope(self.engine) as session:
            cursor = session.get(IndexerCursor, self.indexer_name)
            index_block = (cursor.last_block if cursor is not None
                           and cursor.chain_id == self.client.chain_id else self.from_block - 1)
            run = AuditRun(requested_by=requested_by, chain_id=self.client.chain_id,
                           registry_address=self.registry.address.lower(),
                           from_block=self.from_block, head_block=head,
                           index_block=min(index_block, head))
            session.add(run)
        return run.id

    def get(self, run_id: str) -> AuditRun:
        with session_scope(self.engine) as session:
            run = session.get(AuditRun, run_id)
        if run is None:
            raise NotFound(f"no audit run {run_id}", code="audit_run_not_found")
        return run

    def findings(self, run_id: str) -> list[Finding]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_FINDING.c.kind, _FINDING.c.item, _FINDING.c.details_json)
                .where(_FINDING.c.run_id == run_id).order_by(_FINDING.c.seq)).all()
        return [Finding(kind, item, json.loads(details)) for kind, item, details in rows]

    def report(self, run_id: str) -> AuditReport:
        run = self.get(run_id)
        if run.report_json is None or run.report_hash is None:
            raise Conflict(f"audit run {run_id} has no report yet ({run.status}, {run.phase})",
                           code="audit_not_finished")
        anchor = None
        if run.report_batch_id is not None:
            with session_scope(self.engine) as session:
                batch = session.get(AnchorBatch, run.report_batch_id)
            if batch is not None:
                anchor = {"batch_id": batch.id, "root": batch.root, "tx_hash": batch.tx_hash,
                          "block_number": batch.block_number, "status": batch.status}
        return AuditReport(run.id, run.report_json.encode("utf-8"), run.report_hash,
                           run.report_signature, anchor)

    def resume_all(self, progress: Progress | None = None) -> list[str]:
        """Finish every run left pending or running (after a crash); returns the ids of
        those that finished (a run that fails again is left failed, with its error)."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(_RUN.c.id).where(_RUN.c.status.in_([AuditRunStatus.PENDING.value,
                                                           AuditRunStatus.RUNNING.value]))
                .order_by(_RUN.c.created_at, _RUN.c.id)).scalars().all()
        finished = []
        for run_id in ids:
            try:
                self.run(run_id, progress=progress)
            except LedgerError as exc:  # recorded on the run; the others may still finish
                log.warning("audit run %s failed: %s", run_id, exc.message)
            else:
                finished.append(run_id)
        return finished

    def run(self, run_id: str, *, progress: Progress | None = None) -> AuditRun:
        """Run (or resume) an audit to the end; ``progress`` is called after each commit."""
        run = self.get(run_id)
        if run.status == AuditRunStatus.DONE.value:
            return run
        if run.registry_address != self.registry.address.lower() or run.chain_id != self.client.chain_id:
            raise Conflict("this audit run was started against another chain or registry",
                           code="audit_chain_mismatch")
        with self.engine.begin() as conn:
            conn.execute(update(_RUN).where(_RUN.c.id == run_id).values(
                status=AuditRunStatus.RUNNING.value, error=None, updated_at=utcnow()))
        state = _State.load(self.get(run_id))
        try:
            with self._worker_pool():
                if state.phase in ("events", "batches"):
                    scan = self._scan_chain(state)
                    if state.phase == "events":
                        self._events_phase(state, scan, progress)
                    self._batches_phase(state, scan, progress)
                if state.phase == "report":
                    self._report_phase(state)
                if state.phase == "anchor":
                    self._anchor_phase(state)
        except BaseException as exc:
            if not (isinstance(exc, Conflict) and exc.code == "audit_run_busy"):
                self._mark_failed(run_id, exc)  # (a busy run belongs to the other worker)
            raise
        if progress is not None:
            progress(state.done, state.total, "done")
        return self.get(run_id)

    # -- bookkeeping -------------------------------------------------------------------

    @contextmanager
    def _worker_pool(self) -> Iterator[None]:
        if self.workers <= 1:
            yield
            return
        # spawn, not fork: the caller may hold threads (embedded chain, web server)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield
        finally:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _mark_failed(self, run_id: str, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, LedgerError) else f"{type(exc).__name__}: {exc}"
        try:
            with self.engine.begin() as conn:
                conn.execute(update(_RUN).where(_RUN.c.id == run_id).values(
                    status=AuditRunStatus.FAILED.value, error=message[:2000], updated_at=utcnow()))
        except Exception:  # noqa: BLE001 - the original error matters more
            log.exception("audit run %s: could not record the failure", run_id)

    def _commit(self, state: _State, findings: list[Finding], *, done: int,
                total: int | None = None, **values: Any) -> None:
        """Findings + the new cursor and progress, atomically; fails if the run moved."""
        new_cursor = json.dumps(state.cursor, sort_keys=True)
        rows = [{"run_id": state.run_id, "seq": state.finding_count + i, "kind": f.kind,
                 "item": f.item[:200], "details_json": canonical_json(f.details).decode("utf-8")}
                for i, f in enumerate(findings)]
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(_RUN)
                    .where(_RUN.c.id == state.run_id, _RUN.c.phase == state.committed_phase,
                           _RUN.c.cursor.is_not_distinct_from(state.committed_cursor))
                    .values(phase=state.phase, cursor=new_cursor,
                            finding_count=state.finding_count + len(findings),
                            progress_done=done,
                            progress_total=state.total if total is None else total,
                            updated_at=utcnow(),
                            **{"status": AuditRunStatus.RUNNING.value, **values}))
                if moved.rowcount != 1:
                    raise Conflict("the audit run was advanced by another worker",
                                   code="audit_run_busy")
                if rows:
                    conn.execute(insert(_FINDING), rows)
        except IntegrityError:
            raise Conflict("the audit run was advanced by another worker",
                           code="audit_run_busy") from None
        state.finding_count += len(findings)
        state.done = done
        if total is not None:
            state.total = total
        state.committed_phase, state.committed_cursor = state.phase, new_cursor

    # -- chain reads -------------------------------------------------------------------

    def _scan_chain(self, state: _State) -> _ChainScan:
        """Every registry log from the deployment block to the run's head (re-read on resume:
        the same range gives the same logs)."""
        logs: list[dict[str, Any]] = []
        pairs: set[tuple[str, str]] = set()
        start = state.from_block
        contract = self.registry.contract
        while start <= state.head_block:
            end = min(start + LOG_BLOCKS - 1, state.head_block)
            entries = self.client.get_logs(self.registry.address, start, end)
            for entry in entries:
                topics = entry["topics"]
                name = self._event_names.get(bytes(topics[0])) if topics else None
                if name is None:
                    continue
                decoded = contract.events[name]().process_log(entry)
                args = _jsonable(dict(decoded["args"]))
                logs.append({
                    "tx_hash": HexBytes(entry["transactionHash"]).to_0x_hex(),
                    "log_index": int(entry["logIndex"]),
                    "block_number": int(entry["blockNumber"]),
                    "block_hash": HexBytes(entry["blockHash"]).to_0x_hex(),
                    "event": name, "args": args})
                if name == "StatusChanged":
                    pairs.add((str(args["leaf"]), str(args["root"])))
            start = end + 1
        return _ChainScan(logs, pairs)

    def _root_info(self, root: str, block: int) -> RootInfo:
        return self.registry.root_info(root, block=block)

    def consortium(self) -> ConsortiumContract:
        if self._consortium is None:
            self._consortium = ConsortiumContract.at(self.client, self.registry.consortium_address())
        return self._consortium

    def _key_info(self, kid: str, block: int) -> KeyInfo | None:
        # By block too: a key read at the run's head may be retired by the block of a batch
        # anchored after it.
        if (kid, block) not in self._keys:
            try:
                _, public = parse_key_id(kid)
            except InvalidInput:
                self._keys[kid, block] = None
            else:
                self._keys[kid, block] = self.consortium().key_info(public, block=block)
        return self._keys[kid, block]

    # -- phase 1: events ---------------------------------------------------------------

    def _events_phase(self, state: _State, scan: _ChainScan, progress: Progress | None) -> None:
        if state.cursor.get("next") is None:  # first entry: fix the total
            with self.engine.connect() as conn:
                batches = conn.execute(select(func.count()).select_from(_BATCH)
                                       .where(_BATCH.c.created_at <= state.created_at)).scalar_one()
                leaves = conn.execute(
                    select(func.count()).select_from(_LEAF.join(_BATCH, _LEAF.c.batch_id == _BATCH.c.id))
                    .where(_BATCH.c.kind == "credential",
                           _BATCH.c.created_at <= state.created_at)).scalar_one()
            state.cursor["next"] = 0
            self._commit(state, [], done=0, total=int(batches) + int(leaves) + len(scan.logs))
        logs = scan.logs
        while state.cursor["next"] < len(logs):
            start = int(state.cursor["next"])
            chunk = logs[start:start + CHUNK_EVENTS]
            findings = self._check_events(state, chunk)
            state.cursor["next"] = start + len(chunk)
            self._commit(state, findings, done=state.done + len(chunk))
            if progress is not None:
                progress(state.done, state.total, "events")
        extra = self._rows_not_on_chain(state, scan)
        state.phase, state.cursor = "batches", {"stats": state.stats}
        self._commit(state, extra, done=state.done)

    def _rows_not_on_chain(self, state: _State, scan: _ChainScan) -> list[Finding]:
        """Index rows of the registry, up to the indexed block, that no chain log matches."""
        on_chain = {(e["tx_hash"], e["log_index"]) for e in scan.logs}
        findings = []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_EVENT.c.tx_hash, _EVENT.c.log_index, _EVENT.c.event, _EVENT.c.block_number)
                .where(_EVENT.c.chain_id == state.chain_id,
                       _EVENT.c.contract == self.registry.address.lower(),
                       _EVENT.c.block_number >= state.from_block,
                       _EVENT.c.block_number <= state.index_block)
                .order_by(_EVENT.c.block_number, _EVENT.c.tx_hash, _EVENT.c.log_index))
            for row in rows:
                if (row.tx_hash, int(row.log_index)) not in on_chain:
                    findings.append(Finding(
                        FindingKind.OFFCHAIN_DATA_CHANGED.value, f"{row.tx_hash}:{row.log_index}",
                        {"table": "chain_event", "reasons": ["index_row_not_on_chain"],
                         "event": row.event, "block_number": int(row.block_number),
                         "tx_hash": row.tx_hash, "log_index": int(row.log_index)}))
        return findings

    def _check_events(self, state: _State, chunk: Sequence[dict[str, Any]]) -> list[Finding]:
        stats = state.stats
        stats["chain_events"] = stats.get("chain_events", 0) + len(chunk)
        indexed = [e for e in chunk if e["block_number"] <= state.index_block]
        stats["events_not_yet_indexed"] = (stats.get("events_not_yet_indexed", 0)
                                           + len(chunk) - len(indexed))
        rows: dict[tuple[str, int], Any] = {}
        with self.engine.connect() as conn:
            for part in _chunks(sorted({e["tx_hash"] for e in indexed}), IN_LIMIT):
                for row in conn.execute(
                        select(_EVENT.c.tx_hash, _EVENT.c.log_index, _EVENT.c.contract,
                               _EVENT.c.event, _EVENT.c.block_number, _EVENT.c.block_hash,
                               _EVENT.c.args_json)
                        .where(_EVENT.c.chain_id == state.chain_id, _EVENT.c.tx_hash.in_(part))):
                    rows[(row.tx_hash, int(row.log_index))] = row
        registry = self.registry.address.lower()
        findings = []
        for event in indexed:
            item = f"{event['tx_hash']}:{event['log_index']}"
            where = {"event": event["event"], "block_number": event["block_number"],
                     "tx_hash": event["tx_hash"], "log_index": event["log_index"],
                     "args": event["args"]}
            found = rows.get((event["tx_hash"], event["log_index"]))
            if found is None:
                findings.append(Finding(FindingKind.EVENT_MISSING_FROM_INDEX.value, item, where))
                continue
            differs = []
            if found.contract != registry:
                differs.append("contract")
            if found.event != event["event"]:
                differs.append("event")
            if int(found.block_number) != event["block_number"] or found.block_hash != event["block_hash"]:
                differs.append("block")
            try:
                same_args = json.loads(found.args_json) == event["args"]
            except ValueError:
                same_args = False
            if not same_args:
                differs.append("args")
            if differs:
                findings.append(Finding(FindingKind.OFFCHAIN_DATA_CHANGED.value, item, {
                    **where, "table": "chain_event", "reasons": [f"index_{d}_differs" for d in differs]}))
        return findings

    # -- phase 2: batches and their items ------------------------------------------------

    def _next_batch(self, after: str | None, state: _State) -> _Batch | None:
        query = (select(_BATCH.c.id, _BATCH.c.kind, _BATCH.c.status, _BATCH.c.root,
                        _BATCH.c.leaf_count, _BATCH.c.member_org, _BATCH.c.block_number)
                 .where(_BATCH.c.created_at <= state.created_at)
                 .order_by(_BATCH.c.id).limit(1))
        if after is not None:
            query = query.where(_BATCH.c.id > after)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _Batch(row.id, row.kind, row.status, row.root, int(row.leaf_count), row.member_org,
                      None if row.block_number is None else int(row.block_number))

    def _get_batch(self, batch_id: str) -> _Batch:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_BATCH.c.id, _BATCH.c.kind, _BATCH.c.status, _BATCH.c.root,
                       _BATCH.c.leaf_count, _BATCH.c.member_org, _BATCH.c.block_number)
                .where(_BATCH.c.id == batch_id)).first()
        if row is None:  # deleted while the run was interrupted
            return _Batch(batch_id, "", "deleted", "0x" + "00" * 32, 0, "", None)
        return _Batch(row.id, row.kind, row.status, row.root, int(row.leaf_count), row.member_org,
                      None if row.block_number is None else int(row.block_number))

    def _read_block(self, state: _State, batch: _Batch) -> int:
        """The head block, or the batch's own block when it was anchored after the head."""
        if batch.block_number is not None and batch.block_number > state.head_block:
            return batch.block_number
        return state.head_block

    def _batches_phase(self, state: _State, scan: _ChainScan, progress: Progress | None) -> None:
        pending: list[Finding] = []
        work = 0
        done = state.done
        while True:
            cur = state.cursor
            if cur.get("batch") is None:
                batch = self._next_batch(cur.get("after"), state)
                if batch is None:
                    break
                findings, end = self._check_batch(state, batch)
                pending.extend(findings)
                if batch.kind == "evaluation_data" and self.evaluation is not None:
                    pending.extend(self._check_evaluation(state, batch))
                cur.update(batch=batch.id, pos=0, end=end, matched=0)
                state.stats["batches"] = state.stats.get("batches", 0) + 1
                done += 1
                work += 1
            else:
                batch = self._get_batch(cur["batch"])
            if batch.kind == "credential" and cur["pos"] < cur["end"]:
                lo = int(cur["pos"])
                hi = min(lo + self.chunk_size, int(cur["end"]))
                findings, matched, leaves = self._check_positions(state, scan, batch, lo, hi)
                pending.extend(findings)
                cur["pos"], cur["matched"] = hi, int(cur["matched"]) + matched
                done += leaves
                work += hi - lo
            if batch.kind != "credential" or cur["pos"] >= cur["end"]:
                if batch.kind == "credential":
                    pending.extend(self._stray_credentials(state, batch, int(cur["matched"]), pending))
                cur.pop("batch"), cur.pop("pos"), cur.pop("end"), cur.pop("matched")
                cur["after"] = batch.id
            if work >= self.chunk_size:
                self._commit(state, pending, done=done)
                pending, work = [], 0
                if progress is not None:
                    progress(state.done, state.total, "batches")
        state.phase = "report"
        self._commit(state, pending, done=done, finished_at=utcnow())
        if progress is not None:
            progress(state.done, state.total, "batches")

    def _check_batch(self, state: _State, batch: _Batch) -> tuple[list[Finding], int]:
        """Batch-level checks; returns the findings and the end of its position range."""
        with self.engine.connect() as conn:
            leaves = conn.execute(
                select(_LEAF.c.position, _LEAF.c.leaf_hash)
                .where(_LEAF.c.batch_id == batch.id).order_by(_LEAF.c.position)).all()
            max_cred = conn.execute(
                select(func.max(_CRED.c.position)).where(_CRED.c.batch_id == batch.id)).scalar()
        state.stats["anchored_leaves"] = state.stats.get("anchored_leaves", 0) + len(leaves)
        end = max(batch.leaf_count, (leaves[-1].position + 1) if leaves else 0,
                  (int(max_cred) + 1) if max_cred is not None else 0)
        findings: list[Finding] = []
        base = {"batch_id": batch.id, "kind": batch.kind, "root": batch.root,
                "stored_status": batch.status, "member_org": batch.member_org}

        changed: list[str] = []
        rebuilt: str | None = None
        if not leaves:
            changed.append("no_leaves")
        else:
            if [p for p, _ in leaves] != list(range(len(leaves))):
                changed.append("positions_not_contiguous")
            if len(leaves) != batch.leaf_count:
                changed.append("leaf_count_differs")
            try:
                rebuilt = _hex(MerkleTree([bytes.fromhex(h[2:]) for _, h in leaves]).root)
            except (InvalidInput, ValueError):
                changed.append("leaves_malformed")
            if rebuilt is not None and rebuilt != batch.root:
                changed.append("root_differs")

        block = self._read_block(state, batch)
        try:
            info = self._root_info(batch.root, block)
        except InvalidInput:  # a malformed stored root
            info = RootInfo(b"\x00" * 32, 0, None, 0, 0)
            changed.append("root_malformed")
        chain = {"anchored": info.anchored, "member_id": info.member_id,
                 "kind": info.kind.name.lower() if info.kind else None,
                 "count": info.count, "block_number": info.block_number}
        if info.anchored and batch.block_number is not None and batch.block_number != info.block_number:
            changed.append("anchor_block_differs")
        if changed:
            details = {**base, "reasons": changed, "stored_leaf_count": batch.leaf_count,
                       "leaf_rows": len(leaves), "rebuilt_root": rebuilt,
                       "stored_block_number": batch.block_number, "chain": chain}
            if rebuilt is not None and rebuilt != batch.root:
                details["rebuilt_root_anchored"] = self._root_info(rebuilt, block).anchored
            findings.append(Finding(FindingKind.OFFCHAIN_DATA_CHANGED.value, batch.id, details))

        not_anchored: list[str] = []
        if not info.anchored:
            not_anchored.append("root_not_on_chain")
        else:
            member = self.members.get(batch.member_org)
            if member is not None and info.member_id != member:
                not_anchored.append("anchored_by_another_member")
            elif member is None and self.members:
                not_anchored.append("member_org_unknown")
            if info.count != batch.leaf_count:
                not_anchored.append("count_differs")
            if info.kind is None or info.kind.name.lower() != batch.kind:
                not_anchored.append("kind_differs")
        if not_anchored:
            findings.append(Finding(FindingKind.BATCH_NOT_ANCHORED.value, batch.id, {
                **base, "reasons": not_anchored, "stored_leaf_count": batch.leaf_count,
                "expected_member_id": self.members.get(batch.member_org), "chain": chain,
                "read_at_block": block}))
        return findings, end

    def _check_evaluation(self, state: _State, batch: _Batch) -> list[Finding]:
        """The sealed term records behind an evaluation batch: each anchored leaf must be a seal's
        leaf, and equal the hash of its stored document and of the document the live rows make
        now (an edit in SQL after sealing changes the latter); the school's signature must
        verify, by a key the chain lists for the school."""
        assert self.evaluation is not None
        with self.engine.connect() as conn:
            anchored = dict(conn.execute(select(_LEAF.c.position, _LEAF.c.leaf_hash)
                                         .where(_LEAF.c.batch_id == batch.id)).all())
        findings: list[Finding] = []
        seen: set[int] = set()
        block = self._read_block(state, batch)
        checks = self.evaluation.seals_in_batch(batch.id)
        state.stats["evaluation_records"] = state.stats.get("evaluation_records", 0) + len(checks)
        for check in checks:
            leaf = anchored.get(check.position)
            seen.add(check.position)
            reasons = []
            if leaf != check.leaf_hash:
                reasons.append("leaf_differs")
            if check.document_leaf is None:
                reasons.append("document_unreadable")
            elif check.document_leaf != leaf:
                reasons.append("document_changed")
            if check.live_leaf is None:
                reasons.append("records_unreadable")
            elif check.live_leaf != leaf:
                reasons.append("records_changed_after_sealing")
            if not check.signature_valid:
                reasons.append("signature_invalid")
            elif check.kid is not None:
                reasons.extend(self._key_problems(check.kid, batch.member_org, batch, block))
            if reasons:
                findings.append(Finding(FindingKind.EVALUATION_RECORD_CHANGED.value, check.seal_id, {
                    "batch_id": batch.id, "term": check.term, "student_card": check.student_card,
                    "position": check.position, "anchored_leaf": leaf, "stored_leaf": check.leaf_hash,
                    "document_leaf": check.document_leaf, "live_leaf": check.live_leaf, "reasons": reasons}))
        for position in sorted(set(anchored) - seen):
            findings.append(Finding(FindingKind.ITEM_MISSING.value, str(anchored[position]), {
                "batch_id": batch.id, "kind": batch.kind, "position": position,
                "reasons": ["sealed_record_missing"]}))
        return findings

    def _check_positions(self, state: _State, scan: _ChainScan, batch: _Batch, lo: int,
                         hi: int) -> tuple[list[Finding], int, int]:
        """Positions lo..hi-1 of a credential batch: (findings, credentials matched, leaves)."""
        cred_cols = (_CRED.c.id, _CRED.c.batch_id, _CRED.c.position, _CRED.c.leaf_hash,
                     _CRED.c.sd_jwt, _CRED.c.status, _CRED.c.superseded_by, _CRED.c.issuer_org)
        with self.engine.connect() as conn:
            joined = conn.execute(
                select(_LEAF.c.position.label("leaf_position"), _LEAF.c.leaf_hash.label("anchored"),
                       *cred_cols)
                .select_from(_LEAF.outerjoin(_CRED, _CRED.c.leaf_hash == _LEAF.c.leaf_hash))
                .where(_LEAF.c.batch_id == batch.id, _LEAF.c.position >= lo, _LEAF.c.position < hi)
                .order_by(_LEAF.c.position)).all()
            # Leaves with no credential by leaf hash: is there one at that position anyway
            # (its stored leaf edited)? Positions with no leaf row: any credential there?
            lonely = [r.leaf_position for r in joined if r.id is None or r.batch_id != batch.id
                      or r.position != r.leaf_position]
            with_leaf = {r.leaf_position for r in joined}
            fallback: dict[int, Any] = {}
            if lonely or len(with_leaf) < hi - lo:
                for row in conn.execute(select(*cred_cols).where(
                        _CRED.c.batch_id == batch.id, _CRED.c.position >= lo, _CRED.c.position < hi)):
                    fallback.setdefault(int(row.position), row)
            projected = {row.leaf: int(row.status) for row in conn.execute(
                select(_STATUS.c.leaf, _STATUS.c.status).where(_STATUS.c.root == batch.root))}

        # position -> (anchored leaf or None, credential row or None)
        slots: dict[int, tuple[str | None, Any]] = {}
        for r in joined:
            cred = r if (r.id is not None and r.batch_id == batch.id
                         and r.position == r.leaf_position) else None
            slots[int(r.leaf_position)] = (r.anchored, cred)
        for position in range(lo, hi):
            anchored, cred = slots.get(position, (None, None))
            if cred is None and position in fallback:
                cred = fallback[position]
            if anchored is not None or cred is not None:
                slots[position] = (anchored, cred)

        creds = [(pos, anchored, cred) for pos, (anchored, cred) in sorted(slots.items())
                 if cred is not None]
        checked = self._check_sd_jwts([c.sd_jwt for _, _, c in creds])
        state.stats["credentials"] = state.stats.get("credentials", 0) + len(creds)

        findings: list[Finding] = []
        block = self._read_block(state, batch)
        status_checks: list[tuple[int, str | None, Any]] = []
        by_position = {pos: result for (pos, _, _), result in zip(creds, checked, strict=True)}
        for position, (anchored, cred) in sorted(slots.items()):
            if cred is None:
                findings.append(Finding(FindingKind.ITEM_MISSING.value, str(anchored), {
                    "leaf": anchored, "batch_id": batch.id, "position": position,
                    "root": batch.root, "kind": batch.kind, "reasons": ["credential_row_missing"]}))
                continue
            leaf, problems, kid = by_position[position]
            reasons = list(problems)
            if leaf is not None and leaf != cred.leaf_hash:
                reasons.append("leaf_differs_from_sd_jwt")
            if anchored is None:
                reasons.append("no_anchored_leaf_at_position")
            elif cred.leaf_hash != anchored:
                reasons.append("stored_leaf_not_anchored")
            elif leaf is not None and leaf != anchored:
                reasons.append("sd_jwt_not_anchored")
            if self.deep and kid is not None and "issuer_key_unknown" not in reasons:
                reasons.extend(self._key_problems(kid, cred.issuer_org, batch, block))
            if reasons:
                findings.append(Finding(FindingKind.OFFCHAIN_DATA_CHANGED.value, cred.id, {
                    "reasons": sorted(set(reasons)), "batch_id": batch.id, "position": position,
                    "stored_leaf": cred.leaf_hash, "recomputed_leaf": leaf,
                    "anchored_leaf": anchored, "issuer_org": cred.issuer_org}))
            chain_leaf = anchored or cred.leaf_hash
            if ((chain_leaf, batch.root) in scan.status_pairs or cred.status != "valid"
                    or chain_leaf in projected):
                status_checks.append((position, chain_leaf, cred))
        findings.extend(self._check_statuses(state, batch, block, status_checks, projected))
        return findings, len(creds), len(joined)

    def _check_sd_jwts(self, sd_jwts: list[str]) -> list[tuple[str | None, list[str], str | None]]:
        if self._pool is None or len(sd_jwts) < POOL_MIN:
            return _check_many(sd_jwts, self.deep)
        size = -(-len(sd_jwts) // (self.workers * 2))
        parts = [sd_jwts[i:i + size] for i in range(0, len(sd_jwts), size)]
        out: list[tuple[str | None, list[str], str | None]] = []
        for result in self._pool.map(_check_many, parts, [self.deep] * len(parts)):
            out.extend(result)
        return out

    def _key_problems(self, kid: str, issuer_org: str, batch: _Batch, block: int) -> list[str]:
        """Is the kid's key one the chain lists for the issuing member, valid when anchored?"""
        try:
            did, _ = parse_key_id(kid)
        except InvalidInput:
            return ["issuer_key_unknown"]
        member = self.members.get(issuer_org)
        if member is not None:
            expected = issuer_did(self.client.chain_id, self.consortium().address, member)
            if did != expected:
                return ["signed_by_another_issuer"]
        info = self._key_info(kid, block)
        if info is None or not info.known:
            return ["signing_key_not_registered"]
        if member is not None and info.member_id != member:
            return ["signing_key_of_another_member"]
        if batch.block_number is not None and not info.valid_at(batch.block_number):
            return ["signing_key_not_valid_when_anchored"]
        return []

    def _check_statuses(self, state: _State, batch: _Batch, block: int,
                        checks: list[tuple[int, str | None, Any]],
                        projected: dict[str, int]) -> list[Finding]:
        findings: list[Finding] = []
        superseding = [c.superseded_by for _, _, c in checks if c.superseded_by]
        new_leaves: dict[str, str] = {}
        if superseding:
            with self.engine.connect() as conn:
                for part in _chunks(superseding, IN_LIMIT):
                    new_leaves.update((row.id, row.leaf_hash) for row in conn.execute(
                        select(_CRED.c.id, _CRED.c.leaf_hash).where(_CRED.c.id.in_(part))))
        for position, leaf, cred in checks:
            if leaf is None:
                continue
            state.stats["status_reads"] = state.stats.get("status_reads", 0) + 1
            try:
                info = self.registry.status_of(leaf, batch.root, block=block)
            except InvalidInput:
                continue  # malformed stored hashes: reported as changed data already
            reasons = self._status_reasons(cred, info, new_leaves)
            if reasons:  # confirm at the latest block: a change racing the audit is not a finding
                info = self.registry.status_of(leaf, batch.root)
                reasons = self._status_reasons(cred, info, new_leaves)
            if reasons:
                indexed = projected.get(leaf)
                findings.append(Finding(FindingKind.STATUS_DIFFERS.value, cred.id, {
                    "reasons": reasons, "leaf": leaf, "root": batch.root, "batch_id": batch.id,
                    "position": position, "stored": cred.status,
                    "chain": info.status.name.lower(), "chain_reason": info.reason,
                    "chain_block": info.block_number,
                    "chain_superseded_by": _hex(info.superseded_by) if info.superseded_by else None,
                    "stored_superseded_by": cred.superseded_by,
                    "indexed": None if indexed is None else LeafStatus(indexed).name.lower()}))
        return findings

    @staticmethod
    def _status_reasons(cred: Any, info: Any, new_leaves: dict[str, str]) -> list[str]:
        agrees = _STATUS_AGREES.get(cred.status)
        if agrees is None:
            return ["unknown_stored_status"]
        if info.status not in agrees:
            return ["status_differs"]
        if info.status is LeafStatus.SUPERSEDED and cred.superseded_by:
            expected = new_leaves.get(cred.superseded_by)
            if expected is None or info.superseded_by is None or _hex(info.superseded_by) != expected:
                return ["superseded_by_differs"]
        return []

    def _stray_credentials(self, state: _State, batch: _Batch, matched: int,
                           pending: list[Finding]) -> list[Finding]:
        """Credentials of the batch that no anchored position accounted for."""
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(_CRED)
                                 .where(_CRED.c.batch_id == batch.id)).scalar_one()
            if int(count) == matched:
                return []
            leaves = {int(row.position): row.leaf_hash for row in conn.execute(
                select(_LEAF.c.position, _LEAF.c.leaf_hash).where(_LEAF.c.batch_id == batch.id))}
            rows = conn.execute(select(_CRED.c.id, _CRED.c.position, _CRED.c.leaf_hash)
                                .where(_CRED.c.batch_id == batch.id).order_by(_CRED.c.id)).all()
            reported = set(conn.execute(select(_FINDING.c.item).where(
                _FINDING.c.run_id == state.run_id,
                _FINDING.c.kind == FindingKind.OFFCHAIN_DATA_CHANGED.value)).scalars())
        reported |= {f.item for f in pending if f.kind == FindingKind.OFFCHAIN_DATA_CHANGED.value}
        findings = []
        claimed: set[int] = set()
        for row in rows:
            position = int(row.position)
            if leaves.get(position) == row.leaf_hash and position not in claimed:
                claimed.add(position)
                continue
            if row.id in reported:
                continue
            findings.append(Finding(FindingKind.OFFCHAIN_DATA_CHANGED.value, row.id, {
                "reasons": ["not_at_its_anchored_position"], "batch_id": batch.id,
                "position": position, "stored_leaf": row.leaf_hash,
                "anchored_leaf": leaves.get(position)}))
        return findings

    # -- phases 3 and 4: the report ----------------------------------------------------

    def build_report(self, run_id: str) -> dict[str, Any]:
        run = self.get(run_id)
        state = _State.load(run)
        findings = self.findings(run_id)
        by_kind = {kind.value: 0 for kind in FindingKind}
        for f in findings:
            by_kind[f.kind] += 1
        stats = state.stats
        auditor = None
        if self.auditor_keys is not None:
            auditor = {"org_id": self.auditor_keys.org_id,
                       "member_id": self.members.get(self.auditor_keys.org_id),
                       "public_key": self.auditor_keys.ed25519_public_hex}
        return {
            "type": reports.REPORT_TYPE, "version": 1,
            "run_id": run.id, "requested_by": run.requested_by, "auditor": auditor,
            "started_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
            "checks": {"deep": self.deep},
            "chain": {"chain_id": run.chain_id, "anchor_registry": run.registry_address,
                      "from_block": run.from_block, "head_block": run.head_block,
                      "indexed_to_block": run.index_block},
            "scope": {"batches": stats.get("batches", 0),
                      "anchored_leaves": stats.get("anchored_leaves", 0),
                      "credentials": stats.get("credentials", 0),
                      "chain_events": stats.get("chain_events", 0),
                      "events_not_yet_indexed": stats.get("events_not_yet_indexed", 0),
                      "status_reads": stats.get("status_reads", 0)},
            "summary": {"findings": len(findings), "by_kind": by_kind},
            "findings": [{"seq": i, "kind": f.kind, "item": f.item, "details": f.details}
                         for i, f in enumerate(findings)],
        }

    def _report_phase(self, state: _State) -> None:
        data = reports.canonical_report(self.build_report(state.run_id))
        signature = (reports.sign_report(data, self.auditor_keys).hex()
                     if self.auditor_keys is not None else None)
        state.phase = "anchor"
        self._commit(state, [], done=state.done, report_json=data.decode("utf-8"),
                     report_hash=_hex(reports.report_hash(data)), report_signature=signature)

    def _anchor_phase(self, state: _State) -> None:
        run = self.get(state.run_id)
        values: dict[str, Any] = {"status": AuditRunStatus.DONE.value}
        if self.anchoring is not None and self.auditor_keys is not None and run.report_json:
            batch = reports.anchor_report(self.anchoring, self.auditor_keys.org_id,
                                          run.report_json.encode("utf-8"),
                                          idempotency_key=f"audit-report:{run.id}")
            values["report_batch_id"] = batch.id
        state.phase = "done"
        self._commit(state, [], done=state.total, **values)


@dataclass
class _State:
    """A run's position, as committed (and as being advanced by the current chunk)."""

    run_id: str
    created_at: datetime
    chain_id: int
    from_block: int
    head_block: int
    index_block: int
    phase: str
    cursor: dict[str, Any]
    committed_phase: str
    committed_cursor: str | None
    finding_count: int
    done: int
    total: int

    @property
    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.cursor.setdefault("stats", {})
        return stats

    @classmethod
    def load(cls, run: AuditRun) -> _State:
        cursor = json.loads(run.cursor) if run.cursor else {}
        assert run.chain_id is not None and run.head_block is not None
        return cls(run.id, run.created_at, run.chain_id, run.from_block or 0, run.head_block,
                   run.index_block if run.index_block is not None else -1, run.phase, cursor,
                   run.phase, run.cursor, run.finding_count, run.progress_done, run.progress_total)
