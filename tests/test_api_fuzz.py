"""No input gives a 500: random requests, and valid ones with one part broken, to every route.

Each answer must be below 500, and an error must say what went wrong: a JSON body with a
machine ``code`` and a ``message`` (or, for the share page a browser asks for, an HTML page).
And each answer must be one /openapi.json documents (tests/openapi_check.py): its status
listed for the operation, its body valid against the schema given for that status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.credentials.jose import ed25519_jwk
from ledger.credentials.sdjwt import add_key_binding, parse
from tests.conftest import fresh_postgres_database, postgres_server_url
from tests.credential_fixtures import Served, json_places, replaced_at, served_network, transcript_row
from tests.openapi_check import DocumentedAnswers

ROUTES = [
    ("POST", "/v1/credentials"), ("GET", "/v1/credentials/{id}"),
    ("POST", "/v1/credentials/{id}/status"), ("POST", "/v1/credentials/{id}/correct"),
    ("GET", "/v1/batches/{id}"), ("POST", "/v1/claims/redeem"), ("POST", "/v1/shares"),
    ("DELETE", "/v1/shares/{id}"), ("GET", "/s/{id}"), ("GET", "/s/{id}/qr.png"),
    ("GET", "/s/{id}/qr.svg"), ("POST", "/v1/verify"), ("POST", "/v1/verify/batch"),
    ("GET", "/v1/dids/{id}"), ("GET", "/v1/audit/history/{id}"), ("GET", "/v1/audit/runs/{id}"),
    ("GET", "/v1/network"), ("GET", "/health"),
    ("POST", "/v1/exams"), ("GET", "/v1/exams/{id}"), ("POST", "/v1/exams/{id}/proctor-links"),
    ("GET", "/v1/exams/{id}/proctor"), ("POST", "/v1/exams/{id}/check-ins"),
    ("GET", "/v1/exams/{exam}/check-ins/{id}"), ("GET", "/exams/{id}/proctor"),
]
CONTENT_TYPES = [None, "application/json", "text/plain", "text/csv", "application/octet-stream",
                 "multipart/form-data; boundary=x", "application/json; charset=latin-1"]
ACCEPTS = [None, "application/json", "text/html", "*/*", "image/png"]
IDEMPOTENCY_KEYS: list[str | bytes | None] = [None, "3f0c2a56-4b1e-4a8e-9d61-0c5d2f7e9a10", "k" * 200,
                                               "caf\xe9".encode("latin-1"), "a b"]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                      max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served network on SQLite, and on PostgreSQL, which refuses what SQLite lets through
    (NUL characters, strings longer than their column)."""
    if request.param == "postgres":
        database = fresh_postgres_database(postgres_server_url(request))
        try:
            yield from _world(tmp_path_factory, next(database))
        finally:
            database.close()
    else:
        yield from _world(tmp_path_factory, "")


def _world(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[dict[str, Any]]:
    import api.auth
    from ledger.keys import clear_keystore_cache

    mp = pytest.MonkeyPatch()
    mp.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "fuzz passphrase")
    mp.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    mp.setattr(api.auth.public_limit(), "amount", 10**9)  # the fuzzing is not what is limited
    clear_keystore_cache()
    try:
        with served_network(tmp_path_factory.mktemp("fuzz") / "data", database_url) as served:
            r = served.issue("school-a", "transcript", [transcript_row(n, courses=2) for n in range(3)])
            assert r.status_code == 201, r.text
            batch = r.json()
            credential = batch["credentials"][0]
            holder = Ed25519PrivateKey.generate()
            redeemed = served.http.post("/v1/claims/redeem", json={
                "code": batch["credentials"][1]["claim_code"],
                "holder_jwk": ed25519_jwk(holder.public_key())})
            assert redeemed.status_code == 200, redeemed.text
            sd_jwt = redeemed.json()["sd_jwt"]
            presentation = add_key_binding(sd_jwt, holder_key=holder, aud=served.base, nonce="fuzz")
            share = served.http.post("/v1/shares", json={"presentation": presentation, "expires_in_days": 3})
            assert share.status_code == 201, share.text
            exam = _an_exam(served)
            yield {"served": served, "batch": batch, "credential": credential, "sd_jwt": sd_jwt,
                   "answers": DocumentedAnswers(served.http.get("/openapi.json").json()),
                   "presentation": presentation, "exam": exam,
                   "ids": [credential["credential_id"], batch["batch_id"], credential["claim_code"],
                           share.json()["share_id"], parse(sd_jwt).payload["issuer"]["id"], "did:example:1",
                           exam["exam_id"], exam["check_in_id"], "x" * 300, "%00", "..", "~"]}
    finally:
        mp.undo()
        clear_keystore_cache()


