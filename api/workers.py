"""`eduledger serve --workers N`: more serving processes on the same port, for verification.

Verification is the public endpoint with by far the most traffic, and it is CPU work in
Python (the signature, the digest of every disclosure, the Merkle proof): one process
verifies on one core. So the node can run N worker processes next to itself. All of them
accept connections on the public port (SO_REUSEPORT: the kernel spreads connections), a
worker answers POST /v1/verify itself and passes every other request to the node over a
Unix socket in the data directory, which only the node's user can open. The node alone
owns the embedded chain, the indexer, anchoring and every write.

A worker's view of the node is read-only: the same SQL database, the chain through the
node's JSON-RPC (embedded: the node's /rpc; otherwise the node's RPC URL), leaf status from
the indexer's projection. Two things are shared in memory with the node: the status
generation (a revocation through the node reaches every worker's next verification, see
IndexedLeafStatus) and the public rate limit's counters (one limit per client, however
its connections are spread). Workers are spawned, not forked (the node has threads and
open databases); one that dies is replaced, and they stop when the node stops or dies.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from api import auth
from api.app import server_options
from api.fastpath import CLIENT_HEADER, json_bytes, send_json, serve_verify
from api.limits import body_limit, read_limited
from ledger.errors import LedgerError
from ledger.node import Node, NodeServices
from ledger.settings import Settings

log = logging.getLogger("eduledger.api")

_HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
                         b"te", b"trailer", b"transfer-encoding", b"upgrade", b"content-length",
                         CLIENT_HEADER))


class SharedState:
    """What the node and its workers share: the status generation and the rate counters."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        # Lock-free: only the node writes it, under its projection's lock.
        self.generation = context.RawValue("q", 0)
        self.rate_counts = context.RawArray("q", 2 * auth.SHARED_SLOTS)
        self.rate_lock = context.Lock()

    def install_rate_limit(self) -> None:
        auth.public_limit().share(self.rate_counts, self.rate_lock)


# -- the node's side ------------------------------------------------------------------


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def node_socket_path(data_dir: Path) -> Path:
    path = data_dir.resolve() / "node.sock"
    if len(os.fsencode(path)) < 100:  # sun_path holds 108 bytes
        return path
    return Path(tempfile.mkdtemp(prefix="eduledger-")) / "node.sock"


def unix_socket(path: Path) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # 0600 from the start: only the node's user may connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    return sock


class WorkerProcesses:
    """Starts the workers, replaces one that dies, stops them with the node."""

    def __init__(self, settings: Settings, count: int, node_socket: Path, chain_url: str,
                 shared: SharedState) -> None:
        self.settings = settings
        self.count = count
        self.node_socket = node_socket
        self.chain_url = chain_url
        self.shared = shared
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[Any] = []
        self._lifelines: list[Connection] = []
        self._ready: set[int | None] = set()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="eduledger-workers", daemon=True)

    def start(self) -> None:
        for _ in range(self.count):
            self._spawn()
        self._watcher.start()

    def ready(self) -> int:
        """How many workers are accepting connections."""
        for process, lifeline in list(zip(self._processes, self._lifelines)):  # noqa: B905 - may change
            with contextlib.suppress(EOFError, OSError):
                while lifeline.poll():
                    if lifeline.recv_bytes() == b"ready":
                        self._ready.add(process.pid)
        return sum(1 for p in self._processes if p.pid in self._ready and p.is_alive())

    def _spawn(self) -> None:
        # The worker says "ready" on a pipe whose other end only this process has; when the
        # node goes, even by kill -9, the worker sees the end of the pipe and stops too.
        theirs, ours = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main, name="eduledger-worker", daemon=True,
            args=(theirs, self.settings, self.chain_url, str(self.node_socket), self.shared))
        process.start()
        theirs.close()
        self._processes.append(process)
        self._lifelines.append(ours)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for i, process in enumerate(list(self._processes)):
                if process.is_alive() or self._stop.is_set():
                    continue
                log.warning("worker %s stopped (exit code %s); starting another",
                            process.pid, process.exitcode)
                self._processes.remove(process)
                self._lifelines.pop(i).close()
                self._spawn()
                break

    def stop(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(5)  # so that it starts no new worker behind our back
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)  # uvicorn in the worker finishes its requests
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        for lifeline in self._lifelines:
            lifeline.close()


