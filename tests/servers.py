"""Run an ASGI app on a real socket in a background thread, for tests over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(app: Any, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_process(data_dir: Path, port: int, *, log: Path | None = None,
                  **env: str) -> subprocess.Popen[bytes]:
    """`eduledger serve` in a process of its own (one serving process, signing in it); its
    output goes to `log` (or stderr is kept, for a test to read)."""
    full = {**os.environ, "PYTHONPATH": str(REPO), "EDULEDGER_SIGNING_WORKERS": "0", **env}
    argv = [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--workers", "0"]
    if log is None:
        return subprocess.Popen(argv, env=full, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=full, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Until GET /health answers 200; the process's output if it dies first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text(errors="replace")[-3000:] if log is not None else (
                proc.stderr.read().decode(errors="replace") if proc.stderr else "")
            raise AssertionError(f"serve exited with {proc.returncode}: {said}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not come up")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
