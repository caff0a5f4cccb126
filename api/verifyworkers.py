"""POST /v1/verify on worker processes, so that verification uses every core.

Verification is CPU work in Python (the signature, the digest of every disclosure, the
Merkle proof) and one process runs Python on one core; the serving process also owns the
embedded chain and the event loop. Workers are spawned processes (not forked: the node
has threads and open databases), each with a read-only view of the node: the same SQL
database, the chain through the node's own JSON-RPC endpoint (or the node's RPC URL), and
leaf status from the indexer's projection (they never index: see IndexedLeafStatus for
how a status change through this node reaches them at once). The node hands a worker the
request body and gets back the finished response. If a worker dies, its requests are
answered by the node and a new worker is started; if a worker cannot answer (its chain
view unreachable, say) the node answers instead.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import struct
from collections import deque
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from api.fastpath import verify_answer
from api.services import Services
from ledger.settings import Settings

log = logging.getLogger("eduledger.api")

_SIZE = struct.Struct("!i")  # the framing of multiprocessing.connection (messages < 2 GiB)
_STATUS = struct.Struct("!H")
_ANSWER_IT_YOURSELF = 0
QUEUE = 2


def _serve(conn: Connection, settings: Settings, chain_url: str, generation: Any) -> None:
    """A worker's life: one request at a time, until the node closes the connection."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the node stops us
    from ledger.node import Node

    services: Services | None = None
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        content_type, _, body = message.partition(b"\n")
        try:
            if services is None:  # lazily: the node's endpoint is not listening before we are
                services = Services(Node(replace(settings, rpc_url=chain_url)),
                                    status_generation=generation, indexing=False)
            status, data = verify_answer(services, content_type.decode("latin-1"), body)
        except Exception:  # noqa: BLE001 - the node answers instead, and logs what it sees
            log.exception("verification worker could not answer")
            status, data = _ANSWER_IT_YOURSELF, b""
        try:
            conn.send_bytes(_STATUS.pack(status) + data)
        except OSError:
            return


@dataclass
class _Worker:
    process: Any
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: deque[asyncio.Future[tuple[int, bytes]]] = field(default_factory=deque)
    alive: bool = True


class VerifyWorkers:
    def __init__(self, settings: Settings, count: int, chain_url: str, generation: Any) -> None:
        self.settings = settings
        self.count = count
        self.chain_url = chain_url
        self.generation = generation
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.answered = 0  # requests the workers answered (the rest: the node itself)

    async def start(self) -> None:
        for _ in range(self.count):
            await self._spawn()

    async def _spawn(self) -> None:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_serve, name="eduledger-verify", daemon=True,
                                        args=(theirs, self.settings, self.chain_url, self.generation))
        process.start()
        theirs.close()
        sock = socket.socket(fileno=os.dup(ours.fileno()))
        ours.close()
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        worker = _Worker(process, reader, writer)
        self._workers.append(worker)
        self._background(self._read_answers(worker))

    def _background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def verify(self, content_type: str, body: bytes) -> tuple[int, bytes] | None:
        """The worker's answer, or None: answer it in this process.

        When every worker already has `QUEUE` requests waiting, this process verifies too:
        with one worker per spare core the node's own core is not left idle between the
        requests it passes on."""
        alive = [w for w in self._workers if w.alive]
        if not alive:
            return None
        worker = min(alive, key=lambda w: len(w.pending))
        if len(worker.pending) >= QUEUE:
            return None
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        worker.pending.append(future)
        head = content_type.encode("latin-1", "replace").replace(b"\n", b" ") + b"\n"
        worker.writer.writelines([_SIZE.pack(len(head) + len(body)), head, body])
        status, data = await future
        if status == _ANSWER_IT_YOURSELF:
            return None
        self.answered += 1
        return status, data

    def alive(self) -> list[int]:
        """Process ids of the workers that are running."""
        return [w.process.pid for w in self._workers if w.alive]

    async def _read_answers(self, worker: _Worker) -> None:
        try:
            while True:
                (size,) = _SIZE.unpack(await worker.reader.readexactly(_SIZE.size))
                data = await worker.reader.readexactly(size)
                future = worker.pending.popleft()
                if not future.done():  # its client may have gone away meanwhile
                    future.set_result((_STATUS.unpack_from(data)[0], data[_STATUS.size:]))
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        worker.alive = False
        self._workers.remove(worker)
        worker.writer.close()
        for future in worker.pending:
            if not future.done():
                future.set_result((_ANSWER_IT_YOURSELF, b""))
        await asyncio.to_thread(worker.process.join, 5)
        if not self._stopping:
            log.warning("a verification worker stopped (exit code %s); starting another",
                        worker.process.exitcode)
            await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        for worker in list(self._workers):
            worker.writer.close()  # the worker sees the end of its input and exits
        for worker in list(self._workers):
            await asyncio.to_thread(worker.process.join, 10)
            if worker.process.is_alive():
                worker.process.kill()
        for task in list(self._tasks):
            task.cancel()
