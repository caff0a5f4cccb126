"""The learning record store through HTTP, driven by an independent xAPI 2.0 client.

The client is the npm package @xapi/xapi (xapijs, set to version 2.0.0), run by node from
tests/xapi_client.cjs; it builds the requests (Basic credentials, version header, query
strings, `more` links, voiding statements) and reads the answers itself. What it cannot
send (a wrong version header, a batch over the limit, malformed JSON) is sent with httpx.
The anchoring part checks every proof against the chain's registry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, text
from sqlmodel import select

from ledger.anchoring.models import AnchorBatch
from ledger.keys import clear_keystore_cache
from ledger.merkle import verify_proof
from ledger.node import Node, NodeDuties, NodeServices
from ledger.records import LrsCaller
from ledger.records.models import LearningRecord
from ledger.settings import Settings
from ledger.store import session_scope
from tests.credential_fixtures import Served, served_network

ROOT = Path(__file__).resolve().parent.parent
CLIENT_SCRIPT = Path(__file__).with_name("xapi_client.cjs")
CARDS = "https://school-a.example.edu.cn/v1/identity/cards"
OPAQUE = "https://school-a.example.edu.cn/learners"
VERB = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
COURSE = "https://school-a.example.edu.cn/courses/math-7"
REG = "ec531277-b57b-4c15-8d91-d292c5b2b8f7"
V2 = {"X-Experience-API-Version": "2.0.0"}
PURPOSE = {"purpose": "records test"}


def _client_module() -> str:
    module = ROOT / ".tools" / "node_modules" / "@xapi" / "xapi"
    if module.exists():
        return str(module)
    pytest.fail("the xAPI client is not installed: source scripts/_bootstrap.sh && eduledger_xapi_client")


def xapi(
    served: Served,
    calls: list[dict[str, Any]],
    *,
    org: str | None = "school-a",
    password: str | None = None,
    version: str = "2.0.0",
) -> list[dict[str, Any]]:
    """Run `calls` through @xapi/xapi against the served LRS, as `org`."""
    if shutil.which("node") is None:
        pytest.fail("node is needed to run the independent xAPI client")
    request = {
        "module": _client_module(),
        "endpoint": served.base + "/xapi/",
        "user": org,
        "password": password if password is not None else served.api_keys.get(org or "", ""),
        "version": version,
        "calls": calls,
    }
    done = subprocess.run(
        ["node", str(CLIENT_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def learner(n: int, *, card: bool = False) -> dict[str, Any]:
    if card:
        return {"objectType": "Agent", "account": {"homePage": CARDS, "name": "0x" + f"{n:064x}"}}
    return {"objectType": "Agent", "name": f"学生{n}", "account": {"homePage": OPAQUE, "name": f"L{n:06d}"}}


def statement(n: int, *, verb: str = VERB, activity: str = COURSE, **extra: Any) -> dict[str, Any]:
    return {
        "actor": learner(n),
        "verb": {"id": verb, "display": {"en-US": "completed", "zh-CN": "完成"}},
        "object": {
            "objectType": "Activity",
            "id": activity,
            "definition": {"name": {"en-US": "Maths 7", "zh-CN": "七年级数学"}},
        },
        **extra,
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "records passphrase")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    clear_keystore_cache()
    try:
        with served_network(tmp_path_factory.mktemp("records")) as node:
            yield node
    finally:
        mp.undo()
        clear_keystore_cache()


def test_about_and_headers(served: Served) -> None:
    [about] = xapi(served, [{"fn": "getAbout"}])
    assert about["status"] == 200 and about["data"]["version"] == ["2.0.0"]
    assert about["headers"]["x-experience-api-version"] == "2.0.0"
    # CORS: a preflight is answered, and every answer says who may read it
    r = served.http.options(
        "/xapi/statements",
        headers={"Origin": "https://lms.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
    assert "X-Experience-API-Version" in r.headers["access-control-allow-headers"]


def test_store_get_and_every_filter(served: Served) -> None:
    sid = str(uuid.uuid4())
    first = statement(
        1,
        id=sid,
        context={
            "registration": REG,
            "platform": "LMS",
            "instructor": learner(90),
            "contextActivities": {"parent": [{"id": "https://school-a.example.edu.cn/term/1"}]},
        },
        result={
            "score": {"scaled": 0.9, "raw": 90, "min": 0, "max": 100},
            "success": True,
            "completion": True,
            "duration": "PT45M",
        },
    )
    batch = [statement(2, verb=PASSED), statement(3, activity=COURSE + "/unit-1"), statement(1, verb=PASSED)]
    put, post, again = xapi(
        served,
        [
            {"fn": "sendStatement", "params": {"statement": first}},
            {"fn": "sendStatements", "params": {"statements": batch}},
            {"fn": "sendStatement", "params": {"statement": first}},  # the same content again: no-op
        ],
    )
    assert put["status"] == 200 and put["data"] == [sid]
    assert post["status"] == 200 and len(post["data"]) == 3
    assert again["status"] == 200 and again["data"] == [sid]
    assert "x-experience-api-consistent-through" in post["headers"]
    ids = post["data"]

    got, exact_ids, canonical = xapi(
        served,
        [
            {"fn": "getStatement", "params": {"statementId": sid}},
            {"fn": "getStatement", "params": {"statementId": sid, "format": "ids"}},
            {"fn": "getStatement", "params": {"statementId": sid, "format": "canonical"}},
        ],
    )
    stored = got["data"]
    assert stored["id"] == sid and stored["version"] == "2.0.0" and stored["stored"].endswith("Z")
    assert stored["authority"]["account"]["name"] == "school-a"  # set by the LRS from the credentials
    assert "last-modified" in got["headers"]
    assert "name" not in exact_ids["data"]["actor"] and exact_ids["data"]["verb"] == {"id": VERB}
    assert exact_ids["data"]["object"] == {"objectType": "Activity", "id": COURSE}
    assert len(canonical["data"]["verb"]["display"]) == 1

    def found(params: dict[str, Any]) -> list[str]:
        [answer] = xapi(served, [{"fn": "getStatements", "params": params}])
        assert answer["status"] == 200, answer
        return [s["id"] for s in answer["data"]["statements"]]

    assert set(found({"agent": learner(1)})) == {sid, ids[2]}
    assert found({"agent": learner(90)}) == []  # the instructor: only with related_agents
    assert found({"agent": learner(90), "related_agents": True}) == [sid]
    assert set(found({"verb": PASSED})) == {ids[0], ids[2]}
    assert found({"activity": COURSE + "/unit-1"}) == [ids[1]]
    assert found({"activity": "https://school-a.example.edu.cn/term/1"}) == []
    assert found({"activity": "https://school-a.example.edu.cn/term/1", "related_activities": True}) == [sid]
    assert found({"registration": REG}) == [sid]
    assert set(found({"agent": learner(1), "verb": PASSED})) == {ids[2]}
    everything = found({"agent": learner(1), "ascending": True})
    assert everything == [sid, ids[2]]
    assert found({"agent": learner(1)}) == [ids[2], sid]  # newest first by default
    since = stored["stored"]
    assert sid not in found({"since": since}) and sid in found({"until": since})
    # the other school sees none of them; the bureau sees them all
    [other] = xapi(served, [{"fn": "getStatements", "params": {"agent": learner(1)}}], org="school-b")
    assert other["data"]["statements"] == []
    [bureau] = xapi(served, [{"fn": "getStatements", "params": {"agent": learner(1)}}], org="bureau")
    assert {s["id"] for s in bureau["data"]["statements"]} == {sid, ids[2]}
    # attachments=true answers multipart/mixed, the client reads the statement out of it
    [multipart] = xapi(served, [{"fn": "getStatement", "params": {"statementId": sid, "attachments": True}}])
    assert multipart["headers"]["content-type"].startswith("multipart/mixed")
    assert multipart["data"][0]["id"] == sid


def test_more_paging_is_stable(served: Served) -> None:
    activity = "https://school-a.example.edu.cn/courses/paging"
    posted = xapi(
        served,
        [
            {
                "fn": "sendStatements",
                "params": {"statements": [statement(100 + n, activity=activity) for n in range(7)]},
            }
        ],
    )[0]["data"]
    pages = xapi(
        served,
        [
            {"fn": "getStatements", "params": {"activity": activity, "limit": 3, "ascending": True}},
            {
                "fn": "sendStatement",
                "params": {"statement": statement(200, activity=activity)},
            },  # arrives mid-way
            {"fn": "getMoreStatements", "moreOf": 0},
            {"fn": "getMoreStatements", "moreOf": 2},
        ],
    )
    first, _, second, third = pages
    assert first["data"]["more"].startswith("/xapi/statements?")
    seen = [s["id"] for p in (first, second, third) for s in p["data"]["statements"]]
    assert seen == posted  # in order, none twice, and the statement stored after the first page not in it
    assert "more" not in third["data"] or third["data"]["more"] in ("", None)


def test_voiding_rules(served: Served) -> None:
    target = str(uuid.uuid4())
    xapi(served, [{"fn": "sendStatement", "params": {"statement": statement(300, id=target)}}])
    voided, by_id, by_voided_id, in_query, void_void = xapi(
        served,
        [
            {"fn": "voidStatement", "params": {"actor": learner(999), "statementId": target}},
            {"fn": "getStatement", "params": {"statementId": target}},
            {"fn": "getVoidedStatement", "params": {"voidedStatementId": target}},
            {"fn": "getStatements", "params": {"agent": learner(300)}},
            {"fn": "voidStatement", "params": {"actor": learner(999), "statementId": "PLACEHOLDER"}},
        ],
    )
    assert voided["status"] == 200
    voiding_id = voided["data"][0]
    assert by_id["error"]["status"] == 404
    assert by_voided_id["status"] == 200 and by_voided_id["data"]["id"] == target
    assert [s["id"] for s in in_query["data"]["statements"]] == [
        voiding_id
    ]  # the voiding one, via its target
    assert void_void["error"]["status"] == 400  # PLACEHOLDER is no UUID
    [refused] = xapi(
        served, [{"fn": "voidStatement", "params": {"actor": learner(999), "statementId": voiding_id}}]
    )
    assert refused["error"]["status"] == 400 and refused["error"]["data"]["code"] == "voiding_refused"
    # another school may not void school-a's statement
    [foreign] = xapi(
        served,
        [{"fn": "voidStatement", "params": {"actor": learner(998), "statementId": target}}],
        org="school-b",
    )
    assert foreign["error"]["status"] == 403


def test_bad_input_is_refused_and_changes_nothing(served: Served) -> None:
    def count() -> int:
        with session_scope(served.node.engine) as session:
            return int(session.exec(select(func.count()).select_from(LearningRecord)).one())

    before = count()
    sid = str(uuid.uuid4())
    xapi(served, [{"fn": "sendStatement", "params": {"statement": statement(400, id=sid)}}])
    before += 1
    cases = {
        "missing actor": ({k: v for k, v in statement(401).items() if k != "actor"}, 400, "bad_statement"),
        "bad IRI": (statement(402, verb="not an iri"), 400, "bad_statement"),
        "duplicate id, other content": (statement(403, id=sid), 409, "statement_conflict"),
        "national id": (
            {**statement(404), "actor": {"account": {"homePage": OPAQUE, "name": "11010519491231002X"}}},
            400,
            "national_id_learner",
        ),
        "national id in mbox": (
            {**statement(405), "actor": {"mbox": "mailto:11010519491231002X@school.cn"}},
            400,
            "national_id_learner",
        ),
        "mbox learner": (
            {**statement(406), "actor": {"mbox": "mailto:pupil@school.cn"}},
            400,
            "learner_not_opaque",
        ),
        "extra property": ({**statement(407), "colour": "red"}, 400, "bad_statement"),
        "revision without activity": (
            {**statement(408), "object": learner(5), "context": {"revision": "2"}},
            400,
            "bad_statement",
        ),
        "score out of range": (
            {**statement(409), "result": {"score": {"scaled": 1.5}}},
            400,
            "bad_statement",
        ),
        "bad timestamp": ({**statement(410), "timestamp": "2026-01-01T10:00:00"}, 400, "bad_statement"),
        "bad language map": (
            {**statement(411), "verb": {"id": VERB, "display": {"not a tag!": "x"}}},
            400,
            "bad_statement",
        ),
    }
    answers = xapi(
        served, [{"fn": "sendStatement", "params": {"statement": body}} for body, _, _ in cases.values()]
    )
    for (name, (_, status, code)), answer in zip(cases.items(), answers, strict=True):
        assert answer.get("error", {}).get("status") == status, (name, answer)
        assert answer["error"]["data"]["code"] == code, (name, answer)
    # a batch with one bad statement stores none of it
    [mixed] = xapi(
        served,
        [{"fn": "sendStatements", "params": {"statements": [statement(420), statement(421, verb="x")]}}],
    )
    assert mixed["error"]["status"] == 400
    # wrong credentials, wrong version
    [wrong] = xapi(served, [{"fn": "getStatements"}], password="edk_school-a_wrong")
    assert wrong["error"]["status"] == 401
    [anonymous] = xapi(served, [{"fn": "getStatements"}], org=None)
    assert anonymous["error"]["status"] == 401
    [old] = xapi(served, [{"fn": "getStatements"}], version="1.0.3")
    assert old["error"]["status"] == 400 and old["error"]["data"]["code"] == "xapi_version"
    basic = httpx.BasicAuth("school-a", served.api_keys["school-a"])
    r = served.http.get("/xapi/statements", auth=basic)
    assert r.status_code == 400 and r.headers["x-experience-api-version"] == "2.0.0"
    r = served.http.get("/xapi/statements", headers=V2)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    # a partner may read but not record; an oversized batch is 413
    [partner] = xapi(
        served, [{"fn": "sendStatement", "params": {"statement": statement(430)}}], org="partner"
    )
    assert partner["error"]["status"] == 403
    r = served.http.post("/xapi/statements", auth=basic, headers=V2, json=[statement(n) for n in range(1001)])
    assert r.status_code == 413 and r.json()["code"] == "too_many_statements"
    r = served.http.post(
        "/xapi/statements",
        auth=basic,
        headers={**V2, "Content-Type": "application/json"},
        content=b"x" * (17 * 2**20),
    )
    assert r.status_code == 413 and r.headers["x-experience-api-version"] == "2.0.0"
    # PUT with If-None-Match: * on a stored statement: 412
    r = served.http.put(
        "/xapi/statements",
        params={"statementId": sid},
        auth=basic,
        headers={**V2, "If-None-Match": "*"},
        json=statement(400),
    )
    assert r.status_code == 412
    r = served.http.get("/xapi/statements", params={"colour": "red"}, auth=basic, headers=V2)
    assert r.status_code == 400
    assert count() == before


def _anchored(served: Served, ids: list[str]) -> None:
    services: NodeServices = served.app.state.services
    services.records.anchor_due(force=True)
    for sid in ids:
        record = served.http.get(
            f"/v1/records/{sid}/proof",
            params=PURPOSE,
            headers={"Authorization": f"Bearer {served.api_keys['school-a']}"},
        )
        assert record.status_code == 200, record.text


def test_anchored_proof_verifies_against_the_chain(served: Served) -> None:
    ids = xapi(
        served,
        [
            {
                "fn": "sendStatements",
                "params": {"statements": [statement(500 + n, verb=PASSED) for n in range(5)]},
            }
        ],
    )[0]["data"]
    bearer = {"Authorization": f"Bearer {served.api_keys['school-a']}"}
    pending = served.http.get(f"/v1/records/{ids[0]}/proof", headers=bearer, params=PURPOSE)
    assert pending.status_code == 404 and pending.json()["code"] == "record_not_anchored"
    _anchored(served, ids)
    record = served.http.get(f"/v1/records/{ids[0]}/proof", headers=bearer, params=PURPOSE).json()
    anchor = record["anchor"]
    # the proof, checked here against the registry itself (not the node's answer)
    _, registry = served.node.contracts()
    info = registry.root_info(anchor["root"])
    assert info.anchored and info.kind is not None and info.kind.name == "LEARNING_RECORD"
    assert verify_proof(
        bytes.fromhex(anchor["leaf"][2:]),
        [bytes.fromhex(p[2:]) for p in anchor["proof"]],
        bytes.fromhex(anchor["root"][2:]),
    )
    verdict = served.http.post("/v1/records/verify", json=record).json()
    assert verdict["valid"] and verdict["recorded_by"] == "school-a" and not verdict["voided"]
    assert verdict["anchored_at"] and verdict["block_number"] == info.block_number
    # a statement edited after it was anchored no longer matches
    edited = {**record, "statement": {**record["statement"], "result": {"success": True}}}
    assert not served.http.post("/v1/records/verify", json=edited).json()["valid"]
    # voided later: the verification says so
    xapi(served, [{"fn": "voidStatement", "params": {"actor": learner(999), "statementId": ids[0]}}])
    assert served.http.post("/v1/records/verify", json=record).json()["voided"] is True
    # the record edited in the database is found by the audit
    with session_scope(served.node.engine) as session:
        session.execute(
            text(
                "UPDATE learning_record SET statement_json = replace(statement_json, 'passed', "
                "'failed') WHERE statement_id = :sid"
            ),
            {"sid": ids[1]},
        )
    assert served.app.state.services.records.audit() == [ids[1]]


def test_exactly_once_after_a_crash_between_accept_and_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "records passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    clear_keystore_cache()
    data = tmp_path / "crash"
    with served_network(data) as served:
        ids = xapi(
            served,
            [{"fn": "sendStatements", "params": {"statements": [statement(600 + n) for n in range(20)]}}],
        )[0]["data"]
        services: NodeServices = served.app.state.services

        class Crash(BaseException):
            pass

        def crash(batch_id: str) -> None:
            raise Crash  # the process dies after the batch is accepted, before it is sent

        monkeypatch.setattr(services.anchoring, "process", crash)
        with pytest.raises(Crash):
            services.records.anchor_due(force=True)
        monkeypatch.undo()
        monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "records passphrase")
        monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
        later = xapi(
            served,
            [{"fn": "sendStatements", "params": {"statements": [statement(700 + n) for n in range(3)]}}],
        )[0]["data"]
        with session_scope(served.node.engine) as session:
            assert session.exec(select(AnchorBatch.status)).all() == ["pending"]
    # restart: the node's duties anchor the pending batch and then the statements still waiting
    node = Node(Settings(data_dir=data))
    try:
        services = NodeServices(node)
        duties = NodeDuties(services)
        duties.recover()
        deadline = time.monotonic() + 30
        while services.records.waiting() and time.monotonic() < deadline:
            services.records.batch_seconds = 0
            duties.run_pass()
        with session_scope(node.engine) as session:
            batches = session.exec(select(AnchorBatch)).all()
            rows = session.exec(select(LearningRecord)).all()
        assert [b.status for b in batches] == ["anchored", "anchored"]
        assert sorted(b.leaf_count for b in batches) == [3, 20]
        assert {r.statement_id for r in rows} == set(ids) | set(later)
        assert all(r.batch_id is not None for r in rows)
        # each root is on chain once, and holds the leaves it says
        _, registry = node.contracts()
        for batch in batches:
            logs = node.client.get_logs(
                registry.address, 0, topics=[services.anchoring._anchored_topic, batch.root]
            )
            assert len(logs) == 1
        for sid in ids[:3] + later[:1]:
            record = services.records.record_file(LrsCaller(org="bureau", role="bureau"), sid)
            assert services.records.verify(record)["valid"]
    finally:
        node.close()
