"""Comprehensive quality evaluation end to end, through HTTP: the bureau publishes a framework,
a school layers an indicator on it, enters a term of records and scores for a class of 30,
runs the procedure (selection, a notice of five working days, an objection resolved, lock),
seals the term; every sealed record's proof is checked against the chain with code of the
test's own (keccak from pycryptodome, RFC 8785 from the rfc8785 package, the JWS from
jwcrypto); an edit after sealing is refused; an edit in SQL is found by the integrity audit."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from Crypto.Hash import keccak
from jwcrypto import jwk, jws
from sqlalchemy import update

from ledger.contracts.bindings import AnchorKind
from ledger.evaluation.models import EvaluationScore
from ledger.keys import clear_keystore_cache
from ledger.store import session_scope
from tests.credential_fixtures import Served, served_network
from tests.evaluation_fixtures import CLASS, EVALUATION, framework, issue_class, school_layer

TERM = "2025-2026-1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "evaluation e2e")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    clear_keystore_cache()
    try:
        with served_network(Path(tmp_path_factory.mktemp("evaluation"))) as running:
            yield running
    finally:
        mp.undo()
        clear_keystore_cache()


def _keccak(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def _verify_merkle(leaf: str, proof: list[str], root: str) -> bool:
    """The tree's rules (ledger/merkle.py's docstring), written again here."""
    node = _keccak(b"\x00" + bytes.fromhex(leaf[2:]))
    for sibling in proof:
        other = bytes.fromhex(sibling[2:])
        node = _keccak(b"\x01" + min(node, other) + max(node, other))
    return "0x" + node.hex() == root


def _post(served: Served, path: str, body: Any, org: str = "school-a", status: int = 200) -> Any:
    answer = served.http.post(EVALUATION + path, json=body, headers=served.as_org(org))
    assert answer.status_code == status, answer.text
    return answer.json()


def _wait_audit(served: Served) -> dict[str, Any]:
    auditor = served.as_org("auditor")
    run = served.http.post("/v1/audit/runs", headers=auditor).json()
    deadline = time.monotonic() + 120
    while True:
        got: dict[str, Any] = served.http.get(f"/v1/audit/runs/{run['run_id']}", headers=auditor).json()
        if got["status"] in ("done", "failed") or time.monotonic() > deadline:
            assert got["status"] == "done", got
            return got
        time.sleep(0.2)


def test_a_term_from_framework_to_seal(served: Served) -> None:
    # -- the bureau publishes; a new version leaves the old one as it was -------------------
    v1 = _post(served, "/frameworks", framework(), org="bureau", status=201)
    assert (v1["kind"], v1["version"]) == ("bureau", 1)
    changed = framework(title="区综合素质评价指标体系（修订）")
    v2 = _post(served, "/frameworks", changed, org="bureau", status=201)
    assert v2["version"] == 2 and v2["framework_id"] != v1["framework_id"]
    again = served.http.get(
        f"{EVALUATION}/frameworks/{v1['framework_id']}", headers=served.as_org("school-a")
    )
    assert again.json() == v1
    assert v1["content_sha256"] == hashlib.sha256(rfc8785.dumps(v1["content"])).hexdigest()
    # -- the school adds its own indicator under 劳 -------------------------------------------
    own = _post(served, "/school-frameworks", school_layer(v1["framework_id"]), status=201)
    labour = next(d for d in own["content"]["domains"] if d["domain"] == "labour")
    assert [(i["code"], i["weight"]) for i in labour["indicators"]] == [("L1", 70), ("L2", 30)]
    assert own["base_framework_id"] == v1["framework_id"] and own["owner_org"] == "school-a"

    school = issue_class(served, 30)
    term = _post(served, "/terms", {"term": TERM, "framework_id": own["framework_id"]}, status=201)
    assert term["status"] == "open"
    _post(served, f"/terms/{TERM}/teachers", {"teacher_card": school.teacher, "classes": [CLASS]})

    # -- records (a teacher's, with evidence, and the student's own) and scores -----------------
    evidence = b"%PDF-1.4 volunteer certificate"
    records = []
    for n, card in enumerate(school.students):
        files = (
            [
                {
                    "evidence_type": "志愿服务证明",
                    "filename": "证明.pdf",
                    "media_type": "application/pdf",
                    "content_base64": base64.b64encode(evidence + bytes([n])).decode(),
                }
            ]
            if n < 5
            else []
        )
        records.append(
            _post(
                served,
                f"/terms/{TERM}/records",
                {
                    "student_card": card,
                    "indicator_code": "M1",
                    "author_role": "teacher",
                    "teacher_card": school.teacher,
                    "occurred_on": "2025-10-12",
                    "title": "社区志愿服务",
                    "text": f"参加社区志愿服务 {n + 2} 小时",
                    "evidence": files,
                },
                status=201,
            )
        )
        records.append(
            _post(
                served,
                f"/terms/{TERM}/records",
                {
                    "student_card": card,
                    "indicator_code": "L2",
                    "author_role": "student",
                    "occurred_on": "2025-10-20",
                    "title": "校园农场种植",
                    "text": "种植番茄",
                },
                status=201,
            )
        )
    assert records[0]["evidence"][0]["sha256"] == hashlib.sha256(evidence + b"\x00").hexdigest()
    assert records[0]["domain"] == "moral" and records[1]["domain"] == "labour"
    assert "text" not in records[0] or records[0]["text"] is None  # personal content is not echoed
    values = {"M1": "A", "M2": "88", "I1": "92", "P1": "75", "P2": "B", "A1": "A", "L1": "B", "L2": "A"}
    scores = [
        {
            "student_card": card,
            "indicator_code": code,
            "value": value if n else "D" if code[0] in "MPAL" and code not in ("M2", "P1") else "40",
        }
        for n, card in enumerate(school.students)
        for code, value in values.items()
    ]
    assert _post(served, f"/terms/{TERM}/scores", {"teacher_card": school.teacher, "scores": scores}) == {
        "count": 240
    }
    profile = served.http.get(
        f"{EVALUATION}/terms/{TERM}/students/{school.students[1]}/profile", headers=served.as_org("school-a")
    ).json()
    assert {d: v["level"] for d, v in profile["domains"].items()} == {
        "moral": "A",
        "intellectual": "A",
        "physical": "B",
        "aesthetic": "A",
        "labour": "B",
    }
    assert "rank" not in str(profile)

    # -- 整理遴选, 公示 for five working days, an objection, lock -----------------------------------
    chosen = [r["record_id"] for r in records[1:]]
    assert _post(
        served, f"/terms/{TERM}/selection", {"selected": chosen, "not_selected": [records[0]["record_id"]]}
    ) == {"count": 60}
    school.clock.set("2025-11-03")  # a Monday
    notice = _post(served, f"/terms/{TERM}/classes/{CLASS}/notice", {"days": 5})
    assert (notice["stage"], notice["notice_from"], notice["notice_until"]) == (
        "notice",
        "2025-11-03",
        "2025-11-10",
    )
    objection = _post(
        served,
        f"/records/{records[3]['record_id']}/objections",
        {"raised_by": "parent", "reason": "服务时长应为5小时"},
        status=201,
    )
    school.clock.set("2025-11-11")
    assert _post(served, f"/terms/{TERM}/classes/{CLASS}/lock", None, status=409)["code"] == "objection_open"
    resolved = _post(
        served,
        f"/objections/{objection['objection_id']}/resolve",
        {"outcome": "amended", "note": "核实后时长为5小时，已更正说明"},
    )
    assert resolved["outcome"] == "amended" and resolved["resolved_at"]
    school.clock.set("2025-11-10", hour=23)  # still the notice's last day, Beijing time
    assert _post(served, f"/terms/{TERM}/classes/{CLASS}/lock", None, status=409)["code"] == "notice_not_over"
    school.clock.set("2025-11-11", hour=0)
    assert _post(served, f"/terms/{TERM}/classes/{CLASS}/lock", None)["stage"] == "locked"

    # -- sealing: once ----------------------------------------------------------------------------
    sealed = _post(served, f"/terms/{TERM}/seal", None)
    assert (sealed["status"], sealed["count"]) == ("sealed", 30)
    assert _post(served, f"/terms/{TERM}/seal", None) == sealed  # asked again: the same seal
    registry = served.node.contracts()[1]
    info = registry.root_info(sealed["root"])
    assert info.anchored and info.kind is AnchorKind.EVALUATION_DATA and info.count == 30
    assert info.member_id == served.node.require_deployment().organisations["school-a"]["member_id"]

    for n, card in enumerate(school.students):
        got = served.http.get(
            f"{EVALUATION}/terms/{TERM}/students/{card}/sealed",
            params={"purpose": "e2e check"},
            headers=served.as_org("school-a"),
        ).json()
        document = got["document"]
        canonical = rfc8785.dumps(document)
        assert canonical == got["document_canonical"].encode()
        assert got["leaf"] == "0x" + _keccak(bytes.fromhex(got["salt"][2:]) + canonical).hex()
        anchor = got["anchor"]
        assert anchor["leaf"] == got["leaf"] and anchor["root"] == sealed["root"]
        assert _verify_merkle(anchor["leaf"], anchor["proof"], anchor["root"])
        head, _, signature = got["signature"].split(".")
        token = jws.JWS()
        token.deserialize(f"{head}..{signature}")
        kid = token.jose_header["kid"]
        public = jwk.JWK(
            kty="OKP",
            crv="Ed25519",
            x=base64.urlsafe_b64encode(bytes.fromhex(kid.split("#ed25519-")[1])).rstrip(b"=").decode(),
        )
        token.verify(public, alg="EdDSA", detached_payload=canonical)
        assert document["issuer"] == kid.split("#")[0] and document["student"]["cardId"] == card
        # student 0's teacher record was set aside at selection: only the locked ones are sealed
        assert sorted(r["indicator"] for r in document["records"]) == (["L2"] if n == 0 else ["L2", "M1"])
        if n == 1:
            by_indicator = {r["indicator"]: r for r in document["records"]}
            assert (
                by_indicator["M1"]["evidence"][0]["sha256"] == hashlib.sha256(evidence + b"\x01").hexdigest()
            )
            assert by_indicator["L2"]["objections"] == [{"raisedBy": "parent", "outcome": "amended"}]
            assert len(document["scores"]) == 8

    # -- after sealing: refused, and nothing written --------------------------------------------
    refused = _post(
        served, f"/terms/{TERM}/scores", {"teacher_card": school.teacher, "scores": scores[:1]}, status=409
    )
    assert refused["code"] == "term_sealed"
    assert (
        _post(
            served,
            f"/terms/{TERM}/records",
            {
                "student_card": school.students[0],
                "indicator_code": "M1",
                "author_role": "student",
                "occurred_on": "2025-12-01",
                "title": "补记",
            },
            status=409,
        )["code"]
        == "term_sealed"
    )

    # -- an edit behind the service's back is found by the audit ---------------------------------
    clean = _wait_audit(served)
    assert clean["report"]["summary"]["findings"] == 0, clean["report"]["findings"]
    with session_scope(served.node.engine, write=True) as session:
        session.execute(
            update(EvaluationScore)
            .where(
                EvaluationScore.student_card == school.students[7],  # type: ignore[arg-type]
                EvaluationScore.indicator_code == "I1",
            )
            .values(value="100")
        )  # type: ignore[arg-type]
    found = _wait_audit(served)["report"]["findings"]
    assert [(f["kind"], f["details"]["student_card"], f["details"]["reasons"]) for f in found] == [
        ("evaluation_record_changed", school.students[7], ["records_changed_after_sealing"])
    ]
