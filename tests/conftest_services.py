"""Fixtures for the real external services the tests use: PostgreSQL and anvil.

Load with ``pytest_plugins = ["tests.conftest_services"]`` in tests/conftest.py.

``./scripts/test`` starts a throwaway PostgreSQL cluster (exporting
EDULEDGER_TEST_POSTGRES_URL) and installs anvil (exporting EDULEDGER_ANVIL_BIN). When a
service is missing the fixtures fail, loudly; only EDULEDGER_SKIP_SERVICES=1 turns that
into a skip, for quick local runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL_CHAIN_ID = 31337
ANVIL_START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def services_skipped() -> bool:
    """EDULEDGER_SKIP_SERVICES=1, for quick local runs; never honoured in CI (CI=true), where
    a missing service must fail the run rather than skip its tests."""
    if os.environ.get("EDULEDGER_SKIP_SERVICES") != "1":
        return False
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("EDULEDGER_SKIP_SERVICES=1 is not honoured in CI (CI=true): every test runs there",
                    pytrace=False)
    return True


def _missing(what: str, how: str) -> None:
    """Skip when EDULEDGER_SKIP_SERVICES=1, fail otherwise."""
    if services_skipped():
        pytest.skip(f"{what} not available and EDULEDGER_SKIP_SERVICES=1")
    pytest.fail(
        f"{what} not available: {how}. Run the tests with ./scripts/test, which sets it "
        "up, or set EDULEDGER_SKIP_SERVICES=1 to skip tests that need it.",
        pytrace=False,
    )


# --------------------------------------------------------------------------- PostgreSQL


def _libpq_url(sqlalchemy_url: str) -> str:
    scheme, sep, rest = sqlalchemy_url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of a real, empty-at-start PostgreSQL database (postgresql+psycopg)."""
    url = os.environ.get("EDULEDGER_TEST_POSTGRES_URL", "")
    if not url:
        _missing("PostgreSQL", "EDULEDGER_TEST_POSTGRES_URL is not set")
    import psycopg

    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _missing("PostgreSQL", f"cannot connect to EDULEDGER_TEST_POSTGRES_URL ({exc})")
    return url


# --------------------------------------------------------------------------- anvil


def anvil_binary() -> str | None:
    """$EDULEDGER_ANVIL_BIN, else `anvil` on PATH, else the one scripts/test installs."""
    configured = os.environ.get("EDULEDGER_ANVIL_BIN")
    if configured:
        return configured
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    local = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    return None


def _rpc(url: str, method: str, params: list[object] | None = None) -> object:
    response = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
        timeout=2.0,
    )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def start_anvil(binary: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil on a free port and wait until it answers eth_chainId."""
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    "--host", "127.0.0.1",
                    "--port", str(port),
                    "--chain-id", str(ANVIL_CHAIN_ID),
                    "--silent",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ANVIL_START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"anvil exited with code {proc.returncode}: {_tail(log_path)}"
                break
            try:
                if int(str(_rpc(url, "eth_chainId")), 16) == ANVIL_CHAIN_ID:
                    return proc, url
            except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                last_error = f"no answer on {url}: {exc}"
            time.sleep(0.1)
        else:
            last_error = f"anvil did not answer eth_chainId on {url} in {ANVIL_START_TIMEOUT}s"
        _stop(proc)
    raise RuntimeError(last_error)


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """URL of a fresh anvil node (chain id 31337) for the whole test session."""
    binary = anvil_binary()
    if binary is None:
        _missing("anvil", "EDULEDGER_ANVIL_BIN is not set and no anvil binary was found")
        return
    with tempfile.TemporaryDirectory(prefix="eduledger-anvil-") as tmp:
        try:
            proc, url = start_anvil(binary, Path(tmp) / "anvil.log")
        except (OSError, RuntimeError) as exc:
            _missing("anvil", f"{binary} did not start: {exc}")
            return
        try:
            yield url
        finally:
            _stop(proc)
