"""Integrity audit: the store against the chain, every finding kind, resume, the signed report.

Each test gets its own network (embedded chain, SQLite, demo consortium) with credentials
issued through the real CredentialService, tampers with one thing behind the service's back
(SQL, or the contract directly) and checks the audit reports exactly that.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from api.cli import main
from api.pages import audit_report_page
from ledger.audit import integrity
from ledger.audit.integrity import Finding, IntegrityAudit, check_sd_jwt
from ledger.audit.report import canonical_report, report_hash, to_csv, verify_report
from ledger.contracts.bindings import AnchorRegistryContract
from ledger.credentials import jose, sdjwt
from ledger.credentials.did import issuer_did, key_id
from ledger.credentials.roster import parse_one
from ledger.credentials.types import CredentialType
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.node import Node, NodeServices, init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.credential_fixtures import transcript_row

REPO = Path(__file__).resolve().parents[1]


def degree_row(n: int) -> Any:
    return parse_one({"holder_name": f"学生{n:05d}", "student_id": f"D2026{n:05d}",
                      "degree_name": "工学学士", "field": "工学", "conferral_date": "2026-06-30",
                      "certificate_number": f"10001-2026-{n:05d}"}, CredentialType.DEGREE)


@dataclass
class World:
    node: Node
    services: NodeServices
    registry: AnchorRegistryContract
    batches: list[Any]  # IssuedBatch

    def audit(self, **kwargs: Any) -> IntegrityAudit:
        kwargs.setdefault("deployment", self.node.deployment)
        kwargs.setdefault("chunk_size", 4)
        return IntegrityAudit(self.node.engine, self.node.client, self.registry, **kwargs)

    def findings(self, **kwargs: Any) -> list[Finding]:
        audit = self.audit(**kwargs)
        run_id = audit.start("tests")
        run = audit.run(run_id)
        assert run.status == "done", run.error
        return audit.findings(run_id)

    def sql(self, statement: str, **params: Any) -> int:
        with self.node.engine.begin() as conn:
            return int(conn.execute(text(statement), params).rowcount)  # type: ignore[attr-defined]

    def credential(self, batch: int = 0, index: int = 0) -> Any:
        return self.batches[batch].credentials[index]


def _open_world(data_dir: Path, database_url: str = "") -> World:
    node = init_network(Settings(data_dir=data_dir, database_url=database_url), DEMO_CONSORTIUM)
    services = NodeServices(node)
    svc = services.credentials
    batches = [
        svc.issue("school-a", CredentialType.DEGREE, [degree_row(n) for n in range(10)]),
        svc.issue("school-b", CredentialType.DEGREE, [degree_row(100 + n) for n in range(3)]),
        svc.issue("school-a", CredentialType.TRANSCRIPT,
                  [parse_one(transcript_row(n, courses=2), CredentialType.TRANSCRIPT) for n in range(5)]),
    ]
    # A correction (supersede) and a revocation through the service: the store agrees.
    svc.change_status("school-a", batches[2].credentials[4].credential_id, "revoke", reason=3)
    svc.correct("school-a", batches[2].credentials[3].credential_id,
                parse_one(transcript_row(3, courses=3), CredentialType.TRANSCRIPT))
    node.indexer().run_once()
    _, registry = node.contracts()
    return World(node, services, registry, batches)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "audit tests")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()


@pytest.fixture
def world(tmp_path: Path, env: None) -> Iterator[World]:
    w = _open_world(tmp_path / "data")
    try:
        yield w
    finally:
        w.node.close()


def kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.kind, f.item) for f in findings]


# --- a clean store ---------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"chunk_size": 1}, {"chunk_size": 1000},
                                     {"deep": False}])
def test_a_clean_store_has_no_findings(world: World, options: dict[str, Any]) -> None:
    audit = world.audit(**options)
    run_id = audit.start("tests")
    assert audit.get(run_id).status == "pending"
    run = audit.run(run_id)
    assert run.status == "done" and run.finding_count == 0 and audit.findings(run_id) == []
    assert run.progress_done == run.progress_total > 0
    scope = audit.build_report(run_id)["scope"]
    # 10 + 3 + 5 issued, plus the correction: 19 credentials in 4 batches.
    assert scope["credentials"] == scope["anchored_leaves"] == 19 and scope["batches"] == 4
    # 4 Anchored + 1 revoke + 1 supersede; only the two changed leaves were read with statusOf.
    assert scope["chain_events"] == 6 and scope["status_reads"] == 2


# --- off-chain data changed --------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _edit_payload(sd_jwt: str) -> str:
    jwt, rest = sd_jwt.split("~", 1)
    header, payload, signature = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["validFrom"] = "2001-01-01T00:00:00Z"
    return f"{header}.{_b64(claims)}.{signature}~{rest}"


def _edit_disclosure(sd_jwt: str) -> str:
    parts = sd_jwt.split("~")
    raw = parts[1]
    salt, name, _ = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    parts[1] = base64.urlsafe_b64encode(
        json.dumps([salt, name, "篡改 tampered"], ensure_ascii=False).encode()).rstrip(b"=").decode()
    return "~".join(parts)


@pytest.mark.parametrize(("edit", "reasons"), [
    ("payload", {"leaf_differs_from_sd_jwt", "sd_jwt_not_anchored", "signature_invalid"}),
    ("disclosure", {"claim_tampered"}),
    ("leaf_hash", {"leaf_differs_from_sd_jwt", "stored_leaf_not_anchored"}),
])
def test_an_edited_credential_row_is_reported_as_changed(world: World, edit: str,
                                                         reasons: set[str]) -> None:
    issued = world.credential(0, 6)
    record = world.services.credentials.get(issued.credential_id)
    if edit == "leaf_hash":
        world.sql("UPDATE credential SET leaf_hash = :h WHERE id = :id", h="0x" + "ab" * 32,
                  id=issued.credential_id)
    else:
        edited = _edit_payload(record.sd_jwt) if edit == "payload" else _edit_disclosure(record.sd_jwt)
        assert world.sql("UPDATE credential SET sd_jwt = :s WHERE id = :id", s=edited,
                         id=issued.credential_id) == 1
    findings = world.findings()
    assert kinds(findings) == [("offchain_data_changed", issued.credential_id)]
    details = findings[0].details
    assert set(details["reasons"]) == reasons
    assert details["anchored_leaf"] == issued.leaf and details["position"] == 6
    # Without the deep checks, an edited disclosure is not seen (the leaf covers only the JWT).
    if edit == "disclosure":
        assert world.findings(deep=False) == []


@pytest.mark.parametrize(("signer", "reason"), [
    ("stranger", "signing_key_not_registered"),
    ("school-b's key", "signing_key_of_another_member"),
    ("school-b's id", "signed_by_another_issuer"),
    ("a retired key", "signing_key_not_valid_when_anchored"),
])
def test_a_credential_row_signed_by_the_wrong_key(world: World, signer: str, reason: str) -> None:
    """The stored SD-JWT re-signed (same payload, so the same leaf) by a key the chain does
    not list for the issuer when the batch was anchored."""
    svc = world.services.credentials
    school_a = world.services.keys_for("school-a")
    school_b = world.services.keys_for("school-b")
    orgs = svc.deployment.organisations
    did_a, did_b = (issuer_did(svc.client.chain_id, svc.deployment.consortium, orgs[o]["member_id"])
                    for o in ("school-a", "school-b"))
    key, did = Ed25519PrivateKey.generate(), did_a
    if signer == "school-b's key":
        key = school_b.ed25519_private
    elif signer == "school-b's id":
        key, did = school_b.ed25519_private, did_b
    elif signer == "a retired key":  # registered, retired, and then the batch is anchored
        svc.consortium.add_signing_key(school_a.account, key.public_key().public_bytes_raw())
        svc.consortium.retire_signing_key(school_a.account, key.public_key().public_bytes_raw())
    batch = svc.issue("school-a", CredentialType.DEGREE, [degree_row(900)])
    issued = batch.credentials[0]
    parsed = sdjwt.parse(svc.get(issued.credential_id).sd_jwt)
    kid = key_id(did, key.public_key().public_bytes_raw())
    resigned = jose.sign_jws({**parsed.header, "kid": kid}, parsed.payload, key)
    assert world.sql("UPDATE credential SET sd_jwt = :s WHERE id = :id",
                     s=resigned + parsed.presentation_without_kb[len(parsed.issuer_jwt):],
                     id=issued.credential_id) == 1
    findings = world.findings()
    assert kinds(findings) == [("offchain_data_changed", issued.credential_id)]
    assert findings[0].details["reasons"] == [reason]


def test_check_sd_jwt_reports_garbage_as_malformed() -> None:
    assert check_sd_jwt("not an sd-jwt") == (None, ["malformed"], None)
    assert check_sd_jwt("a.b.c~", deep=False)[0] is None


def test_an_edited_batch_root_and_an_edited_leaf_row(world: World) -> None:
    batch = world.batches[1]
    world.sql("UPDATE anchor_batch SET root = :r WHERE id = :id", r="0x" + "cd" * 32, id=batch.batch_id)
    findings = world.findings()
    assert kinds(findings) == [("offchain_data_changed", batch.batch_id),
                               ("batch_not_anchored", batch.batch_id)]
    assert findings[0].details["reasons"] == ["root_differs"]
    assert findings[0].details["rebuilt_root_anchored"] is True
    assert findings[1].details["reasons"] == ["root_not_on_chain"]


def test_an_edited_anchor_leaf_row(world: World) -> None:
    batch, issued = world.batches[0], world.credential(0, 2)
    world.sql("UPDATE anchor_leaf SET leaf_hash = :h WHERE batch_id = :b AND position = 2",
              h="0x" + "ef" * 32, b=batch.batch_id)
    findings = world.findings()
    assert sorted(kinds(findings)) == sorted([("offchain_data_changed", batch.batch_id),
                                              ("offchain_data_changed", issued.credential_id)])
    by_item = {f.item: f.details for f in findings}
    assert by_item[batch.batch_id]["reasons"] == ["root_differs"]
    assert "stored_leaf_not_anchored" in by_item[issued.credential_id]["reasons"]


# --- item missing ----------------------------------------------------------------------


def test_a_deleted_credential_row_is_reported_missing(world: World) -> None:
    issued = world.credential(1, 1)
    assert world.sql("DELETE FROM credential WHERE id = :id", id=issued.credential_id) == 1
    findings = world.findings()
    assert kinds(findings) == [("item_missing", issued.leaf)]
    assert findings[0].details["batch_id"] == world.batches[1].batch_id
    assert findings[0].details["position"] == 1


# --- batch not anchored ------------------------------------------------------------------


def test_a_batch_whose_root_never_reached_the_chain(world: World) -> None:
    anchoring = world.services.anchoring
    leaf = bytes(range(32))
    accepted = anchoring.accept("school-b", "learning_record", [leaf])  # accepted, never sent
    findings = world.findings()
    assert kinds(findings) == [("batch_not_anchored", accepted.id)]
    assert findings[0].details["reasons"] == ["root_not_on_chain"]
    assert findings[0].details["stored_status"] == "pending"


def test_a_batch_recorded_for_another_member(world: World) -> None:
    batch = world.batches[1]  # anchored by school-b
    world.sql("UPDATE anchor_batch SET member_org = 'school-a' WHERE id = :id", id=batch.batch_id)
    findings = world.findings()
    assert kinds(findings) == [("batch_not_anchored", batch.batch_id)]
    assert findings[0].details["reasons"] == ["anchored_by_another_member"]


# --- status differs ----------------------------------------------------------------------


@pytest.mark.parametrize("indexed", [True, False])
def test_a_status_changed_on_chain_behind_the_stores_back(world: World, indexed: bool) -> None:
    issued = world.credential(0, 3)
    keys = world.services.keys_for("school-a")
    world.registry.revoke(keys.account, issued.anchor.leaf, issued.anchor.root,
                          issued.anchor.proof, reason=7)
    if indexed:
        world.node.indexer().run_once()
    audit = world.audit()
    run_id = audit.start("tests")
    audit.run(run_id)
    findings = audit.findings(run_id)
    # Not indexed yet is not "missing from the index": the chain's own logs tell which leaves
    # changed, so the revocation is caught either way.
    assert kinds(findings) == [("status_differs", issued.credential_id)]
    details = findings[0].details
    assert (details["stored"], details["chain"], details["chain_reason"]) == ("valid", "revoked", 7)
    assert details["indexed"] == ("revoked" if indexed else None)
    scope = audit.build_report(run_id)["scope"]
    assert scope["events_not_yet_indexed"] == (0 if indexed else 1)


def test_a_status_changed_in_the_store_only(world: World) -> None:
    issued = world.credential(2, 4)  # revoked on chain through the service
    world.sql("UPDATE credential SET status = 'valid' WHERE id = :id", id=issued.credential_id)
    other = world.credential(0, 0)
    world.sql("UPDATE credential SET status = 'suspended' WHERE id = :id", id=other.credential_id)
    findings = world.findings()
    assert sorted(kinds(findings)) == sorted([("status_differs", issued.credential_id),
                                              ("status_differs", other.credential_id)])


def test_a_superseded_credential_pointing_elsewhere(world: World) -> None:
    old = world.credential(2, 3)
    world.sql("UPDATE credential SET superseded_by = :other WHERE id = :id",
              other=world.credential(0, 0).credential_id, id=old.credential_id)
    findings = world.findings()
    assert kinds(findings) == [("status_differs", old.credential_id)]
    assert findings[0].details["reasons"] == ["superseded_by_differs"]


# --- the event index ---------------------------------------------------------------------


def test_a_deleted_chain_event_row(world: World) -> None:
    issued = world.credential(0, 0)
    with world.node.engine.connect() as conn:
        log_index = conn.execute(text(
            "SELECT log_index FROM chain_event WHERE tx_hash = :tx AND event = 'Anchored'"),
            {"tx": issued.anchor.tx_hash}).scalar_one()
    world.sql("DELETE FROM chain_event WHERE tx_hash = :tx AND event = 'Anchored'",
              tx=issued.anchor.tx_hash)
    findings = world.findings()
    assert kinds(findings) == [("event_missing_from_index", f"{issued.anchor.tx_hash}:{log_index}")]
    assert findings[0].details["event"] == "Anchored"
    assert findings[0].details["block_number"] == issued.anchor.block_number


def test_an_edited_chain_event_row(world: World) -> None:
    with world.node.engine.connect() as conn:
        row = conn.execute(text("SELECT tx_hash, log_index, args_json FROM chain_event "
                                "WHERE event = 'StatusChanged' ORDER BY block_number LIMIT 1")).one()
    args = json.loads(row.args_json)
    args["reason"] = 99
    world.sql("UPDATE chain_event SET args_json = :a WHERE tx_hash = :tx AND log_index = :i",
              a=json.dumps(args), tx=row.tx_hash, i=row.log_index)
    findings = world.findings()
    assert kinds(findings) == [("offchain_data_changed", f"{row.tx_hash}:{row.log_index}")]
    assert findings[0].details["reasons"] == ["index_args_differs"]


def test_an_index_row_with_no_event_on_chain(world: World) -> None:
    with world.node.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM chain_event WHERE event = 'StatusChanged' "
                                "ORDER BY block_number LIMIT 1")).mappings().one()
    fabricated = {**row, "log_index": 99}
    fabricated.pop("id")
    world.sql("INSERT INTO chain_event (chain_id, contract, event, block_number, block_hash, "
              "block_time, tx_hash, log_index, args_json) VALUES (:chain_id, :contract, :event, "
              ":block_number, :block_hash, :block_time, :tx_hash, :log_index, :args_json)",
              **fabricated)
    findings = world.findings()
    assert kinds(findings) == [("offchain_data_changed", f"{row['tx_hash']}:99")]
    assert findings[0].details["reasons"] == ["index_row_not_on_chain"]


# --- interrupted runs ------------------------------------------------------------------


def _tamper_everything(world: World) -> None:
    world.sql("UPDATE credential SET leaf_hash = :h WHERE id = :id", h="0x" + "ab" * 32,
              id=world.credential(0, 1).credential_id)
    world.sql("DELETE FROM credential WHERE id = :id", id=world.credential(0, 8).credential_id)
    world.sql("DELETE FROM credential WHERE id = :id", id=world.credential(1, 2).credential_id)
    world.sql("UPDATE anchor_batch SET member_org = 'school-a' WHERE id = :id",
              id=world.batches[1].batch_id)
    issued = world.credential(2, 0)
    world.registry.suspend(world.services.keys_for("school-a").account, issued.anchor.leaf,
                           issued.anchor.root, issued.anchor.proof)
    world.node.indexer().run_once()
    world.sql("DELETE FROM chain_event WHERE event = 'Anchored' AND tx_hash = :tx",
              tx=world.credential(1, 0).anchor.tx_hash)


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_with_the_same_findings(world: World) -> None:
    _tamper_everything(world)
    reference = world.findings()
    assert {f.kind for f in reference} == {"offchain_data_changed", "item_missing",
                                           "batch_not_anchored", "status_differs",
                                           "event_missing_from_index"}
    audit = world.audit()
    calls = 0
    for stop_at in range(1, 40):
        run_id = audit.start("tests")

        def crash(done: int, total: int, phase: str) -> None:
            nonlocal calls
            calls += 1
            if calls == stop_at:
                raise Interrupted

        calls = 0
        try:
            audit.run(run_id, progress=crash)
        except Interrupted:
            # (the last progress call comes after the run is done)
            assert audit.get(run_id).status in ("failed", "done")
            resumed = audit.run(run_id)
            assert resumed.status == "done"
            assert audit.findings(run_id) == reference, f"interrupted at chunk {stop_at}"
        else:
            assert audit.findings(run_id) == reference
            break  # stop_at went past the last chunk: every point was tried
    assert stop_at > 5


@pytest.mark.postgres
def test_on_postgresql_every_kind_and_resume(tmp_path: Path, env: None, postgres_db_url: str) -> None:
    world = _open_world(tmp_path / "data", postgres_db_url)
    try:
        _tamper_everything(world)
        reference = world.findings()
        assert len({f.kind for f in reference}) == 5
        audit = world.audit()
        for stop_at in (1, 3, 6):
            run_id = audit.start("tests")
            calls = 0

            def crash(done: int, total: int, phase: str) -> None:
                nonlocal calls
                calls += 1
                if calls == stop_at:
                    raise Interrupted

            with pytest.raises(Interrupted):
                audit.run(run_id, progress=crash)
            assert audit.run(run_id).status == "done"
            assert audit.findings(run_id) == reference
    finally:
        world.node.close()


def test_resume_all_finishes_runs_left_running(world: World) -> None:
    _tamper_everything(world)
    reference = world.findings()
    audit = world.audit()
    run_id = audit.start("tests")

    def crash(done: int, total: int, phase: str) -> None:
        if phase == "batches":
            raise Interrupted

    with pytest.raises(Interrupted):
        audit.run(run_id, progress=crash)
    # What kill -9 leaves behind: the run still says running.
    world.sql("UPDATE audit_run SET status = 'running' WHERE id = :id", id=run_id)
    fresh = world.audit().start("tests")
    assert world.audit().resume_all() == [run_id, fresh]
    assert world.audit().findings(run_id) == reference == world.audit().findings(fresh)
    assert world.audit().resume_all() == []


def test_two_workers_on_one_run(world: World) -> None:
    """A second worker finishes the run while the first is paused: the first one stops at
    its next commit, changing nothing, and the run stays done."""
    _tamper_everything(world)
    reference = world.findings()
    first, second = world.audit(), world.audit()
    run_id = first.start("tests")

    def meanwhile(done: int, total: int, phase: str) -> None:
        if phase == "batches" and second.get(run_id).status != "done":
            second.run(run_id)

    with pytest.raises(Conflict) as caught:
        first.run(run_id, progress=meanwhile)
    assert caught.value.code == "audit_run_busy"
    assert first.get(run_id).status == "done"
    assert first.findings(run_id) == reference


def test_a_killed_process_resumes_with_the_same_findings(tmp_path: Path, env: None) -> None:
    """kill -9 in the middle of a run (a real SIGKILL, in another process), then resume."""
    data_dir = tmp_path / "data"
    world = _open_world(data_dir)
    try:
        _tamper_everything(world)
        reference = [(f.kind, f.item, f.details) for f in world.findings()]
    finally:
        world.node.close()
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from ledger.audit.integrity import IntegrityAudit
        from ledger.node import Node
        from ledger.settings import Settings
        node = Node(Settings(data_dir=Path({str(data_dir)!r})))
        _, registry = node.contracts()
        audit = IntegrityAudit(node.engine, node.client, registry, deployment=node.deployment,
                               chunk_size=3)
        run_id = audit.start("killed")
        print(run_id, flush=True)
        calls = 0
        def progress(done, total, phase):
            global calls
            calls += 1
            if calls == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        audit.run(run_id, progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = proc.stdout.split()[0]
    node = Node(Settings(data_dir=data_dir))
    try:
        _, registry = node.contracts()
        audit = IntegrityAudit(node.engine, node.client, registry, deployment=node.deployment,
                               chunk_size=3)
        left = audit.get(run_id)
        assert left.status == "running" and 0 < left.progress_done < left.progress_total
        assert audit.resume_all() == [run_id]
        assert [(f.kind, f.item, f.details) for f in audit.findings(run_id)] == reference
    finally:
        node.close()


def test_unknown_run_and_bad_requester(world: World) -> None:
    audit = world.audit()
    with pytest.raises(NotFound):
        audit.run("no-such-run")
    with pytest.raises(InvalidInput):
        audit.start("")


# --- the report --------------------------------------------------------------------------


def test_the_report_is_signed_anchored_and_verifiable(world: World) -> None:
    issued = world.credential(1, 1)
    world.sql("DELETE FROM credential WHERE id = :id", id=issued.credential_id)
    auditor = world.services.keys_for("auditor")
    audit = world.audit(auditor_keys=auditor,
                        anchoring=world.services.anchoring)
    run_id = audit.start("auditor")
    run = audit.run(run_id)
    assert run.status == "done" and run.report_batch_id and run.finished_at
    report = audit.report(run_id)
    data = report.report
    assert report.report_json == canonical_report(data)  # stored in canonical form
    assert report.report_hash == "0x" + report_hash(report.report_json).hex()
    assert data["summary"]["findings"] == 1 and data["summary"]["by_kind"]["item_missing"] == 1
    assert data["findings"][0]["item"] == issued.leaf
    assert data["auditor"]["org_id"] == "auditor"
    assert report.anchor is not None and report.anchor["status"] == "anchored"

    # Anchored on chain as an audit report, by the auditor, and verifiable from the chain alone.
    checked = verify_report(report.report_json, report.signature or "", auditor.ed25519_public_bytes,
                            world.registry)
    assert checked.valid, checked.failures
    assert checked.anchored_block == report.anchor["block_number"]
    # Re-indented JSON is the same report.
    pretty = json.dumps(data, indent=2, ensure_ascii=False)
    assert verify_report(pretty, report.signature or "", auditor.ed25519_public_hex,
                         world.registry).valid

    edited = dict(data, findings=[], summary={**data["summary"], "findings": 0})
    failed = verify_report(edited, report.signature or "", auditor.ed25519_public_bytes, world.registry)
    assert failed.failures == ["signature_invalid", "not_anchored"]
    school = world.services.keys_for("school-a")
    forged = verify_report(report.report_json, school.sign_credential_bytes(report.report_json),
                           school.ed25519_public_bytes, world.registry)
    assert forged.failures == ["key_not_of_anchoring_member"]

    # CSV: a header and one line per finding.
    rows = list(csv.reader(io.StringIO(to_csv(data))))
    assert rows[0] == ["seq", "kind", "kind_zh", "item", "details"]
    assert len(rows) == 2 and rows[1][1] == "item_missing" and rows[1][3] == issued.leaf
    assert json.loads(rows[1][4])["position"] == 1
    # HTML: bilingual, escaped, carries the hash, the signature and the anchor.
    page = audit_report_page(report)
    assert "完整性审计报告" in page and "Integrity audit report" in page
    assert "数据缺失" in page and "Item missing" in page and issued.leaf in page
    assert report.report_hash in page and (report.signature or "") in page
    assert "<script" not in page

    # Running it again changes nothing (the run is done; the report is anchored once).
    again = audit.run(run_id)
    assert again.report_batch_id == run.report_batch_id
    assert audit.report(run_id).report_json == report.report_json


def test_a_later_audit_checks_the_earlier_report_batch(world: World) -> None:
    auditor = world.services.keys_for("auditor")
    anchoring = world.services.anchoring
    first = world.audit(auditor_keys=auditor, anchoring=anchoring)
    first.run(first.start("auditor"))
    world.node.indexer().run_once()
    second = world.audit(auditor_keys=auditor, anchoring=anchoring)
    run_id = second.start("auditor")
    second.run(run_id)
    assert second.findings(run_id) == []
    assert second.build_report(run_id)["scope"]["batches"] == 5


# --- the command line --------------------------------------------------------------------


def test_cli_audit_run(tmp_path: Path, env: None, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    world = _open_world(data_dir)
    issued = world.credential(0, 5)
    world.sql("DELETE FROM credential WHERE id = :id", id=issued.credential_id)
    world.node.close()

    out = tmp_path / "report.json"
    code = main(["audit", "run", "--data-dir", str(data_dir), "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1, err  # findings
    assert "audit batches" in err and "1 finding(s)" in err and "anchored in block" in err
    report = json.loads(out.read_text())
    assert [f["item"] for f in report["findings"]] == [issued.leaf]
    run_id = report["run_id"]

    html_out = tmp_path / "report.html"
    assert main(["audit", "run", "--data-dir", str(data_dir), "--resume", run_id,
                 "--format", "html", "--out", str(html_out)]) == 1
    assert "完整性审计报告" in html_out.read_text()
    assert main(["audit", "run", "--data-dir", str(data_dir), "--resume", run_id,
                 "--format", "csv"]) == 1
    assert capsys.readouterr().out.count("\n") == 2
    # Two processes verifying SD-JWTs find the same.
    monkeypatch.setattr(integrity, "POOL_MIN", 1)
    assert main(["audit", "run", "--data-dir", str(data_dir), "--workers", "2", "--no-anchor",
                 "--format", "csv"]) == 1
    assert issued.leaf in capsys.readouterr().out
    assert main(["audit", "run", "--data-dir", str(data_dir), "--resume", "nope"]) == 2
