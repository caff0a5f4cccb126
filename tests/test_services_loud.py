"""A test that needs PostgreSQL or anvil never passes by skipping unseen (issue 18, item 13):
with the service missing it fails, unless EDULEDGER_SKIP_SERVICES=1 on a developer's machine;
in CI (CI=true) that setting is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ONE_POSTGRES_TEST = "tests/test_store.py::test_migrate_from_empty[postgres]"


def _pytest(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("EDULEDGER_TEST_POSTGRES_URL", "EDULEDGER_SKIP_SERVICES", "CI")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-rs",
                           ONE_POSTGRES_TEST], cwd=REPO, env={**clean, **env}, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("env", "passes", "says"), [
    ({}, False, "PostgreSQL not available"),
    ({"EDULEDGER_SKIP_SERVICES": "1"}, True, "EDULEDGER_SKIP_SERVICES=1"),
    ({"EDULEDGER_SKIP_SERVICES": "1", "CI": "true"}, False, "not honoured in CI"),
])
def test_a_missing_database_fails_unless_skipping_is_asked_for_outside_ci(
        env: dict[str, str], passes: bool, says: str) -> None:
    done = _pytest(**env)
    assert (done.returncode == 0) is passes, done.stdout + done.stderr
    assert says in done.stdout + done.stderr
