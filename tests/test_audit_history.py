"""Auditors trace any record's history; auditor keys change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.credential_fixtures import served_network, transcript_row


def test_history_of_a_revoked_then_superseded_credential(env: Path) -> None:
    with served_network(env / "data") as served:
        http, school, auditor = served.http, served.as_org("school-a"), served.as_org("auditor")
        batch = served.issue("school-a", "transcript", [transcript_row(1, courses=2)]).json()
        cid = batch["credentials"][0]["credential_id"]
        assert http.post(f"/v1/credentials/{cid}/status", json={"action": "revoke", "reason": 4},
                         headers=school).status_code == 200
        fixed = http.post(f"/v1/credentials/{cid}/correct",
                          json={"credential": transcript_row(1, courses=3), "reason": 5}, headers=school)
        assert fixed.status_code == 201, fixed.text

        body = http.get(f"/v1/audit/history/{cid}", headers=auditor).json()
        entries = body["history"]
        assert [e["action"] for e in entries] == ["issue", "anchor", "revoke", "supersede"]
        blocks = [e["block_number"] for e in entries[1:]]
        assert blocks == sorted(blocks) and len(set(blocks)) == 3
        assert all(e["actor"] == "school-a" for e in entries)
        assert entries[2]["reason"] == 4 and entries[3]["reason"] == 5
        assert entries[3]["details"]["supersededBy"] == fixed.json()["credentials"][0]["leaf"]
        assert all(e["tx_hash"] and e["block_time"] for e in entries[1:])
        # Re-read from the chain: every entry is confirmed.
        checked = http.get(f"/v1/audit/history/{cid}?check=chain", headers=auditor).json()["history"]
        assert [e.get("chain") for e in checked[1:]] == ["confirmed"] * 3

        # The same history by leaf, the batch by its root, and a member.
        leaf, root = body["subject"]["leaf"], body["subject"]["root"]
        by_leaf = http.get(f"/v1/audit/history/{leaf}", headers=auditor).json()
        assert [e["action"] for e in by_leaf["history"]] == ["anchor", "revoke", "supersede"]
        by_root = http.get(f"/v1/audit/history/{root}", headers=auditor).json()
        assert by_root["subject"]["kind"] == "batch" and by_root["history"][0]["action"] == "anchor"
        member = http.get("/v1/audit/history/school-a", headers=auditor).json()
        # (the admission proposal names no member id yet: the history starts at the admission)
        assert [e["action"] for e in member["history"]][:1] == ["admit"]
        assert "add_signing_key" in [e["action"] for e in member["history"]]

        # Bad input: unknown ids, malformed hashes, the wrong role.
        assert http.get("/v1/audit/history/urn:uuid:00000000-0000-4000-8000-000000000000",
                        headers=auditor).status_code == 404
        assert http.get("/v1/audit/history/" + "0x" + "ab" * 32, headers=auditor).status_code == 404
        bad = http.get("/v1/audit/history/0x1234", headers=auditor)
        assert bad.status_code == 422 and bad.json()["code"] == "bad_id"
        assert http.get(f"/v1/audit/history/{cid}", headers=school).status_code == 403
        assert http.get(f"/v1/audit/history/{cid}").status_code == 401


def test_auditor_keys_can_change_nothing(env: Path) -> None:
    with served_network(env / "data") as served:
        http, auditor = served.http, served.as_org("auditor")
        batch = served.issue("school-a", "transcript", [transcript_row(1, courses=1)]).json()
        cid = batch["credentials"][0]["credential_id"]
        head = served.node.client.block_number()
        from api.app import create_app

        app = create_app(served.node, background=False)
        writes = [(path, method.upper()) for path, ops in app.openapi()["paths"].items()
                  for method in ops if method in ("post", "put", "patch", "delete")]
        organisation_writes = [w for w in writes if w[0].startswith("/v1/credentials")]
        assert organisation_writes, writes
        for path, method in organisation_writes:
            url = path.replace("{credential_id}", cid)
            r = http.request(method, url, json={"type": "transcript", "credential": transcript_row(2),
                                                "action": "revoke"}, headers=auditor)
            assert r.status_code == 403 and r.json()["code"] == "role_not_allowed", (path, r.text)
        # Auditors read what an audit needs.
        no_purpose = http.get(f"/v1/credentials/{cid}", headers=auditor)
        assert no_purpose.status_code == 422
        read = http.get(f"/v1/credentials/{cid}", params={"purpose": "annual audit", "content": "true"},
                        headers=auditor)
        assert read.status_code == 200 and read.json()["sd_jwt"].count("~") > 2
        assert http.get(f"/v1/batches/{batch['batch_id']}", headers=auditor).status_code == 200
        assert served.node.client.block_number() == head


def test_cli_prints_the_history_as_a_table(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main

    with served_network(env / "data") as served:
        batch = served.issue("school-a", "transcript", [transcript_row(1, courses=1)]).json()
        cid = batch["credentials"][0]["credential_id"]
        code = main(["audit", "history", cid, "--check-chain", "--data-dir", str(env / "data"),
                     "--rpc", served.base + "/rpc"])
        out = capsys.readouterr().out
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0].startswith("kind=credential")
        assert lines[1].split()[:2] == ["action", "actor"]
        assert lines[2].split()[0] == "issue" and lines[3].split()[0] == "anchor"
        assert lines[3].rstrip().endswith("confirmed")
        assert main(["audit", "history", "0x12", "--data-dir", str(env / "data"),
                     "--rpc", served.base + "/rpc"]) == 2


def test_reads_of_personal_data_are_logged_with_who_what_and_why(env: Path) -> None:
    from ledger.audit.accesslog import AccessLog
    from wallet.holder import Wallet

    with served_network(env / "data") as served:
        http = served.http
        batch = served.issue("school-a", "transcript", [transcript_row(1, courses=2)]).json()
        issued = batch["credentials"][0]
        http.get(f"/v1/credentials/{issued['credential_id']}", params={"purpose": "reissue request"},
                 headers=served.as_org("school-a"))
        wallet = Wallet.create(env / "w", passphrase="p", scrypt_n=2**10)
        redeemed = http.post("/v1/claims/redeem", json={"code": issued["claim_code"],
                                                         "holder_jwk": wallet.holder_jwk}).json()
        wallet.add_credential(redeemed["sd_jwt"], credential_id=redeemed["credential_id"])
        presentation = wallet.present(redeemed["credential_id"], ["credentialSubject.holderName"],
                                      aud=served.base)
        share = http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 1}).json()
        http.get(share["url"])
        http.get(f"/v1/audit/history/{issued['credential_id']}", headers=served.as_org("auditor"))

        log = AccessLog(served.node.engine)
        rows = [(e.actor, e.actor_role, e.action, e.resource_kind, e.resource_id, e.purpose)
                for e in log.entries(limit=100)]
        assert rows == [
            ("school-a", "school", "read", "credential", issued["credential_id"], "reissue request"),
            ("holder", "holder", "redeem", "claim", issued["credential_id"], None),
            ("public", "public", "view", "share", share["share_id"], None),
            ("auditor", "auditor", "audit_read", "history", issued["credential_id"], "audit trail"),
        ]
        assert log.verify().ok


def test_serving_node_anchors_access_log_checkpoints(env: Path) -> None:
    import time

    from api.app import create_app
    from ledger.audit.accesslog import AccessLog
    from ledger.node import init_network
    from ledger.settings import Settings
    from node_config import DEMO_CONSORTIUM
    from tests.servers import serve_app

    node = init_network(Settings(data_dir=env / "data", access_checkpoint_seconds=0.2), DEMO_CONSORTIUM)
    try:
        log = AccessLog(node.engine)
        log.record("public", "public", "view", "share", "abc")
        with serve_app(create_app(node, background=True)):
            deadline = time.monotonic() + 30
            while not log.checkpoints() and time.monotonic() < deadline:
                time.sleep(0.1)
        [checkpoint] = log.checkpoints()[:1]
        assert checkpoint.seq == 1 and checkpoint.tx_hash
        assert log.verify().ok
    finally:
        node.close()


def test_audit_run_through_the_api(env: Path) -> None:
    import time

    with served_network(env / "data") as served:
        http, auditor = served.http, served.as_org("auditor")
        served.issue("school-a", "transcript", [transcript_row(n, courses=2) for n in range(20)])
        # Only auditors start runs.
        assert http.post("/v1/audit/runs", headers=served.as_org("bureau")).status_code == 403
        started = http.post("/v1/audit/runs", headers=auditor)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        deadline = time.monotonic() + 120
        status = started.json()
        while status["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
            status = http.get(f"/v1/audit/runs/{run_id}", headers=auditor).json()
        assert status["status"] == "done", status
        assert status["progress"]["fraction"] == 1.0 and status["finding_count"] == 0
        assert status["report"]["summary"] and status["signature"] and status["anchor"]
        csv = http.get(f"/v1/audit/runs/{run_id}", params={"format": "csv"}, headers=auditor)
        assert csv.status_code == 200 and csv.text.splitlines()[0] == "seq,kind,kind_zh,item,details"
        html = http.get(f"/v1/audit/runs/{run_id}", params={"format": "html"}, headers=auditor)
        assert html.status_code == 200 and "审计" in html.text
        assert http.get("/v1/audit/runs/nope", headers=auditor).status_code == 404
        bad = http.get(f"/v1/audit/runs/{run_id}", params={"format": "pdf"}, headers=auditor)
        assert bad.status_code == 422 and bad.json()["code"] == "bad_format"