# -- the worker's side ----------------------------------------------------------------


def _worker_main(lifeline: Connection, settings: Settings, chain_url: str, node_socket: str,
                 shared: SharedState) -> None:
    shared.install_rate_limit()
    app = WorkerApp(settings, chain_url, node_socket, shared.generation)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **server_options(settings)))

    def lifeline_watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            while not server.started:
                if lifeline.poll(0.05):  # the node is gone already
                    raise EOFError
            lifeline.send_bytes(b"ready")
            lifeline.recv_bytes()  # the node never sends: this returns when it has gone
        server.should_exit = True

    threading.Thread(target=lifeline_watch, daemon=True, name="eduledger-lifeline").start()
    server.run(sockets=[listening_socket(settings.host, settings.port)])


class WorkerApp:
    """POST /v1/verify here; everything else to the node, as it came."""

    def __init__(self, settings: Settings, chain_url: str, node_socket: str, generation: Any) -> None:
        self.settings = settings
        self.chain_url = chain_url
        self.node_socket = node_socket
        self.generation = generation
        self._services: NodeServices | None = None
        self._node: httpx.AsyncClient | None = None

    @property
    def services(self) -> NodeServices:
        # Built at the first verification: the node's endpoint may not be listening before.
        if self._services is None:
            node = Node(self.settings.with_changes(rpc_url=self.chain_url), migrate_schema=False)
            self._services = NodeServices(node, status_generation=self.generation, indexing=False)
        return self._services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            return
        elif scope["path"] == "/v1/verify" and scope["method"] == "POST":
            await serve_verify(lambda: self.services, scope, receive, send)
        else:
            await self._pass_to_node(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._node = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=self.node_socket),
                                               timeout=httpx.Timeout(600, connect=10))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._node is not None:
                    await self._node.aclose()
                if self._services is not None:
                    self._services.node.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _pass_to_node(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:  # the route's limit here already: an oversized body is never passed on
            body = await read_limited(scope, receive, body_limit(scope["method"], scope["path"]))
        except LedgerError as exc:
            if exc.code != "disconnected":  # a client gone away has nobody to answer
                await send_json(send, exc.http_status, json_bytes(exc.to_dict()))
            return
        client = scope.get("client")
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]
        headers.append((CLIENT_HEADER, (client[0] if client else "unknown").encode("latin-1")))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        assert self._node is not None
        request = self._node.build_request(scope["method"], "http://node" + target.decode("latin-1"),
                                           headers=headers, content=body)
        try:
            response = await self._node.send(request, stream=True)
        except httpx.HTTPError:
            log.warning("the node did not answer a passed request", exc_info=True)
            await send_json(send, 502, b'{"code":"node_unavailable","message":"the node is not answering; '
                                       b'try again shortly"}')
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.lower() not in _HOP_BY_HOP or k.lower() == b"content-length"]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def run_in_process(node: Node, settings: Settings, shared: SharedState, app: Any) -> None:
    """Serve `app` (the node's) on the public port and the Unix socket, with the workers."""
    public = listening_socket(settings.host, settings.port)
    path = node_socket_path(settings.data_dir)
    private = unix_socket(path)
    # The workers' way to the embedded chain's /rpc: a port of the node's own. Through the
    # shared public port a worker's chain request could reach that very worker, blocked in
    # the verification that needs the answer.
    rpc = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    rpc.bind(("127.0.0.1", 0))
    chain_url = settings.rpc_url or f"http://127.0.0.1:{rpc.getsockname()[1]}/rpc"
    workers = WorkerProcesses(settings, settings.workers, path, chain_url, shared)
    app.state.workers = workers
    workers.start()
    try:
        uvicorn.Server(uvicorn.Config(app, **server_options(settings))).run(sockets=[public, private, rpc])
    finally:
        workers.stop()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
