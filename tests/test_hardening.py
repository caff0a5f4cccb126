"""What an outside test of the running service found (issue 18), each through HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.credential_fixtures import served_network


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDULEDGER_KEYSTORE_PASSPHRASE", "hardening passphrase")
    monkeypatch.setenv("EDULEDGER_KEYSTORE_SCRYPT_N", str(2**10))
    from ledger.keys import clear_keystore_cache

    clear_keystore_cache()
    return tmp_path


def graduation_row(n: int, **extra: Any) -> dict[str, Any]:
    return {"holder_name": f"毕业生{n:03d}", "student_id": f"G2026{n:05d}",
            "program": "计算机科学与技术", "education_level": "本科", "start_date": "2022-09-01",
            "graduation_date": "2026-06-30", "certificate_number": f"10001-2026-{n:06d}", **extra}


def credential_count(served: Any) -> int:
    from sqlalchemy import func, select

    from ledger.credentials.models import CredentialRecord

    with served.node.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(CredentialRecord)).scalar_one())


# -- 4: an Idempotency-Key reused for another roster -----------------------------------------


def test_an_idempotency_key_reused_with_another_roster_is_refused(env: Path) -> None:
    with served_network(env / "data") as served:
        key = {"Idempotency-Key": "roster-2026-07"}
        first = served.issue("school-a", "graduation", [graduation_row(n) for n in range(2)], **key)
        assert first.status_code == 201, first.text
        again = served.issue("school-a", "graduation", [graduation_row(n) for n in range(2)], **key)
        assert again.status_code == 201 and again.json()["batch_id"] == first.json()["batch_id"]
        before = credential_count(served)
        other = served.issue("school-a", "graduation", [graduation_row(n) for n in range(3)], **key)
        assert other.status_code == 422, other.text
        assert other.json()["code"] == "idempotency_key_reused"
        assert credential_count(served) == before  # nothing issued, nothing changed
        # One changed field is another request too.
        changed = served.issue("school-a", "graduation",
                               [graduation_row(0), graduation_row(1, program="软件工程")], **key)
        assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
        # Another school's same key is its own key.
        theirs = served.issue("school-b", "graduation", [graduation_row(n) for n in range(3)], **key)
        assert theirs.status_code == 201, theirs.text


# -- 5: the same certificate number twice ------------------------------------------------------


def test_a_certificate_number_is_issued_once_per_issuer(env: Path) -> None:
    with served_network(env / "data") as served:
        first = served.issue("school-a", "graduation", [graduation_row(1)])
        assert first.status_code == 201, first.text
        before = credential_count(served)
        twice = served.issue("school-a", "graduation", [graduation_row(1)])
        assert twice.status_code == 409, twice.text
        body = twice.json()
        assert body["code"] == "certificate_number_taken"
        first_id = first.json()["credentials"][0]["credential_id"]
        assert body["details"]["numbers"] == [{"number": "10001-2026-000001", "credential_id": first_id}]
        # Among other new rows, one taken number refuses the whole roster.
        mixed = served.issue("school-a", "graduation", [graduation_row(2), graduation_row(1)])
        assert mixed.status_code == 409 and credential_count(served) == before
        # Another issuer, or another kind of certificate, has numbers of its own.
        assert served.issue("school-b", "graduation", [graduation_row(1)]).status_code == 201
        degree = {"holder_name": "毕业生001", "student_id": "G202600001", "degree_name": "工学学士",
                  "field": "工学", "conferral_date": "2026-06-30", "certificate_number": "10001-2026-000001"}
        assert served.issue("school-a", "degree", [degree]).status_code == 201

        # A correction keeps the number: it is the same certificate, corrected.
        cid = first.json()["credentials"][0]["credential_id"]
        fixed = served.http.post(f"/v1/credentials/{cid}/correct", headers=served.as_org("school-a"),
                                 json={"credential": graduation_row(1, holder_name="毕业生壹"), "reason": 1})
        assert fixed.status_code == 201, fixed.text
        new_id = fixed.json()["credentials"][0]["credential_id"]
        again = served.issue("school-a", "graduation", [graduation_row(1)])
        assert again.status_code == 409
        assert again.json()["details"]["numbers"][0]["credential_id"] == new_id
