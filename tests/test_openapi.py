"""/openapi.json describes every answer the service gives, and only answers it gives.

The real app on a real port: every route is called for its success and its error cases, and
each answer (status, content type, body) is validated by openapi-core against what the
served document says for that operation and status. An answer whose status the document
does not list fails, and so does a documented status that no request could produce (every
one is produced here, the 503s on a node whose chain has gone away).
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from eth_account import Account
from openapi_spec_validator import validate as validate_spec

import api.auth
from api.app import create_app
from ledger.chain import EmbeddedChain
from ledger.credentials.jose import ed25519_jwk
from ledger.credentials.sdjwt import add_key_binding
from ledger.identity.holder_auth import make_proof
from ledger.keys import clear_keystore_cache
from ledger.node import NodeServices, init_network
from ledger.settings import Settings
from node_config import DEMO_CONSORTIUM
from tests.conftest import rpc_only_app
from tests.credential_fixtures import served_network, transcript_row
from tests.identity_fixtures import photo, present, roster_zip, student, teacher
from tests.openapi_check import CheckedClient, DocumentedAnswers
from tests.servers import serve_app
from wallet.holder import EncryptionKey

FREE_FORM = {("post", "/rpc")}  # JSON-RPC: each method's result is its own
CARDS = "/v1/identity/cards"
EXAM = "https://exam.example.edu.cn/check-in"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "openapi passphrase")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    clear_keystore_cache()
    try:
        yield tmp_path_factory.mktemp("openapi")
    finally:
        mp.undo()
        clear_keystore_cache()


def _document(base: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(base + "/openapi.json").json()
    return document


def _holder() -> tuple[Any, dict[str, str]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key, ed25519_jwk(key.public_key())


def test_the_document_describes_every_operation(env: Path) -> None:
    with served_network(env / "doc") as served:
        document = _document(served.base)
        assert served.http.get("/docs").status_code == 200
    validate_spec(document)  # a valid OpenAPI 3.1 document (openapi-spec-validator)
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 body: not what we send
    refs = {ref.rsplit("/", 1)[1] for ref in _refs(document)}
    assert refs <= set(schemas), refs - set(schemas)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [s for s in responses if s.startswith("2")]
            assert len(success) == 1, (method, path, success)
            answer = responses[success[0]]
            if success[0] == "204":
                assert "content" not in answer
                continue
            for media, content in answer["content"].items():
                schema = content["schema"]
                assert schema, (method, path, media)  # never the empty schema {}
                if media == "application/json" and (method, path) not in FREE_FORM:
                    assert "$ref" in schema or "anyOf" in schema, (method, path, schema)
            for status, error in responses.items():
                if status.startswith("2"):
                    continue
                if (method, path) == ("post", "/rpc"):
                    continue
                expected = "InvalidInputBody" if status == "422" else "ErrorBody"
                assert error["content"]["application/json"]["schema"] == {
                    "$ref": f"#/components/schemas/{expected}"}, (method, path, status)
            if operation.get("security"):
                assert "401" in responses, (method, path)
            if method == "post" and path not in ("/v1/audit/runs",
                                                 "/v1/identity/cards/{card_id}/claim-code",
                                                 "/v1/exams/{exam_id}/proctor-links",
                                                 "/v1/exams/{exam_id}/check-ins",
                                                 "/v1/evaluation/terms/{term}/classes/{class_name}/lock",
                                                 "/v1/evaluation/terms/{term}/seal"):
                assert "requestBody" in operation, (method, path)
    # Request bodies' limits are in the schema.
    verify_batch = schemas["VerifyBatch"]["properties"]["credentials"]
    assert (verify_batch["minItems"], verify_batch["maxItems"]) == (1, 1000)
    issue = document["paths"]["/v1/credentials"]["post"]["requestBody"]
    assert issue["x-max-bytes"] == 20 * 2**20
    assert issue["content"]["application/json"]["schema"]["oneOf"][1]["properties"]["credentials"][
        "maxItems"] == 10_000
    assert document["paths"]["/v1/verify"]["post"]["requestBody"]["x-max-bytes"] == 256 * 1024 + 4096
    assert document["paths"]["/rpc"]["post"]["requestBody"]["x-max-bytes"] == 2 * 2**20
    assert schemas["NewShare"]["properties"]["presentation"]["maxLength"] == 256 * 1024
    # A card's holder authenticates with a holder proof; the history takes either.
    paths = document["paths"]
    assert paths["/v1/identity/cards/{card_id}/history"]["get"]["security"] == [{"apiKey": []},
                                                                                {"holderProof": []}]
    assert paths["/v1/identity/cards/{card_id}/documents"]["get"]["security"] == [{"holderProof": []}]
    assert paths["/v1/identity/cards/{card_id}/documents"]["post"]["security"] == [{"apiKey": []}]
    assert paths["/v1/identity/cards/{card_id}/documents"]["post"]["requestBody"]["x-max-bytes"] == 12 * 2**20
    assert document["components"]["securitySchemes"]["holderProof"]["scheme"] == "holderproof"
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]
        ["apiKey"]["description"]}


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "$ref":
                yield inner
            else:
                yield from _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _refs(inner)


def test_a_method_a_path_does_not_take_is_405_with_allow(env: Path) -> None:
    with served_network(env / "allow") as served:
        answers = DocumentedAnswers(_document(served.base))
        for method, path, allowed in [("GET", "/v1/verify", "POST"), ("PUT", "/v1/credentials", "POST"),
                                      ("DELETE", "/health", "GET"), ("POST", "/s/abc", "GET"),
                                      ("GET", "/v1/shares/abc", "DELETE"), ("PATCH", "/rpc", "POST")]:
            r = served.http.request(method, path)
            assert r.status_code == 405 and r.headers["allow"] == allowed, (method, path, r.headers)
            assert r.json()["code"] == "method_not_allowed"
            answers.check(r)  # Allow lists exactly the methods the document has for the path
        for path in ("/v1/nothing", "/v1/credentials/", "/s/"):
            answers.check(served.http.get(path))  # no route: 404 with the error body


def test_every_answer_is_documented_and_every_documented_answer_is_given(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with served_network(env / "data") as served:
        answers = DocumentedAnswers(_document(served.base))
        record = _tour(served, CheckedClient(served.http, answers), monkeypatch)
        document = answers.document
    with _node_on_a_chain_that_goes(env / "gone") as lost:
        gone_answers = _chain_gone(lost, record)
    # What the node on the lost chain answered counts for the same operations.
    assert gone_answers.document["paths"].keys() <= document["paths"].keys()
    for operation, statuses in gone_answers.seen.items():
        answers.seen[operation] |= statuses
    assert answers.unseen() == {}, "documented but never given"


def _tour(served: Any, http: CheckedClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every route with every answer it documents; returns a learning record's file (the
    lost-chain part verifies it again)."""
    school, school_b, partner = served.as_org("school-a"), served.as_org("school-b"), served.as_org("partner")
    bureau, auditor = served.as_org("bureau"), served.as_org("auditor")
    nobody = {"Authorization": "Bearer edk_nobody_0123456789"}
    purpose = {"purpose": "openapi test"}

    # -- network ----------------------------------------------------------------------
    assert "workers" not in http.get("/health").json()
    served.app.state.workers = SimpleNamespace(count=2, ready=lambda: 1)  # as serve --workers 2 sets it
    assert http.get("/health").json()["workers"] == {"configured": 2, "ready": 1}
    served.app.state.workers = None
    http.get("/v1/network")

    # -- issuing ----------------------------------------------------------------------
    roster = {"type": "transcript", "credentials": [transcript_row(n, courses=2) for n in range(4)]}
    batch = http.post("/v1/credentials", json=roster, headers={**school, "Idempotency-Key": "openapi-1"},
                      expect=201).json()
    http.post("/v1/credentials", json={"type": "transcript", "credential": transcript_row(10, courses=1)},
              headers=school, expect=201)
    csv = ("holder_name,student_id,program,term,code,name,credits,grade\n"
           "学生一,S1,计算机,2025-2026-1,CS1,课程,3,90\n").encode()
    http.post("/v1/credentials?type=transcript", content=csv,
              headers={**school, "Content-Type": "text/csv"}, expect=201)
    http.post("/v1/credentials", json=roster, expect=401)
    http.post("/v1/credentials", json=roster, headers=nobody, expect=401)
    http.post("/v1/credentials", json=roster, headers=bureau, expect=403)
    http.post("/v1/credentials", json=roster, headers=partner, expect=403)  # partners issue no transcripts
    bad = http.post("/v1/credentials", json={"type": "transcript", "credentials": [{"holder_name": "x"}]},
                    headers=school, expect=422).json()
    assert bad["code"] == "invalid_roster" and bad["details"]["errors"]
    http.post("/v1/credentials", json={"type": "diploma", "credentials": [{}]}, headers=school, expect=422)
    http.post("/v1/credentials", json={"type": "transcript", "credentials": [{}] * 10_001},
              headers=school, expect=413)
    http.post("/v1/credentials?type=transcript", content=b"x" * (20 * 2**20 + 1),
              headers={**school, "Content-Type": "text/csv"}, expect=413)
    # The same key with another roster; the same certificate number twice.
    keyed = {**school, "Idempotency-Key": "openapi-reused"}
    http.post("/v1/credentials", json={"type": "transcript", "credentials": [transcript_row(90)]},
              headers=keyed, expect=201)
    http.post("/v1/credentials", json={"type": "transcript", "credentials": [transcript_row(91)]},
              headers=keyed, expect=422)
    degree = {"holder_name": "学生", "student_id": "D1", "degree_name": "工学学士", "field": "工学",
              "conferral_date": "2026-06-30", "certificate_number": "10001-2026-99999"}
    http.post("/v1/credentials", json={"type": "degree", "credentials": [degree]}, headers=school, expect=201)
    http.post("/v1/credentials", json={"type": "degree", "credentials": [degree]}, headers=school, expect=409)

    first, second, third, fourth = batch["credentials"]
    cid = first["credential_id"]

    # -- reading ----------------------------------------------------------------------
    view = http.get(f"/v1/credentials/{cid}", params=purpose, headers=school).json()
    assert "sd_jwt" not in view
    assert "sd_jwt" in http.get(f"/v1/credentials/{cid}", params={**purpose, "content": "true"},
                                headers=auditor).json()
    http.get(f"/v1/credentials/{cid}", params=purpose, expect=401)
    http.get(f"/v1/credentials/{cid}", params=purpose, headers=school_b, expect=404)
    http.get("/v1/credentials/urn:uuid:nothing", params=purpose, headers=bureau, expect=404)
    http.get(f"/v1/credentials/{cid}", headers=school, expect=422)  # no purpose
    http.get("/v1/credentials/urn:uuid:%00", params=purpose, headers=school, expect=422)

    http.get(f"/v1/batches/{batch['batch_id']}", headers=school)
    http.get(f"/v1/batches/{batch['batch_id']}", expect=401)
    http.get(f"/v1/batches/{batch['batch_id']}", headers=school_b, expect=404)
    http.get("/v1/batches/%00", headers=bureau, expect=422)

    # -- status and corrections -----------------------------------------------------------
    status = f"/v1/credentials/{second['credential_id']}/status"
    http.post(status, json={"action": "suspend", "reason": 2, "note": "checking"}, headers=school)
    http.post(status, json={"action": "reinstate"}, headers=bureau)
    http.post(status, json={"action": "reinstate"}, headers=bureau, expect=409)  # it is valid
    http.post(status, json={"action": "revoke"}, expect=401)
    http.post(status, json={"action": "revoke"}, headers=auditor, expect=403)
    http.post(status, json={"action": "revoke"}, headers=school_b, expect=404)  # as if unknown
    http.post("/v1/credentials/urn:uuid:nothing/status", json={"action": "revoke"}, headers=school,
              expect=404)
    http.post(status, json={"action": "erase"}, headers=school, expect=422)

    correct = f"/v1/credentials/{third['credential_id']}/correct"
    fixed = http.post(correct, json={"credential": transcript_row(2, courses=3), "reason": 1},
                      headers=school, expect=201).json()
    assert fixed["corrected"]["status"] == "superseded" and fixed["count"] == 1
    http.post(correct, json={"credential": transcript_row(2, courses=3)}, headers=school, expect=409)
    http.post(correct, json={"credential": transcript_row(2)}, expect=401)
    http.post(correct, json={"credential": transcript_row(2)}, headers=bureau, expect=403)
    http.post(f"/v1/credentials/{fourth['credential_id']}/correct", json={"credential": transcript_row(3)},
              headers=school_b, expect=404)  # another school's credential: as if unknown
    http.post("/v1/credentials/urn:uuid:nothing/correct", json={"credential": transcript_row(2)},
              headers=school, expect=404)
    http.post(f"/v1/credentials/{fourth['credential_id']}/correct", json={"credential": {"x": 1}},
              headers=school, expect=422)

    # -- holders: redeem, share, verify -------------------------------------------------------
    holder, jwk = _holder()
    redeemed = http.post("/v1/claims/redeem", json={"code": first["claim_code"], "holder_jwk": jwk}).json()
    http.post("/v1/claims/redeem", json={"code": first["claim_code"], "holder_jwk": jwk}, expect=409)
    http.post("/v1/claims/redeem", json={"code": "AAAA-BBBB-CCCC-DDDD", "holder_jwk": jwk}, expect=404)
    http.post("/v1/claims/redeem", json={"code": "A", "holder_jwk": jwk}, expect=422)
    http.post("/v1/claims/redeem", json={"code": fourth["claim_code"], "holder_jwk": {"kty": "RSA"}},
              expect=422)

    sd_jwt = redeemed["sd_jwt"]
    presentation = add_key_binding(sd_jwt, holder_key=holder, aud=served.base, nonce="openapi")
    share = http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 7},
                      expect=201).json()
    http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 7,
                                  "anchor": redeemed["anchor"]}, expect=201)
    http.post("/v1/shares", json={"presentation": sd_jwt, "expires_in_days": 7}, expect=422)  # no binding
    http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 181}, expect=422)

    page = f"/s/{share['share_id']}"
    assert "<html" in http.get(page, headers={"Accept": "text/html"}).text
    assert http.get(page, headers={"Accept": "application/json"}).json()["valid"] is True
    http.get("/s/AAAAAAAAAAAAAAAA", headers={"Accept": "application/json"}, expect=404)
    http.get("/s/AAAAAAAAAAAAAAAA", headers={"Accept": "text/html"}, expect=404)
    assert http.get(page + "/qr.png").content.startswith(b"\x89PNG")
    assert b"<svg" in http.get(page + "/qr.svg").content
    http.get("/s/AAAAAAAAAAAAAAAA/qr.png", expect=404)
    http.get("/s/AAAAAAAAAAAAAAAA/qr.svg", expect=404)
    code = http.get(page, params={"format": "json"}).json()["share"]["verify_code"]
    assert http.get(page + "/presentation.json").json()["format"] == "eduledger-credential/1"
    http.get("/s/AAAAAAAAAAAAAAAA/presentation.json", expect=404)
    assert http.get(page + "/report.pdf").content.startswith(b"%PDF-")
    http.get("/s/AAAAAAAAAAAAAAAA/report.pdf", expect=404)
    assert 'name="code"' in http.get("/verify").text
    by_code = http.get("/verify", params={"code": code}, headers={"Accept": "application/json"})
    assert by_code.json()["share"]["id"] == share["share_id"]
    assert "凭证有效" in http.get("/verify", params={"code": code.lower()}).text
    http.get("/verify", params={"code": "2222-2222-2222-2222"}, headers={"Accept": "application/json"},
             expect=404)
    http.get("/verify", params={"code": "2222-2222-2222-2222"}, expect=404)
    http.get("/verify", params={"code": "not a code"}, expect=422)

    envelope = {"format": "eduledger-credential/1", "sd_jwt": sd_jwt, "anchor": redeemed["anchor"]}
    assert http.post("/v1/verify", json={"credential": envelope}).json()["valid"] is True
    assert http.post("/v1/verify", json=envelope).json()["valid"] is True
    http.post("/v1/verify", json={"credential": presentation, "require_holder_binding": True,
                                  "aud": served.base, "at": "2030-01-01T00:00:00Z"})
    broken = http.post("/v1/verify", content=b"not a credential", headers={"Content-Type": "text/plain"})
    assert broken.json()["failures"] == ["malformed"]
    http.post("/v1/verify", content=b"{not json", headers={"Content-Type": "application/json"}, expect=422)
    http.post("/v1/verify", json={"credential": sd_jwt, "unknown": 1}, expect=422)
    http.post("/v1/verify", content=b"x" * (256 * 1024 + 4097), headers={"Content-Type": "text/plain"},
              expect=413)

    results = http.post("/v1/verify/batch", json={"credentials": [sd_jwt, envelope, "x" * (512 * 1024 + 1),
                                                                   "not a credential", {"sd_jwt": 1}]}).json()
    assert results["count"] == 5 and results["valid"] == 2
    assert [r.get("error", {}).get("code") for r in results["results"]] == [
        None, None, "too_large", None, "malformed"]
    http.post("/v1/verify/batch", json={"credentials": []}, expect=422)
    http.post("/v1/verify/batch", json={"credentials": ["x"] * 1001}, expect=422)

    # -- standard wallets: an offer (OpenID4VCI), a presentation request (OpenID4VP) -----------
    offered = http.post("/v1/credentials", json={"type": "transcript", "credential": transcript_row(40)},
                        headers=school, expect=201).json()["credentials"][0]["credential_id"]
    for suffix in ("/offer", "/offer.png"):
        http.get(f"/v1/credentials/{offered}{suffix}", headers=school)
        http.get(f"/v1/credentials/{offered}{suffix}", expect=401)
        http.get(f"/v1/credentials/{offered}{suffix}", headers=bureau, expect=403)
        http.get(f"/v1/credentials/{offered}{suffix}", headers=school_b, expect=404)
        http.get(f"/v1/credentials/{cid}{suffix}", headers=school, expect=409)  # redeemed above
    asking = {"credential_type": "transcript", "claims": ["credentialSubject.holderName"]}
    ask = http.post("/v1/presentation-requests", json=asking, headers=school_b, expect=201).json()
    http.post("/v1/presentation-requests", json=asking, expect=401)
    http.post("/v1/presentation-requests", json=asking, headers=auditor, expect=403)
    http.post("/v1/presentation-requests", json={**asking, "claims": ["a..b"]}, headers=school_b, expect=422)
    asked_path = f"/v1/presentation-requests/{ask['request_id']}"
    for suffix in ("", "/qr.png"):
        http.get(asked_path + suffix, headers=school_b)
        http.get(asked_path + suffix, expect=401)
        http.get(asked_path + suffix, headers=auditor, expect=403)
        http.get(asked_path + suffix, headers=school, expect=404)

    issuer = http.post("/v1/verify", json={"credential": envelope}).json()["issuer"]["id"]
    http.get(f"/v1/dids/{issuer}")
    http.get(f"/v1/dids/{issuer.rsplit(':', 1)[0]}:99", expect=404)
    http.get("/v1/dids/did:web:example.com", expect=422)

    http.delete(f"/v1/shares/{share['share_id']}", headers={"X-Withdraw-Token": "wrong"}, expect=403)
    http.delete(f"/v1/shares/{share['share_id']}", headers={"X-Withdraw-Token": share["withdraw_token"]})
    withdrawn = http.get(page, headers={"Accept": "application/json"}).json()
    assert withdrawn["claims"] is None and withdrawn["failures"] == ["share_withdrawn"]
    for served_part in ("/qr.png", "/qr.svg", "/presentation.json", "/report.pdf"):
        assert http.get(page + served_part, expect=404).json()["code"] == "share_withdrawn"
    http.delete("/v1/shares/AAAAAAAAAAAAAAAA", headers={"X-Withdraw-Token": "x"}, expect=404)

    # -- audit --------------------------------------------------------------------------
    history = f"/v1/audit/history/{cid}"
    entries = http.get(history, headers=auditor).json()
    assert entries["subject"]["kind"] == "credential" and entries["history"]
    http.get(history, params={"check": "chain"}, headers=bureau)
    http.get(f"/v1/audit/history/{batch['credentials'][0]['anchor']['root']}", headers=auditor)
    http.get(f"/v1/audit/history/{first['leaf']}", headers=auditor)
    http.get("/v1/audit/history/school-a", headers=auditor)
    http.get(history, expect=401)
    http.get(history, headers=school, expect=403)
    http.get("/v1/audit/history/urn:uuid:nothing", headers=auditor, expect=404)
    http.get("/v1/audit/history/what", headers=auditor, expect=422)

    run = http.post("/v1/audit/runs", headers=auditor, expect=202).json()
    http.post("/v1/audit/runs", expect=401)
    http.post("/v1/audit/runs", headers=bureau, expect=403)
    done = _wait_done(http, run["run_id"], auditor)
    assert done["report"]["summary"]["findings"] == 0, done["report"]["findings"]
    csv_report = http.get(f"/v1/audit/runs/{run['run_id']}", params={"format": "csv"}, headers=auditor)
    assert csv_report.headers["content-type"].startswith("text/csv")
    http.get(f"/v1/audit/runs/{run['run_id']}", params={"format": "html"}, headers=bureau)
    http.get(f"/v1/audit/runs/{run['run_id']}", params={"format": "json"}, headers=bureau)
    http.get(f"/v1/audit/runs/{run['run_id']}", params={"format": "pdf"}, headers=bureau, expect=422)
    services: NodeServices = served.app.state.services
    pending = services.integrity_audit("auditor").start("auditor")  # started, never run
    assert http.get(f"/v1/audit/runs/{pending}", headers=auditor).json()["status"] == "pending"
    http.get(f"/v1/audit/runs/{pending}", params={"format": "csv"}, headers=auditor, expect=404)
    http.get("/v1/audit/runs/nothing", headers=auditor, expect=404)
    http.get(f"/v1/audit/runs/{run['run_id']}", expect=401)
    http.get(f"/v1/audit/runs/{run['run_id']}", headers=school, expect=403)

    identity = _identity_tour(served, http)
    signing = _signatures_tour(served, http)
    sso = _sso_tour(served, http)
    exams = _exam_tour(served, http)
    evaluation = _evaluation_tour(served, http)
    record = _records_tour(served, http)

    # -- JSON-RPC -------------------------------------------------------------------------
    assert http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
                     ).json()["result"].startswith("0x")
    http.post("/rpc", json=[{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                            {"jsonrpc": "2.0", "id": 2, "method": "no_such_method"}])
    assert http.post("/rpc", content=b"{", headers={"Content-Type": "application/json"},
                     request_valid=False).json()["error"]["code"] == -32700
    http.post("/rpc", content=b" " * (2 * 2**20 + 1), headers={"Content-Type": "application/json"},
              expect=413)

    # -- a body over its route's limit: 413 before it is read (api.limits) ------------------
    for path in (status, correct, "/v1/claims/redeem", "/v1/shares", "/v1/verify", "/v1/verify/batch",
                 "/v1/presentation-requests",
                 *identity["bodies"], *signing["bodies"], *sso["bodies"], *exams, *evaluation,
                 "/v1/records/verify"):
        big = http.post(path, content=b"[" * (33 * 2**20), expect=413,
                        headers={**school, "Content-Type": "application/json"})
        assert big.json()["code"] == "too_large"

    # -- a JSON body that is not UTF-8: the framework cannot read it ------------------------
    for path in (status, correct, "/v1/claims/redeem", "/v1/shares", "/v1/verify/batch",
                 "/v1/presentation-requests",
                 *identity["bodies"], "/v1/signatures/certificates", *sso["bodies"], *exams):
        unreadable = http.post(path, content=b'{"code": "\xff"}', expect=400,
                               headers={**school, "Content-Type": "application/json"})
        assert unreadable.json()["code"] == "http_error"

    # -- the public rate limit ----------------------------------------------------------------
    monkeypatch.setattr(api.auth.public_limit(), "amount", 0)
    try:
        for method, path, body in [("POST", "/v1/claims/redeem", {}), ("POST", "/v1/shares", {}),
                                   ("DELETE", f"/v1/shares/{share['share_id']}", None), ("GET", page, None),
                                   ("GET", page + "/qr.png", None), ("GET", page + "/qr.svg", None),
                                   ("GET", page + "/presentation.json", None),
                                   ("GET", page + "/report.pdf", None),
                                   ("GET", "/verify", None),
                                   ("POST", "/v1/verify", {}), ("POST", "/v1/verify/batch", {}),
                                   ("GET", f"/v1/dids/{issuer}", None),
                                   ("POST", "/v1/identity/claims/redeem", {}),
                                   ("GET", identity["challenge"], None),
                                   ("POST", identity["challenge"] + "/answer", {}),
                                   ("POST", "/v1/signatures/certificates", {}),
                                   ("POST", "/v1/signatures/holder", {}),
                                   ("POST", "/v1/signatures/verify", {}),
                                   ("GET", sso["sign_in"], None),
                                   ("POST", "/v1/records/verify", {})]:
            limited = http.request(method, path, json=body, expect=429)
            assert limited.json()["code"] == "rate_limited"
    finally:
        monkeypatch.undo()
    return record


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _identity_tour(served: Any, http: CheckedClient) -> dict[str, Any]:
    """Identity cards: issue (ZIP, JSON, CSV), read, photo, claim, status, claim code, graduate,
    challenge, recognise, history. Returns the paths the body-limit and rate-limit sections
    call again."""
    school, school_b, partner = served.as_org("school-a"), served.as_org("school-b"), served.as_org("partner")
    bureau, auditor = served.as_org("bureau"), served.as_org("auditor")
    nobody = {"Authorization": "Bearer edk_nobody_0123456789"}
    purpose = {"purpose": "openapi test"}
    students = {"kind": "student"}
    zipped = {**school, "Content-Type": "application/zip"}

    # -- issuing: a ZIP of a CSV and photos, a JSON list, a JSON object, a ZIP of a JSON ---------
    roster = roster_zip([student(n) for n in range(4)])
    keyed = {**zipped, "Idempotency-Key": "openapi-cards"}
    issued = http.post(CARDS, params=students, content=roster, headers=keyed, expect=201).json()
    assert http.post(CARDS, params=students, content=roster, headers=keyed, expect=201).json() == issued
    first, second, third, fourth = issued["cards"]
    teacher_row = {k: v for k, v in teacher(1).items() if k != "photo"} | {"photo_base64": _b64(photo(1))}
    teacher_card = http.post(CARDS, params={"kind": "teacher"}, json=[teacher_row], headers=school,
                             expect=201).json()["cards"][0]
    student_row = {k: v for k, v in student(10).items() if k != "photo"} | {"photo_base64": _b64(photo(10))}
    http.post(CARDS, params=students, json={"cards": [student_row]}, headers=bureau, expect=201)
    http.post(CARDS, params={"kind": "teacher"}, content=roster_zip([teacher(2)], as_json=True),
              headers={**school, "Content-Type": "application/x-zip-compressed"}, expect=201)
    http.post(CARDS, params=students, content=roster, headers={"Content-Type": "application/zip"}, expect=401)
    http.post(CARDS, params=students, content=roster, headers={**nobody, "Content-Type": "application/zip"},
              expect=401)
    for key in (partner, auditor):
        http.post(CARDS, params=students, content=roster, headers={**key, "Content-Type": "application/zip"},
                  expect=403)
    exists = http.post(CARDS, params=students, content=roster_zip([student(0)]), headers=zipped, expect=409)
    assert exists.json()["code"] == "card_exists"  # one live card a person
    assert http.post(CARDS, params=students, json=[{}] * 10_001, headers=school,
                     expect=413).json()["code"] == "roster_too_large"
    refused = [
        ({"json": [{"name": "x"}]}, "invalid_roster"),
        ({"content": roster_zip([student(30)]).replace(b"roster.csv", b"roster.txt")}, "malformed_roster"),
        ({"content": b"not a zip"}, "malformed_roster"),
        ({"json": []}, "empty_roster"),
        ({"content": b"a roster", "headers": {**school, "Content-Type": "text/plain"}}, "bad_format"),
        ({"params": {}}, "invalid_input"),  # no ?kind=
        ({"params": {"kind": "graduate"}}, "invalid_input"),  # graduate cards come from student cards
        ({"headers": keyed, "content": roster_zip([student(31)])}, "idempotency_key_reused"),
        ({"headers": {**zipped, "Idempotency-Key": "k" * 81}}, "bad_idempotency_key"),
    ]
    for kwargs, code in refused:
        sent = {"params": students, "headers": zipped, "content": roster} | kwargs
        if "json" in kwargs:
            sent.pop("content")
            sent["headers"] = school
        assert http.post(CARDS, expect=422, **sent).json()["code"] == code, (kwargs, code)
    # A CSV alone: every card needs a photo, which only a ZIP (or JSON's photo_base64) carries.
    csv_text = zipfile.ZipFile(io.BytesIO(roster_zip([student(30)]))).read("roster.csv")
    csv_only = http.post(CARDS, params=students, headers={**school, "Content-Type": "text/csv"},
                         content=csv_text, expect=422).json()
    assert csv_only["code"] == "invalid_roster" and csv_only["details"]["errors"][0]["field"] == "photo"

    # -- reading, with a purpose --------------------------------------------------------------
    card = f"{CARDS}/{first['card_id']}"
    assert "fields" not in http.get(card, params=purpose, headers=school).json()
    assert http.get(card, params={**purpose, "personal": "true"}, headers=bureau).json()["fields"][
        "name"] == "学生0000"
    http.get(card, params={**purpose, "personal": "true"}, headers=auditor)
    http.get(card, params=purpose, expect=401)
    http.get(card, params=purpose, headers=partner, expect=403)
    http.get(card, params=purpose, headers=school_b, expect=404)  # another school's card: as if unknown
    http.get(f"{CARDS}/0x{'0' * 64}", params=purpose, headers=bureau, expect=404)
    http.get(card, headers=school, expect=422)  # no purpose
    http.get(card, params={**purpose, "personal": "maybe"}, headers=school, expect=422)
    assert http.get(card, params={"purpose": "why\x00", "personal": "true"}, headers=school,
                    expect=422).json()["code"] == "bad_purpose"
    assert http.get(card + "/photo", params=purpose, headers=school).content == photo(0)
    http.get(card + "/photo", params=purpose, headers=auditor)
    http.get(card + "/photo", params=purpose, expect=401)
    http.get(card + "/photo", params=purpose, headers=partner, expect=403)
    http.get(card + "/photo", params=purpose, headers=school_b, expect=404)
    http.get(card + "/photo", headers=school, expect=422)
    http.get(card + "/photo", params={"purpose": "why\x00"}, headers=school, expect=422)

    # -- claiming -------------------------------------------------------------------------------
    redeem = "/v1/identity/claims/redeem"
    holder, jwk = _holder()
    encryption = EncryptionKey.generate()
    for bad, code in [({"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}, "bad_encryption_jwk"),
                      (encryption.private_jwk(), "encryption_jwk_private")]:
        assert http.post(redeem, json={"code": first["claim_code"], "holder_jwk": jwk, "encryption_jwk": bad},
                         expect=422).json()["code"] == code
    claimed = http.post(redeem, json={"code": first["claim_code"], "holder_jwk": jwk,
                                      "encryption_jwk": encryption.jwk}).json()
    assert base64.b64decode(claimed["photo_base64"]) == photo(0)
    http.post(redeem, json={"code": first["claim_code"], "holder_jwk": jwk}, expect=404)  # spent
    http.post(redeem, json={"code": "AAAA-BBBB-CCCC-DDDD", "holder_jwk": jwk}, expect=404)
    http.post(redeem, json={"code": "A", "holder_jwk": jwk}, expect=422)
    assert http.post(redeem, json={"code": second["claim_code"], "holder_jwk": {"kty": "RSA"}},
                     expect=422).json()["code"] == "malformed"

    # -- documents encrypted to the holder, who reads them with holder proofs -------------------
    docs = card + "/documents"
    pdf = {**school, "Content-Type": "application/pdf"}
    sent = http.post(docs, params={"filename": "成绩单.pdf"}, content=b"%PDF-1.7 grade sheet", headers=pdf,
                     expect=201).json()
    note = {"content_base64": _b64(b"a note"), "filename": "note.txt", "media_type": "text/plain"}
    http.post(docs, json=note, headers=auditor, expect=201)
    http.post(docs, content=b"%PDF", headers={"Content-Type": "application/pdf"}, expect=401)
    http.post(docs, content=b"%PDF", headers={**partner, "Content-Type": "application/pdf"}, expect=403)
    http.post(docs, content=b"%PDF", headers={**school_b, "Content-Type": "application/pdf"}, expect=404)
    http.post(f"{CARDS}/{third['card_id']}/documents", content=b"%PDF", headers=pdf, expect=409)  # no key
    http.post(docs, content=b"x" * (8 * 2**20 + 1), headers=pdf, expect=413)
    http.post(docs, content=b"x" * (12 * 2**20 + 1), headers=pdf, expect=413)
    http.post(docs, content=b"", headers=pdf, expect=422)

    def as_holder(key: Any, card_id: str, path: str) -> dict[str, str]:
        return {"Authorization": "HolderProof " + make_proof(key, card_id, "GET", path)}

    listed = http.get(docs, headers=as_holder(holder, first["card_id"], docs)).json()
    assert [d["document_id"] for d in listed["documents"]][0] == sent["document_id"]
    http.get(docs, expect=401)
    http.get(docs, headers=as_holder(_holder()[0], first["card_id"], docs), expect=401)  # another key
    http.get(f"{CARDS}/0x{'0' * 64}/documents", headers=as_holder(holder, "0x" + "0" * 64, docs), expect=404)
    one = f"{docs}/{sent['document_id']}"
    fetched = http.get(one, headers=as_holder(holder, first["card_id"], one)).json()
    assert encryption.kid == fetched["kid"] and fetched["jwe"].count(".") == 4
    http.get(one, headers={"Authorization": "HolderProof x"}, expect=401)
    nothing = f"{docs}/{'A' * 22}"
    http.get(nothing, headers=as_holder(holder, first["card_id"], nothing), expect=404)

    # -- status --------------------------------------------------------------------------------
    status = f"{CARDS}/{second['card_id']}/status"
    assert http.post(status, json={"action": "suspend", "reason": 3}, headers=school).json()[
        "status"] == "suspended"
    http.post(status, json={"action": "reinstate"}, headers=bureau)
    http.post(status, json={"action": "reinstate"}, headers=school, expect=409)  # it is active
    http.post(status, json={"action": "revoke"}, expect=401)
    http.post(status, json={"action": "revoke"}, headers=partner, expect=403)
    http.post(status, json={"action": "revoke"}, headers=auditor, expect=403)
    http.post(status, json={"action": "revoke"}, headers=school_b, expect=404)
    http.post(f"{CARDS}/0x{'0' * 64}/status", json={"action": "revoke"}, headers=school, expect=404)
    http.post(status, json={"action": "erase"}, headers=school, expect=422)
    revoked = f"{CARDS}/{fourth['card_id']}"
    http.post(revoked + "/status", json={"action": "revoke", "reason": 1}, headers=school)
    http.post(revoked + "/status", json={"action": "reinstate"}, headers=school, expect=409)  # for good
    assert http.post(redeem, json={"code": fourth["claim_code"], "holder_jwk": jwk},
                     expect=409).json()["code"] == "card_not_live"

    # -- a new claim code: redeemed with a new key, it rotates the card's key ------------------
    code = http.post(card + "/claim-code", headers=school).json()
    new_holder, new_jwk = _holder()
    rotated = http.post(redeem, json={"code": code["claim_code"], "holder_jwk": new_jwk}).json()
    http.post(card + "/claim-code", expect=401)
    http.post(card + "/claim-code", headers=partner, expect=403)
    http.post(card + "/claim-code", headers=school_b, expect=404)
    http.post(revoked + "/claim-code", headers=school, expect=409)

    # -- challenge and recognition --------------------------------------------------------------
    challenges = "/v1/identity/challenges"

    def challenge() -> dict[str, Any]:
        made: dict[str, Any] = http.post(challenges, headers=partner, expect=201, json={
            "audience": EXAM, "claims": ["name", "className"], "expires_in_seconds": 120}).json()
        return made

    asked = challenge()
    assert http.get(f"{challenges}/{asked['challenge_id']}").json()["nonce"] == asked["nonce"]
    http.get(f"{challenges}/AAAAAAAAAAAAAAAA", expect=404)
    http.post(challenges, json={"audience": EXAM}, expect=401)
    for body, problem in [({"audience": "a\nb"}, "bad_audience"),
                          ({"audience": EXAM, "claims": ["nationalId"]}, "bad_claims"),
                          ({"audience": EXAM, "expires_in_seconds": 5}, "invalid_input")]:
        assert http.post(challenges, json=body, headers=partner, expect=422).json()["code"] == problem
    verify = "/v1/identity/verify"
    answer = present(rotated["sd_jwt"], new_holder, asked, {"name", "className", "portrait"})
    checked = {"challenge_id": asked["challenge_id"], "presentation": answer, "photo_base64": _b64(photo(0))}
    verdict = http.post(verify, json=checked, headers=partner).json()
    assert verdict["valid"] is True and verdict["photo_matches"] is True, verdict
    assert http.post(verify, json=checked, headers=partner).json()["failures"] == ["challenge_used"]
    old = challenge()
    stale = present(claimed["sd_jwt"], holder, old, {"name"})  # the key before the rotation
    assert http.post(verify, headers=partner, json={"challenge_id": old["challenge_id"],
                                                    "presentation": stale}).json()["failures"] == [
        "claims_missing", "holder_key_rotated"]
    http.post(verify, json=checked, expect=401)
    http.post(verify, json={**checked, "challenge_id": "AAAAAAAAAAAAAAAA"}, headers=partner, expect=404)
    later = challenge()
    http.post(verify, json={**checked, "challenge_id": later["challenge_id"]}, headers=school,
              expect=404)  # another organisation's challenge: as if unknown
    http.post(verify, json={**checked, "challenge_id": later["challenge_id"], "photo_base64": "not base64!"},
              headers=partner, expect=422)
    # Cross-device: the wallet answers the challenge it scanned; the relying party asks the verdict.
    online = challenge()
    answered = f"{challenges}/{online['challenge_id']}/answer"
    http.post(answered, expect=204, json={
        "presentation": present(rotated["sd_jwt"], new_holder, online, {"name", "className", "portrait"})})
    http.post(answered, json={"presentation": "x" * 20}, expect=409)  # answered already
    http.post(f"{challenges}/AAAAAAAAAAAAAAAA/answer", json={"presentation": "x" * 20}, expect=404)
    http.post(answered, json={"presentation": "short"}, expect=422)
    assert http.post(verify, headers=partner, json={"challenge_id": online["challenge_id"]}).json()["valid"]

    # -- graduation: the student card ends, a graduate card continues it ------------------------
    graduate = card + "/graduate"
    graduation = {"graduation_date": "2028-06-30"}
    grad = http.post(graduate, json=graduation, headers=school, expect=201).json()["cards"][0]
    assert grad["kind"] == "graduate"
    http.post(graduate, json=graduation, headers=school, expect=409)  # the student card has ended
    http.post(graduate, json=graduation, expect=401)
    http.post(graduate, json=graduation, headers=partner, expect=403)
    http.post(f"{CARDS}/{third['card_id']}/graduate", json=graduation, headers=school_b, expect=404)
    http.post(f"{CARDS}/{teacher_card['card_id']}/graduate", json=graduation, headers=school, expect=422)
    http.post(f"{CARDS}/{third['card_id']}/graduate", json={"graduation_date": "June"}, headers=school,
              expect=422)
    # The graduate enrols again (the same national student number): a new student card, and
    # graduating from it is refused while the first graduate card is live.
    again = http.post(CARDS, params=students, content=roster_zip([student(0)]), headers=zipped,
                      expect=201).json()["cards"][0]
    assert http.post(f"{CARDS}/{again['card_id']}/graduate", json=graduation, headers=school,
                     expect=409).json()["code"] == "card_exists"

    # -- history, checked against the chain -----------------------------------------------------
    history = card + "/history"
    trace = http.get(history, headers=auditor).json()
    assert [e["action"] for e in trace["history"]] == [
        "issued", "key_bound", "key_rotated", "status_changed"] and trace["successor"] == grad["card_id"]
    assert all(e["chain"] == "confirmed" for e in http.get(history, params={"check": "chain"},
                                                           headers=bureau).json()["history"])
    http.get(history, headers=school)
    assert http.get(history, headers=as_holder(new_holder, first["card_id"], history)).json()[
        "card_id"] == first["card_id"]  # the card's holder, with the key it rotated to
    http.get(history, headers=as_holder(holder, first["card_id"], history), expect=401)  # the old key
    http.get(history, expect=401)
    http.get(history, headers=partner, expect=403)
    http.get(history, headers=school_b, expect=404)
    http.get(f"{CARDS}/0x{'0' * 64}/history", headers=auditor, expect=404)
    http.get(history, params={"check": "yes"}, headers=auditor, expect=422)

    return {"bodies": (status, graduate, redeem, challenges, verify, answered),
            "challenge": f"{challenges}/{asked['challenge_id']}"}


def _signatures_tour(served: Any, http: CheckedClient) -> dict[str, Any]:
    """Seals, holder certificates, holder signatures and verification, with every status."""
    from ledger.signatures.detached import document_manifest, sign_detached
    from tests.signature_fixtures import grade_sheet, marks_csv, teacher_wallet

    school, auditor = served.as_org("school-a"), served.as_org("auditor")
    seals = "/v1/signatures"
    csv = {**school, "Content-Type": "text/csv"}
    sealed = http.post(seals, content=grade_sheet(), headers={**school, "Content-Type": "application/pdf"},
                       expect=201).json()
    token = http.post(seals, params={"format": "sm2", "name": "marks.csv"}, content=marks_csv(), headers=csv,
                      expect=201).json()["signature"]
    http.post(seals, content=marks_csv(), expect=401)
    http.post(seals, content=marks_csv(), headers={**auditor, "Content-Type": "text/csv"}, expect=403)
    http.post(seals, params={"format": "pdf"}, content=marks_csv(), headers=csv, expect=422)

    verify = "/v1/signatures/verify"
    assert http.post(verify, files={"document": ("g.pdf", base64.b64decode(sealed["signed_pdf_base64"]))}
                     ).json()["valid"] is True
    assert http.post(verify, files={"document": ("m.csv", marks_csv())}, data={"signature": token}
                     ).json()["valid"] is True
    http.post(verify, files={"document": ("m.csv", marks_csv())}, expect=422)  # no signature
    http.post(verify, files={"document": ("big.pdf", b"%PDF-" + b" " * (20 * 2**20))}, expect=413)

    wallet, card_id = teacher_wallet(served, served.node.settings.data_dir.parent / "sig-wallet", n=7)
    signer = wallet.card_signer(card_id)
    certificates = "/v1/signatures/certificates"
    asked = {"card_id": card_id, "holder_jwk": wallet.holder_jwk, "key_salt": signer["key_salt"],
             "proof": wallet.signing_proof(card_id)}
    cert = http.post(certificates, json=asked).json()
    stranger, stranger_jwk = _holder()
    http.post(certificates, json={**asked, "holder_jwk": stranger_jwk, "proof": jose_sign(
        {"card_id": card_id, "aud": "eduledger:signing-certificate", "iat": int(time.time())}, stranger)},
              expect=403)
    http.post(certificates, json={**asked, "card_id": "0x" + "1" * 64}, expect=404)
    http.post(certificates, json={**asked, "proof": "x" * 20}, expect=422)

    holder = "/v1/signatures/holder"
    signed = wallet.sign_pdf(card_id, grade_sheet(), cert["certificate_pem"], cert["chain_pem"])
    http.post(holder, content=signed, headers={"Content-Type": "application/pdf"})
    http.post(holder, json={"signature": wallet.sign_detached(card_id, marks_csv())})
    forged = sign_detached(document_manifest(marks_csv()), {**signer, "jwk": stranger_jwk},
                           kid=f"urn:eduledger:card:{card_id}#x", key=stranger)
    http.post(holder, json={"signature": forged}, expect=403)
    elsewhere = sign_detached(document_manifest(marks_csv()), {**signer, "card_id": "0x" + "2" * 64,
                                                               "jwk": stranger_jwk}, kid="x", key=stranger)
    http.post(holder, json={"signature": elsewhere}, expect=404)
    http.post(holder, content=b"x", headers={"Content-Type": "text/plain"}, expect=422)

    http.post(f"{CARDS}/{card_id}/status", json={"action": "revoke"}, headers=school)
    http.post(certificates, json={**asked, "proof": wallet.signing_proof(card_id)}, expect=409)
    return {"bodies": (seals, holder, verify, certificates)}


def jose_sign(payload: dict[str, Any], key: Any) -> str:
    from ledger.credentials.jose import sign_jws

    return sign_jws({"alg": "EdDSA"}, payload, key)


SSO_CLIENTS = "/v1/sso/clients"
PLATFORM = "https://exams.example.edu.cn/sso/callback"


def _sso_sign_in(http: httpx.Client, client_id: str) -> str:
    """A sign-in started at the authorization endpoint (OAuth's, outside the document): its id."""
    import re

    page = http.get("/sso/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": PLATFORM, "scope": "openid profile",
        "state": "s", "nonce": "n", "code_challenge": "c" * 43, "code_challenge_method": "S256"})
    assert page.status_code == 200, page.text
    found = re.search(r"/sso/sign-ins/([A-Za-z0-9_-]+)/continue", page.text)
    assert found
    return found[1]


def _sso_tour(served: Any, http: CheckedClient) -> dict[str, Any]:
    """Single sign-on: relying parties registered, listed, disabled; the sign-in status the
    page polls. The protocol's own endpoints answer in OAuth's formats and are described by
    the discovery document instead (tests/test_sso.py)."""
    partner, bureau, auditor = served.as_org("partner"), served.as_org("bureau"), served.as_org("auditor")
    body = {"name": "考试系统 Exams", "redirect_uris": [PLATFORM]}
    made = http.post(SSO_CLIENTS, json=body, headers=partner, expect=201).json()
    assert made["client_secret"] and made["sector"] == "exams.example.edu.cn"
    public = http.post(SSO_CLIENTS, json={**body, "public": True}, headers=bureau, expect=201).json()
    assert public["client_secret"] is None and public["token_endpoint_auth_method"] == "none"
    http.post(SSO_CLIENTS, json=body, expect=401)
    http.post(SSO_CLIENTS, json=body, headers=auditor, expect=403)
    for wrong, code in [({"redirect_uris": ["http://exams.example/cb"]}, "bad_redirect_uri"),
                        ({"redirect_uris": [PLATFORM, "https://other.example/cb"]}, "sector_required"),
                        ({"sector": "A B"}, "bad_sector"), ({"name": "a\nb"}, "bad_client_name"),
                        ({"redirect_uris": []}, "invalid_input")]:
        assert http.post(SSO_CLIENTS, json={**body, **wrong}, headers=partner,
                         expect=422).json()["code"] == code, wrong
    assert [c["client_id"] for c in http.get(SSO_CLIENTS, headers=partner).json()["clients"]] == [
        made["client_id"]]
    http.get(SSO_CLIENTS, expect=401)
    http.get(SSO_CLIENTS, headers=auditor, expect=403)

    sign_in = f"/v1/sso/sign-ins/{_sso_sign_in(served.http, made['client_id'])}"
    assert http.get(sign_in).json()["status"] == "waiting"
    http.get("/v1/sso/sign-ins/AAAAAAAAAAAAAAAA", expect=404)

    one = f"{SSO_CLIENTS}/{made['client_id']}"
    http.delete(one, expect=401)
    http.delete(one, headers=auditor, expect=403)
    http.delete(one, headers=bureau, expect=404)  # another organisation's client: as if unknown
    assert http.delete(one, headers=partner, expect=200).json()["disabled"] is True
    return {"bodies": (SSO_CLIENTS,), "sign_in": sign_in}


def _exam_body(cards: list[str], hours: float = 2) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=1)
    return {"name": "期末考试 Final exam", "room": "A101", "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=hours)).isoformat(),
            "candidates": [{"card_id": c, "candidate_number": f"N{i}", "seat": str(i)}
                           for i, c in enumerate(cards)]}


def _exam_tour(served: Any, http: CheckedClient) -> tuple[str, ...]:
    """Exam sessions: create, read, proctor links, the proctor's page and desk, a check-in by
    the wallet's answer, and a link that has expired. Returns the paths that take a body."""
    from sqlalchemy import update

    from ledger.identity.models import ExamProctorLink, ExamSession
    from ledger.store import session_scope

    school, partner, bureau = served.as_org("school-a"), served.as_org("partner"), served.as_org("bureau")
    auditor = served.as_org("auditor")
    cards = http.post(CARDS, params={"kind": "student"}, content=roster_zip([student(40), student(41)]),
                      headers={**school, "Content-Type": "application/zip"}, expect=201).json()["cards"]
    key, jwk = _holder()
    card = http.post("/v1/identity/claims/redeem",
                     json={"code": cards[0]["claim_code"], "holder_jwk": jwk}).json()
    exams = "/v1/exams"
    body = _exam_body([c["card_id"] for c in cards])
    made = http.post(exams, json=body, headers=partner, expect=201).json()
    exam = f"{exams}/{made['exam_id']}"
    desk = {"X-Proctor-Token": made["proctor_link"]["token"]}
    http.post(exams, json=body, expect=401)
    http.post(exams, json=body, headers=bureau, expect=403)
    for bad, code in [(_exam_body(["0x" + "ab" * 32]), "unknown_card"),
                      (_exam_body([cards[0]["card_id"]] * 2), "duplicate_candidate"),
                      (_exam_body([cards[0]["card_id"]], hours=-1), "bad_exam_times"),
                      ({**body, "candidates": []}, "invalid_input")]:
        assert http.post(exams, json=bad, headers=partner, expect=422).json()["code"] == code
    assert http.get(exam, headers=partner).json()["candidate_count"] == 2
    http.get(exam, expect=401)
    http.get(exam, headers=auditor, expect=403)
    http.get(exam, headers=school, expect=404)  # another organisation's session: as if unknown
    links = exam + "/proctor-links"
    http.post(links, headers=partner, expect=201)
    http.post(links, expect=401)
    http.post(links, headers=bureau, expect=403)
    http.post(links, headers=school, expect=404)
    page = http.get(f"/exams/{made['exam_id']}/proctor")
    assert "考场签到" in page.text and page.headers["referrer-policy"] == "no-referrer"
    http.get("/exams/nothing/proctor", expect=404)
    browser = {"Accept": "text/html"}
    assert "没有这场考试" in http.get("/exams/nothing/proctor", headers=browser, expect=404).text
    # The desk: the session, a challenge, the wallet's answer with its photo, the verdict.
    http.get(exam + "/proctor", headers=desk)
    http.get(exam + "/proctor", expect=401)
    started = http.post(exam + "/check-ins", headers=desk, expect=201).json()
    http.post(exam + "/check-ins", headers={"X-Proctor-Token": "ept_wrong"}, expect=401)
    check_in = f"{exam}/check-ins/{started['check_in_id']}"
    assert http.get(check_in, headers=desk).json()["state"] == "waiting"
    challenge = http.get(f"/v1/identity/challenges/{started['challenge_id']}").json()
    answer = f"/v1/identity/challenges/{started['challenge_id']}/answer"
    presentation = present(card["sd_jwt"], key, challenge, {"name", "school", "portrait"})
    not_a_photo = {"presentation": presentation, "photo_base64": _b64(b"not an image")}
    assert http.post(answer, expect=422, json=not_a_photo).json()["code"] == "bad_photo"
    http.post(answer, expect=204, json={"presentation": presentation, "photo_base64": _b64(photo(0))})
    assert http.get(check_in, headers=desk).json()["verdict"]["code"] == "checked_in"
    http.get(check_in, expect=401)
    http.get(f"{exam}/check-ins/00000000-0000-4000-8000-000000000000", headers=desk, expect=404)
    # A session that is over: its links open nothing, and it gets no new ones.
    over = http.post(exams, json=_exam_body([cards[1]["card_id"]]), headers=partner, expect=201).json()
    past = datetime.now(UTC) - timedelta(minutes=5)
    with session_scope(served.node.engine, write=True) as db:
        db.execute(update(ExamSession).where(ExamSession.id == over["exam_id"])
                   .values(starts_at=past - timedelta(hours=1), ends_at=past))
        db.execute(update(ExamProctorLink).where(ExamProctorLink.exam_id == over["exam_id"])
                   .values(expires_at=past))
    gone, late = f"{exams}/{over['exam_id']}", {"X-Proctor-Token": over["proctor_link"]["token"]}
    http.get(gone + "/proctor", headers=late, expect=403)
    http.post(gone + "/check-ins", headers=late, expect=403)
    http.get(gone + "/check-ins/00000000-0000-4000-8000-000000000000", headers=late, expect=403)
    http.post(gone + "/proctor-links", headers=partner, expect=409)
    return (exams,)


def _evaluation_tour(served: Any, http: CheckedClient) -> tuple[str, ...]:
    from tests.evaluation_fixtures import CLASS, EVALUATION, framework, issue_class, school_layer

    school, school_b, bureau = served.as_org("school-a"), served.as_org("school-b"), served.as_org("bureau")
    nothing = "00000000-0000-4000-8000-000000000000"
    people = issue_class(served, 2, offset=3000)
    student, outsider = people.students[0], people.other_school_student
    # -- frameworks
    frameworks = EVALUATION + "/frameworks"
    v1 = http.post(frameworks, json=framework(), headers=bureau, expect=201).json()
    http.post(frameworks, json=framework(), expect=401)
    http.post(frameworks, json=framework(), headers=school, expect=403)
    unbalanced = framework()
    unbalanced["domains"][0]["indicators"][0]["weight"] = 10
    assert http.post(frameworks, json=unbalanced, headers=bureau, expect=422).json()["code"] == "bad_weights"
    layers = EVALUATION + "/school-frameworks"
    own = http.post(layers, json=school_layer(v1["framework_id"]), headers=school, expect=201).json()
    http.post(layers, json=school_layer(v1["framework_id"]), expect=401)
    http.post(layers, json=school_layer(v1["framework_id"]), headers=bureau, expect=403)
    http.post(layers, json=school_layer(nothing), headers=school, expect=404)
    http.post(layers, json=school_layer(own["framework_id"]), headers=school, expect=422)  # not a bureau's
    http.get(frameworks, headers=school)
    http.get(frameworks, params={"school_year": "2025-2026"}, headers=bureau)
    http.get(frameworks, expect=401)
    http.get(frameworks, params={"school_year": "2025"}, headers=school, expect=422)
    http.get(f"{frameworks}/{v1['framework_id']}", headers=school)
    http.get(f"{frameworks}/{v1['framework_id']}", expect=401)
    http.get(f"{frameworks}/{nothing}", headers=school, expect=404)
    # -- a term
    term, terms = "2025-2026-1", EVALUATION + "/terms"
    body = {"term": term, "framework_id": own["framework_id"]}
    http.post(terms, json=body, headers=school, expect=201)
    http.post(terms, json=body, expect=401)
    http.post(terms, json=body, headers=bureau, expect=403)
    http.post(terms, json={**body, "framework_id": nothing}, headers=school, expect=404)
    http.post(terms, json=body, headers=school, expect=409)
    http.post(terms, json=body, headers=school_b, expect=422)  # another school's version
    http.post(terms, json={"term": "2025-2026-2", "framework_id": v1["framework_id"]}, headers=school,
              expect=201)  # a term left empty
    at = f"{terms}/{term}"
    http.get(at, headers=school)
    http.get(at, expect=401)
    http.get(at, headers=bureau, expect=403)
    http.get(at, headers=school_b, expect=404)
    teachers = {"teacher_card": people.teacher, "classes": [CLASS]}
    http.post(at + "/teachers", json=teachers, headers=school)
    http.post(at + "/teachers", json=teachers, expect=401)
    http.post(at + "/teachers", json=teachers, headers=bureau, expect=403)
    http.post(at + "/teachers", json=teachers, headers=school_b, expect=404)
    http.post(at + "/teachers", json={**teachers, "classes": [" "]}, headers=school, expect=422)
    # -- records and scores
    record_body = {"student_card": student, "indicator_code": "L2", "author_role": "teacher",
                   "teacher_card": people.teacher, "occurred_on": "2025-10-10", "title": "校园农场",
                   "evidence": [{"evidence_type": "照片", "filename": "a.jpg", "media_type": "image/jpeg",
                                 "content_base64": _b64(photo(1))}]}
    record = http.post(at + "/records", json=record_body, headers=school, expect=201).json()
    http.post(at + "/records", json=record_body, expect=401)
    http.post(at + "/records", json={**record_body, "teacher_card": people.other_teacher}, headers=school,
              expect=403)
    http.post(at + "/records", json={**record_body, "student_card": outsider}, headers=school, expect=404)
    http.post(at + "/records", json={**record_body, "indicator_code": "X1"}, headers=school, expect=422)
    scores = {"teacher_card": people.teacher, "scores": [
        {"student_card": student, "indicator_code": "L2", "value": "A"}]}
    http.post(at + "/scores", json=scores, headers=school)
    http.post(at + "/scores", json=scores, expect=401)
    http.post(at + "/scores", json={**scores, "teacher_card": people.other_teacher}, headers=school,
              expect=403)
    http.post(at + "/scores", json={**scores, "scores": [{**scores["scores"][0], "student_card": outsider}]},
              headers=school, expect=404)
    http.post(at + "/scores", json={**scores, "scores": [{**scores["scores"][0], "value": "Z"}]},
              headers=school, expect=422)
    # -- the procedure
    chosen = {"selected": [record["record_id"]]}
    http.post(at + "/selection", json=chosen, headers=school)
    http.post(at + "/selection", json=chosen, expect=401)
    http.post(at + "/selection", json=chosen, headers=bureau, expect=403)
    http.post(at + "/selection", json={"selected": [nothing]}, headers=school, expect=404)
    http.post(at + "/selection", json={**chosen, "not_selected": chosen["selected"]}, headers=school,
              expect=422)
    notice = f"{at}/classes/{CLASS}/notice"
    people.clock.set("2025-11-03")
    http.post(notice, json={"days": 0}, headers=school, expect=422)
    http.post(notice, json={"days": 5}, headers=school)
    http.post(notice, json={"days": 5}, expect=401)
    http.post(notice, json={"days": 5}, headers=bureau, expect=403)
    http.post(f"{at}/classes/nothing/notice", json={"days": 5}, headers=school, expect=404)
    http.post(notice, json={"days": 5}, headers=school, expect=409)  # in its notice already
    http.post(at + "/selection", json=chosen, headers=school, expect=409)
    objections = f"{EVALUATION}/records/{record['record_id']}/objections"
    objection_body = {"raised_by": "student", "reason": "照片不是我"}
    objection = http.post(objections, json=objection_body, headers=school, expect=201).json()
    http.post(objections, json=objection_body, expect=401)
    http.post(objections, json=objection_body, headers=bureau, expect=403)
    http.post(f"{EVALUATION}/records/{nothing}/objections", json=objection_body, headers=school, expect=404)
    http.post(objections, json={**objection_body, "reason": ""}, headers=school, expect=422)
    resolve = f"{EVALUATION}/objections/{objection['objection_id']}/resolve"
    resolution = {"outcome": "kept", "note": "核实无误"}
    http.post(resolve, json={**resolution, "outcome": "maybe"}, headers=school, expect=422)
    http.post(resolve, json=resolution, headers=school)
    http.post(resolve, json=resolution, expect=401)
    http.post(resolve, json=resolution, headers=bureau, expect=403)
    http.post(f"{EVALUATION}/objections/{nothing}/resolve", json=resolution, headers=school, expect=404)
    http.post(resolve, json=resolution, headers=school, expect=409)  # resolved already
    lock = f"{at}/classes/{CLASS}/lock"
    http.post(lock, headers=school, expect=409)  # the notice is not over
    people.clock.set("2025-11-11")
    http.post(objections, json=objection_body, headers=school, expect=409)  # the notice is over
    http.post(lock, headers=school)
    http.post(lock, expect=401)
    http.post(lock, headers=bureau, expect=403)
    http.post(f"{at}/classes/nothing/lock", headers=school, expect=404)
    profile = f"{at}/students/{student}/profile"
    assert http.get(profile, headers=school).json()["domains"]["labour"]["indicators"][1]["value"] == "A"
    http.get(profile, expect=401)
    http.get(profile, headers=bureau, expect=403)
    http.get(f"{at}/students/{outsider}/profile", headers=school, expect=404)
    # -- sealing
    assert http.post(at + "/seal", headers=school).json()["status"] == "sealed"
    http.post(at + "/seal", expect=401)
    http.post(at + "/seal", headers=bureau, expect=403)
    http.post(at + "/seal", headers=school_b, expect=404)
    http.post(f"{terms}/2025-2026-2/seal", headers=school, expect=409)  # nothing to seal
    sealed = f"{at}/students/{student}/sealed"
    assert http.get(sealed, params={"purpose": "openapi"}, headers=school).json()["anchor"] is not None
    http.get(sealed, params={"purpose": "openapi"}, expect=401)
    http.get(sealed, params={"purpose": "openapi"}, headers=bureau, expect=403)
    http.get(f"{at}/students/{people.students[1]}/sealed", params={"purpose": "openapi"}, headers=school,
             expect=404)  # nothing of theirs was sealed
    http.get(sealed, headers=school, expect=422)
    for path, payload in [("/teachers", teachers), ("/records", record_body), ("/scores", scores)]:
        assert http.post(at + path, json=payload, headers=school, expect=409).json()["code"] == "term_sealed"
    return (frameworks, layers, terms, at + "/teachers", at + "/records", at + "/scores", at + "/selection",
            notice,
            objections, resolve)


def _wait_done(http: CheckedClient, run_id: str, key: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        run: dict[str, Any] = http.get(f"/v1/audit/runs/{run_id}", headers=key).json()
        if run["status"] in ("done", "failed") or time.monotonic() > deadline:
            assert run["status"] == "done", run
            return run
        time.sleep(0.2)


@dataclass
class LostChain:
    """A node on an external chain (an embedded one behind its own /rpc, on a port of its
    own): ``stop_chain`` takes that chain server away while the node keeps serving."""

    node: Any
    base: str
    http: httpx.Client
    keys: dict[str, str]
    stop_chain: Callable[[], None]

    def as_org(self, org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[org]}"}


@contextmanager
def _node_on_a_chain_that_goes(directory: Path) -> Iterator[LostChain]:
    funder = Account.create()
    chain = EmbeddedChain(directory / "chain", alloc={funder.address: 10**24})
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_FUNDER_KEY", funder.key.to_0x_hex())
    chain_server = ExitStack()
    try:
        chain_url = chain_server.enter_context(serve_app(rpc_only_app(chain)))
        settings = Settings(data_dir=directory / "data", rpc_url=chain_url + "/rpc")
        node = init_network(settings, DEMO_CONSORTIUM)
        try:
            keys = json.loads((settings.data_dir / "api-keys.json").read_text())
            with serve_app(create_app(node, background=False)) as base, \
                    httpx.Client(base_url=base, timeout=60) as http:
                yield LostChain(node, base, http, keys, chain_server.close)
        finally:
            node.close()
    finally:
        chain_server.close()
        chain.close()
        mp.undo()


def _records_tour(served: Any, http: CheckedClient) -> dict[str, Any]:
    """A statement stored through the LRS and anchored: its proof file (read with a purpose,
    another school's as if unknown), and its verification. Returns the record file."""
    school, school_b = served.as_org("school-a"), served.as_org("school-b")
    basic = httpx.BasicAuth("school-a", served.api_keys["school-a"])
    stored = served.http.post("/xapi/statements", auth=basic, headers={"X-Experience-API-Version": "2.0.0"},
                              json={"actor": {"objectType": "Agent",
                                              "account": {"homePage": "https://school-a.example.edu.cn/learners",
                                                          "name": "L000001"}},
                                    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                                    "object": {"id": "https://school-a.example.edu.cn/courses/math-7"}})
    assert stored.status_code == 200, stored.text
    statement_id = stored.json()[0]
    proof, purpose = f"/v1/records/{statement_id}/proof", {"purpose": "openapi test"}
    assert http.get(proof, params=purpose, headers=school, expect=404).json()["code"] == "record_not_anchored"
    served.app.state.services.records.anchor_due(force=True)
    record: dict[str, Any] = http.get(proof, params=purpose, headers=school).json()
    http.get(proof, params=purpose, expect=401)
    http.get(proof, params=purpose, headers=school_b, expect=404)  # another school's statement
    http.get(proof, headers=school, expect=422)  # no purpose
    assert http.get("/v1/records/not-a-uuid/proof", params=purpose, headers=school,
                    expect=400).json()["code"] == "bad_statement"
    assert http.post("/v1/records/verify", json=record).json()["valid"] is True
    http.post("/v1/records/verify", json={"format": "eduledger-record/1"}, expect=422)
    http.post("/v1/records/verify", content=b'{"format": "\xff"}', expect=400,
              headers={"Content-Type": "application/json"})
    return record


def _chain_gone(lost: LostChain, record: dict[str, Any]) -> DocumentedAnswers:
    """Every route that reads the chain answers 503 when the chain node does not answer."""
    answers = DocumentedAnswers(_document(lost.base))
    school, auditor, partner = lost.as_org("school-a"), lost.as_org("auditor"), lost.as_org("partner")
    http = lost.http
    # While the chain is there: credentials, a redeemed one, a share, a finished audit run.
    batch = http.post("/v1/credentials", headers=school, json={
        "type": "transcript", "credentials": [transcript_row(n, courses=1) for n in range(4)]}).json()
    first, second, third, fourth = batch["credentials"]
    holder, jwk = _holder()
    redeemed = http.post("/v1/claims/redeem", json={"code": first["claim_code"], "holder_jwk": jwk}).json()
    presentation = add_key_binding(redeemed["sd_jwt"], holder_key=holder, aud=lost.base, nonce="n")
    share = http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 3}).json()
    code = http.get(f"/s/{share['share_id']}", params={"format": "json"}).json()["share"]["verify_code"]
    issuer = http.post("/v1/verify", json={"credential": redeemed["sd_jwt"]}).json()["issuer"]["id"]
    run = http.post("/v1/audit/runs", headers=auditor).json()
    _wait_done(CheckedClient(http, answers), run["run_id"], auditor)
    zipped = {**school, "Content-Type": "application/zip"}
    cards = http.post(CARDS, params={"kind": "student"}, content=roster_zip([student(n) for n in range(3)]),
                      headers=zipped).json()["cards"]
    card_holder, card_jwk = _holder()
    card = http.post("/v1/identity/claims/redeem",
                     json={"code": cards[0]["claim_code"], "holder_jwk": card_jwk}).json()
    from ledger.signatures.detached import document_manifest, sign_detached
    from tests.signature_fixtures import marks_csv

    seal = http.post("/v1/signatures", params={"format": "jws"}, content=marks_csv(),
                     headers={**school, "Content-Type": "text/csv"}).json()["signature"]
    platform = http.post(SSO_CLIENTS, headers=partner,
                         json={"name": "考试系统", "redirect_uris": [PLATFORM]}).json()
    sign_in = f"/v1/sso/sign-ins/{_sso_sign_in(http, platform['client_id'])}"
    exam = http.post("/v1/exams", headers=partner, json=_exam_body([cards[0]["card_id"]])).json()
    exam_path, desk = f"/v1/exams/{exam['exam_id']}", {"X-Proctor-Token": exam["proctor_link"]["token"]}
    started = http.post(exam_path + "/check-ins", headers=desk).json()
    at_desk = http.get(f"/v1/identity/challenges/{started['challenge_id']}").json()
    http.post(f"/v1/identity/challenges/{started['challenge_id']}/answer", json={
        "presentation": present(card["sd_jwt"], card_holder, at_desk, {"name", "school", "portrait"})})

    lost.stop_chain()
    time.sleep(1.1)  # past the status projection's max_age: the next verification asks the chain
    row = transcript_row(9, courses=1)
    chain_reads: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/health", {}), ("GET", "/v1/network", {}),
        ("POST", "/v1/credentials",
         {"json": {"type": "transcript", "credentials": [row]}, "headers": school}),
        ("POST", f"/v1/credentials/{second['credential_id']}/status",
         {"json": {"action": "suspend"}, "headers": school}),
        ("POST", f"/v1/credentials/{third['credential_id']}/correct",
         {"json": {"credential": row}, "headers": school}),
        ("POST", "/v1/shares", {"json": {"presentation": presentation, "expires_in_days": 3}}),
        ("GET", f"/s/{share['share_id']}", {"headers": {"Accept": "application/json"}}),
        ("GET", f"/s/{share['share_id']}", {"headers": {"Accept": "text/html"}}),
        ("GET", f"/s/{share['share_id']}/report.pdf", {}),
        ("GET", "/verify", {"params": {"code": code}}),
        ("POST", "/v1/verify", {"json": {"credential": redeemed["sd_jwt"]}}),
        ("POST", "/v1/verify/batch", {"json": {"credentials": [redeemed["sd_jwt"]]}}),
        ("GET", f"/v1/dids/{issuer}", {}),
        ("GET", f"/v1/audit/history/{first['credential_id']}", {"headers": auditor}),
        ("POST", "/v1/audit/runs", {"headers": auditor}),
        ("POST", CARDS,
         {"params": {"kind": "student"}, "content": roster_zip([student(9)]), "headers": zipped}),
        ("POST", f"{CARDS}/{cards[1]['card_id']}/status", {"json": {"action": "suspend"}, "headers": school}),
        ("POST", f"{CARDS}/{cards[2]['card_id']}/graduate",
         {"json": {"graduation_date": "2028-06-30"}, "headers": school}),
        ("GET", f"{CARDS}/{cards[0]['card_id']}/history", {"headers": auditor}),
        ("POST", "/v1/identity/claims/redeem", {"json": {"code": cards[1]["claim_code"], "holder_jwk": jwk}}),
        ("POST", "/v1/signatures",
         {"content": marks_csv(), "headers": {**school, "Content-Type": "text/csv"}}),
        ("POST", "/v1/signatures/verify", {"files": {"document": ("m.csv", marks_csv())},
                                           "data": {"signature": seal}}),
        ("POST", "/v1/signatures/certificates", {"json": {
            "card_id": cards[0]["card_id"], "holder_jwk": card_jwk, "key_salt": "0x" + "0" * 64,
            "proof": add_key_binding(card["sd_jwt"], holder_key=card_holder, aud="x", nonce="n")}}),
        ("POST", "/v1/signatures/holder", {"json": {"signature": sign_detached(
            document_manifest(marks_csv()), {"type": "card", "card_id": cards[0]["card_id"],
                                             "key_salt": "0x" + "0" * 64, "jwk": card_jwk},
            kid="x", key=card_holder)}}),
        ("POST", "/v1/exams", {"json": _exam_body([cards[1]["card_id"]]), "headers": partner}),
        ("GET", f"{exam_path}/check-ins/{started['check_in_id']}", {"headers": desk}),  # decided on chain
        ("POST", "/v1/records/verify", {"json": record}),  # another chain's record: still asks
    ]
    checked = CheckedClient(http, answers)
    for method, path, kwargs in chain_reads:
        assert checked.request(method, path, expect=503, **kwargs).headers["content-type"]
    # What reads only the store still answers.
    checked.get(f"/v1/credentials/{fourth['credential_id']}", params={"purpose": "test"}, headers=school)
    checked.get(f"/v1/audit/runs/{run['run_id']}", headers=auditor)
    card_path = f"{CARDS}/{cards[0]['card_id']}"
    checked.get(card_path, params={"purpose": "test", "personal": "true"}, headers=school)
    checked.get(card_path + "/photo", params={"purpose": "test"}, headers=school)
    checked.post(card_path + "/claim-code", headers=school)
    asked = checked.post("/v1/identity/challenges", json={"audience": EXAM}, headers=partner,
                         expect=201).json()  # the store alone
    challenge = f"/v1/identity/challenges/{asked['challenge_id']}"
    checked.get(challenge)
    # Recognition checks the answer against the chain.
    answer = present(card["sd_jwt"], card_holder, asked, set())
    checked.post("/v1/identity/verify", headers=partner, expect=503,
                 json={"challenge_id": asked["challenge_id"], "presentation": answer})
    # A node whose credential service was never used (restarted, say) needs the chain once
    # for it: its first credential request is a 503 too, and so is its first identity-card
    # request (the identity service checks presentations with the credential verifier).
    with serve_app(create_app(lost.node, background=False)) as base, \
            httpx.Client(base_url=base, timeout=60) as fresh_http:
        fresh = CheckedClient(fresh_http, answers)
        for method, path, kwargs in [
                ("GET", f"/v1/credentials/{fourth['credential_id']}", {"params": {"purpose": "test"},
                                                                       "headers": school}),
                ("POST", "/v1/claims/redeem", {"json": {"code": fourth["claim_code"], "holder_jwk": jwk}}),
                ("GET", f"/v1/credentials/{fourth['credential_id']}/offer", {"headers": school}),
                ("GET", f"/v1/credentials/{fourth['credential_id']}/offer.png", {"headers": school}),
                ("POST", "/v1/presentation-requests", {"json": {"credential_type": "transcript"},
                                                        "headers": school}),
                ("GET", "/v1/presentation-requests/x", {"headers": school}),
                ("GET", "/v1/presentation-requests/x/qr.png", {"headers": school}),
                ("GET", f"/s/{share['share_id']}/qr.png", {}), ("GET", f"/s/{share['share_id']}/qr.svg", {}),
                ("GET", f"/s/{share['share_id']}/presentation.json", {}),
                ("DELETE", f"/v1/shares/{share['share_id']}", {"headers": {"X-Withdraw-Token": "x"}}),
                ("GET", card_path, {"params": {"purpose": "test"}, "headers": school}),
                ("GET", card_path + "/photo", {"params": {"purpose": "test"}, "headers": school}),
                ("POST", card_path + "/claim-code", {"headers": school}),
                ("POST", "/v1/identity/challenges", {"json": {"audience": EXAM}, "headers": partner}),
                ("GET", challenge, {}),
                ("POST", challenge + "/answer", {"json": {"presentation": "x" * 20}}),
                ("POST", SSO_CLIENTS, {"json": {"name": "x", "redirect_uris": [PLATFORM]},
                                       "headers": partner}),
                ("GET", SSO_CLIENTS, {"headers": partner}),
                ("DELETE", f"{SSO_CLIENTS}/{platform['client_id']}", {"headers": partner}),
                ("GET", sign_in, {}),
                ("POST", card_path + "/documents",
                 {"content": b"%PDF", "headers": {**school, "Content-Type": "application/pdf"}}),
                ("GET", card_path + "/documents", {"headers": {"Authorization": "HolderProof x"}}),
                ("GET", card_path + "/documents/" + "A" * 22,
                 {"headers": {"Authorization": "HolderProof x"}}),
                ("GET", exam_path, {"headers": partner}),
                ("POST", exam_path + "/proctor-links", {"headers": partner}),
                ("GET", exam_path + "/proctor", {"headers": desk}),
                ("POST", exam_path + "/check-ins", {"headers": desk})]:
            fresh.request(method, path, expect=503, **kwargs)
        fresh.get(f"/v1/batches/{batch['batch_id']}", headers=school)  # the store alone
    return answers