def _an_exam(served: Served) -> dict[str, Any]:
    """An exam session of the partner's, for one card, with a check-in started at its desk."""
    from datetime import UTC, datetime, timedelta

    from tests.identity_fixtures import roster_zip, student

    cards = served.http.post("/v1/identity/cards", params={"kind": "student"},
                             content=roster_zip([student(1)]),
                             headers={**served.as_org("school-a"), "Content-Type": "application/zip"})
    assert cards.status_code == 201, cards.text
    start = datetime.now(UTC) + timedelta(hours=1)
    body = {"name": "考试 exam", "room": "A1", "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "candidates": [{"card_id": cards.json()["cards"][0]["card_id"], "candidate_number": "1"}]}
    made = served.http.post("/v1/exams", headers=served.as_org("partner"), json=body)
    assert made.status_code == 201, made.text
    token = made.json()["proctor_link"]["token"]
    started = served.http.post(f"/v1/exams/{made.json()['exam_id']}/check-ins",
                               headers={"X-Proctor-Token": token}).json()
    return {"exam_id": made.json()["exam_id"], "token": token, "check_in_id": started["check_in_id"],
            "body": body}


def _templates(world: dict[str, Any]) -> dict[str, Any]:
    """A valid body for each route that takes one."""
    row = transcript_row(9, courses=1)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    return {
        "/v1/credentials": {"type": "transcript", "credentials": [row]},
        "/v1/credentials/{id}/status": {"action": "suspend", "reason": 1, "note": "fuzz"},
        "/v1/credentials/{id}/correct": {"credential": row, "reason": 2},
        "/v1/claims/redeem": {"code": world["credential"]["claim_code"], "holder_jwk": jwk},
        "/v1/shares": {"presentation": world["presentation"], "expires_in_days": 30},
        "/v1/verify": {"credential": {"format": "eduledger-credential/1", "sd_jwt": world["sd_jwt"],
                                      "anchor": world["batch"]["credentials"][1]["anchor"]},
                       "require_holder_binding": False},
        "/v1/verify/batch": {"credentials": [world["sd_jwt"]]},
        "/v1/exams": world["exam"]["body"],
    }


@st.composite
def requests(draw: st.DrawFn, world: dict[str, Any]) -> tuple[str, str, dict[str, Any], bytes]:
    method, template = draw(st.sampled_from(ROUTES))
    ident = draw(st.sampled_from(world["ids"]) | st.text(max_size=40))
    exam = draw(st.sampled_from([world["exam"]["exam_id"], "nothing"]))
    path = template.replace("{id}", quote(ident, safe=":")).replace("{exam}", exam)
    served: Served = world["served"]
    headers: dict[str, Any] = {}
    proctor = draw(st.sampled_from([None, world["exam"]["token"], "ept_wrong", ""]))
    if proctor is not None:
        headers["X-Proctor-Token"] = proctor
    auth = draw(st.sampled_from([None, "school-a", "partner", "bureau", "garbage"]))
    if auth == "garbage":
        headers["Authorization"] = draw(st.sampled_from(["Bearer nope", "Basic eA==", "Bearer", "bearer  x"]))
    elif auth is not None and auth in served.api_keys:
        headers.update(served.as_org(auth))
    for name, choices in (("Content-Type", CONTENT_TYPES), ("Accept", ACCEPTS),
                          ("Idempotency-Key", IDEMPOTENCY_KEYS)):
        chosen = draw(st.sampled_from(choices))
        if chosen is not None:
            headers[name] = chosen
    valid = _templates(world).get(template)
    kind = draw(st.sampled_from(["bytes", "json", "broken"] if valid is not None else ["bytes", "json"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    else:  # the valid body with one part replaced, or one key added
        where = draw(st.sampled_from(json_places(valid)))
        body = json.dumps(replaced_at(valid, where, draw(JSON_VALUES))).encode()
    return method, path, headers, body


@given(st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
def test_no_request_gets_a_server_error(world: dict[str, Any], data: st.DataObject) -> None:
    method, path, headers, body = data.draw(requests(world))
    served: Served = world["served"]
    r = served.http.request(method, path, headers=headers, content=body if method != "GET" else None)
    assert r.status_code < 500, (method, path, headers, body, r.status_code, r.text[:500])
    if r.status_code >= 400:
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "<html" in r.text.lower()
        else:
            problem = r.json()
            assert isinstance(problem.get("code"), str) and problem["code"], (path, r.text[:300])
            assert isinstance(problem.get("message"), str) and problem["message"], (path, r.text[:300])
    world["answers"].check(r, request_valid=False)  # documented: its status and its body


def test_the_fixture_is_real(world: dict[str, Any]) -> None:
    # the ids the fuzzing starts from exist: the broken requests are near misses, not noise
    served: Served = world["served"]
    for body in ({"credential": world["sd_jwt"]}, _templates(world)["/v1/verify"]):
        r = served.http.post("/v1/verify", json=body)
        assert r.status_code == 200 and r.json()["valid"] is True, r.text
