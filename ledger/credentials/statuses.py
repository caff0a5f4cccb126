"""Credential rows follow the statuses on chain.

A credential's status is decided on chain; the ``credential`` row keeps a copy, with the
note that only the node where the change was made knows. The copy can fall behind: a
change made through another node (the bureau revokes a school's credential), or one whose
chain transaction went through while the process stopped before writing the row. The
indexer keeps every leaf's latest status in ``leaf_status``; :func:`follow_chain_statuses`
writes it into each credential row that differs, without a note.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, and_, select, update

from ledger.anchoring.models import AnchorBatch
from ledger.contracts.bindings import LeafStatus
from ledger.credentials.models import CredentialRecord
from ledger.indexer.models import LeafStatusRow
from ledger.store.columns import utcnow

STATUS_NAMES = {LeafStatus.VALID: "valid", LeafStatus.REVOKED: "revoked",
                LeafStatus.SUSPENDED: "suspended", LeafStatus.REINSTATED: "valid",
                LeafStatus.SUPERSEDED: "superseded"}

_CRED = CredentialRecord.__table__  # type: ignore[attr-defined]
_BATCH = AnchorBatch.__table__  # type: ignore[attr-defined]
_STATUS = LeafStatusRow.__table__  # type: ignore[attr-defined]


def follow_chain_statuses(engine: Engine, since_block: int = 0) -> tuple[int, int]:
    """Write the chain's status into every credential row whose leaf changed status at or
    after ``since_block`` and whose row says otherwise. Returns (rows written, the last
    block seen), the block to pass next time.

    Each row is written only if its status is still the one read here, so a change this
    node is writing at the same moment (with its note) is never overwritten."""
    with engine.connect() as conn:
        changed = conn.execute(
            select(_CRED.c.id, _CRED.c.status, _CRED.c.superseded_by, _STATUS.c.status.label("chain"),
                   _STATUS.c.reason, _STATUS.c.superseded_by.label("new_leaf"), _STATUS.c.block_number)
            .select_from(_STATUS.join(_CRED, _CRED.c.leaf_hash == _STATUS.c.leaf).join(
                _BATCH, and_(_BATCH.c.id == _CRED.c.batch_id, _BATCH.c.root == _STATUS.c.root)))
            .where(_STATUS.c.block_number >= since_block)).all()
    seen = max((row.block_number for row in changed), default=since_block)
    stale = [row for row in changed if STATUS_NAMES[LeafStatus(row.chain)] != row.status]
    if not stale:
        return 0, seen  # the usual case: no write transaction, no write lock
    written = 0
    now = utcnow()
    # A write transaction from BEGIN (SQLite would refuse to turn a reading one into a
    # writing one once another connection has committed); the rows are read again inside it
    # through the status condition of each UPDATE.
    with engine.execution_options(sqlite_immediate=True).begin() as conn:
        new_ids = _ids_of_leaves(conn, [row.new_leaf for row in stale if row.new_leaf])
        for row in stale:
            values = {"status": STATUS_NAMES[LeafStatus(row.chain)], "status_reason": row.reason,
                      "status_note": None, "status_changed_at": now}
            if row.new_leaf:
                values["superseded_by"] = new_ids.get(row.new_leaf, row.superseded_by)
            written += conn.execute(
                update(_CRED).where(_CRED.c.id == row.id, _CRED.c.status == row.status)
                .values(**values)).rowcount
    return written, seen


def _ids_of_leaves(conn: Connection, leaves: list[str]) -> dict[str, str]:
    if not leaves:
        return {}
    rows = conn.execute(select(_CRED.c.leaf_hash, _CRED.c.id).where(_CRED.c.leaf_hash.in_(leaves))).all()
    return {leaf: cid for leaf, cid in rows}
