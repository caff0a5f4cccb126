"""Signing a roster: the per-row work of issuance, in worker processes when the roster is large.

:func:`sign_rows` is the one place that turns validated rows into signed credentials: for
each row the VC payload, the SD-JWT signed with the issuer's Ed25519 key, the leaf that
will be anchored and the claim code. It is a pure function of its inputs (a
:class:`SigningJob` - credential type, issuer, issuance time, key, claim-code secret - the
rows and the credential ids; only the SD-JWT salts are random), so it runs the same in this
process or in another.

:class:`SigningPool` runs it over a roster: in this process for small rosters (or when the
pool has fewer than two workers), otherwise in chunks on a persistent pool of worker
processes, created on first use or ahead of time with :meth:`SigningPool.warm`. Workers are
spawned, never forked (the serving process has threads and an embedded chain with open
SQLite connections), and stop by themselves when the process that started them dies. Rows travel as plain
dicts (``model_dump``: pickling the pydantic models themselves costs ten times as much) and
are rebuilt in the worker without validating them again. The private key travels as its raw 32
bytes over the pool's pipe only: it is never logged nor written (the job's ``repr`` leaves
it out). Results come back in row order; an error a row raises in a worker is re-raised
here as it is (same type, same code); if a worker dies, the rest of the roster is signed in
this process and the pool is recreated on its next use.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import hashlib
import hmac
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
import typing
from base64 import b32encode
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from ledger.credentials import sdjwt
from ledger.credentials.anchorproof import credential_leaf
from ledger.credentials.roster import gc_paused
from ledger.credentials.types import AnyRow, CredentialType, sd_jwt_vc_claims, validity_window, vc_payload

__all__ = ["SignedCredential", "SigningJob", "SigningPool", "claim_code", "shared_pool", "sign_rows"]

log = logging.getLogger("eduledger.signing")

MIN_POOLED_ROWS = 256
"""Smaller rosters are signed in this process: the pool's overhead is not worth it."""
CHUNK_ROWS = 250
"""Rows per task sent to a worker (and per progress step)."""
WARM_TIMEOUT = 120.0


@dataclass(frozen=True)
class SigningJob:
    """Everything but the rows that signing a roster needs."""

    ctype: CredentialType
    issuer_did: str
    kid: str
    issuer_name: str
    now: datetime
    private_key: bytes = field(repr=False)
    """The issuer's Ed25519 private key, raw (32 bytes)."""
    claim_secret: bytes = field(repr=False)
    """The key claim codes are derived under (see :func:`claim_code`)."""


class SignedCredential(NamedTuple):
    credential_id: str
    leaf: bytes
    claim_code: str
    sd_jwt: str
    valid_from: datetime
    valid_until: datetime | None
    student_id: str | None


def claim_code(secret: bytes, credential_id: str) -> str:
    digest = hmac.new(secret, credential_id.encode(), hashlib.sha256).digest()
    text = b32encode(digest[:10]).decode()  # 80 bits, 16 characters
    return "-".join(text[i:i + 4] for i in range(0, 16, 4))


def sign_rows(job: SigningJob, rows: Sequence[AnyRow], ids: Sequence[str]) -> list[SignedCredential]:
    """Sign one credential per row, ``ids[i]`` being row i's credential id."""
    key = Ed25519PrivateKey.from_private_bytes(job.private_key)
    iat = int(job.now.timestamp())
    out: list[SignedCredential] = []
    for row, credential_id in zip(rows, ids, strict=True):
        start, until = validity_window(row, job.now)
        payload = vc_payload(job.ctype, row, credential_id=credential_id, issuer_id=job.issuer_did,
                             issuer_name=job.issuer_name, valid_from=start, valid_until=until)
        payload["iat"] = iat
        sd_jwt_vc_claims(payload, job.ctype, job.issuer_did)
        issued = sdjwt.issue(payload, key=key, kid=job.kid)
        out.append(SignedCredential(credential_id, credential_leaf(issued.signed_payload),
                                    claim_code(job.claim_secret, credential_id), issued.compact,
                                    start, until, getattr(row, "student_id", None)))
    return out


# --------------------------------------------------------------------------- rows as plain data


@lru_cache
def _nested_models(model: type[BaseModel]) -> tuple[tuple[str, type[BaseModel]], ...]:
    """The fields of ``model`` that hold models (``M``, ``M | None`` or ``list[M]``)."""
    out: dict[str, type[BaseModel]] = {}
    for name, info in model.model_fields.items():
        for candidate in (info.annotation, *typing.get_args(info.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                out[name] = candidate
    return tuple(out.items())


@lru_cache
def _plain_fields(model: type[BaseModel]) -> frozenset[str] | None:
    """The field names of ``model`` when an instance is exactly its field values (no private
    attributes, no extras); None otherwise."""
    if model.__private_attributes__ or model.model_config.get("extra") == "allow":
        return None
    return frozenset(model.model_fields)


_new_object = object.__new__
_set_slot = object.__setattr__


def _rebuild(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """The model that ``model_dump()`` gave ``data``, without validating it again (it was
    validated before it was dumped).

    What ``model_construct(**data)`` builds, without its per-field walk for defaults and
    aliases: ``data`` already holds every field (a tenth of a transcript's signing time)."""
    for name, inner in _nested_models(model):
        value = data.get(name)
        if isinstance(value, list):
            data[name] = [_rebuild(inner, v) for v in value]
        elif isinstance(value, dict):
            data[name] = _rebuild(inner, value)
    if data.keys() != _plain_fields(model):
        return model.model_construct(**data)
    instance = _new_object(model)
    _set_slot(instance, "__dict__", data)
    _set_slot(instance, "__pydantic_fields_set__", set(data))
    _set_slot(instance, "__pydantic_extra__", None)
    _set_slot(instance, "__pydantic_private__", None)
    return instance


def _sign_plain(job: SigningJob, rows: list[dict[str, Any]], ids: list[str]) -> list[SignedCredential]:
    """The task a worker runs: :func:`sign_rows` over rows given as ``model_dump()`` dicts."""
    model = job.ctype.row_model
    with gc_paused():  # a chunk is many small objects, none in a cycle (a third of the time)
        return sign_rows(job, [_rebuild(model, row) for row in rows], ids)


def _start_worker(parent: int) -> None:
    # What the worker inherited (the fork server's imports) lives as long as it does: keep
    # it out of garbage collection, which would walk it again and copy every page it touches.
    gc.freeze()
    # Ctrl-C is for the parent, which stops the pool; not for each worker to report.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def orphaned() -> None:  # the parent was killed (kill -9): nobody will stop us, so stop
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True, name="eduledger-signing-parent").start()


def _ready(hold: float) -> int:
    """A worker's answer to :meth:`SigningPool.warm` (it imported this module to run it)."""
    time.sleep(hold)
    return os.getpid()


# --------------------------------------------------------------------------- the pool


def _context() -> Any:
    # spawn, not fork (the serving process has threads and open databases) and not
    # forkserver: a fork server outlives a node that is killed, with its workers. Spawned
    # workers are the node's own children, so they can tell when it is gone (_start_worker).
    return multiprocessing.get_context("spawn")


class _PoolUnavailable(Exception):
    """The pool cannot finish this roster (a worker died, or the pool was closed)."""


class SigningPool:
    """Signs rosters, in ``workers`` processes when there are two or more (see the module
    docstring). Thread-safe; one pool serves every credential service of a process
    (:func:`shared_pool`)."""

    def __init__(self, workers: int, *, min_rows: int = MIN_POOLED_ROWS,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.workers = max(1, workers)
        self.min_rows = min_rows
        self.chunk_rows = max(1, chunk_rows)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._exit_hook = False

    def __repr__(self) -> str:
        return f"SigningPool(workers={self.workers}, {'running' if self.running else 'idle'})"

    @property
    def running(self) -> bool:
        """True while worker processes exist (or are starting)."""
        return self._executor is not None

    def sign(self, job: SigningJob, rows: Sequence[AnyRow],
             ids: Sequence[str]) -> Iterator[list[SignedCredential]]:
        """Sign every row (row i gets ``ids[i]``); yields the results chunk by chunk, in row
        order. The first row that fails, in row order, raises its own error."""
        if len(rows) != len(ids):
            raise ValueError("one credential id per row")
        model = job.ctype.row_model
        if (self.workers < 2 or len(rows) < self.min_rows
                or any(type(row) is not model for row in rows)):  # vc_payload reports those
            yield from self._sign_here(job, rows, ids, 0)
            return
        done = 0
        try:
            for chunk in self._sign_pooled(job, rows, ids):
                done += len(chunk)
                yield chunk
        except _PoolUnavailable as exc:
            log.warning("the signing pool failed (%s); signing the rest of this roster "
                        "in-process", exc.__cause__.__class__.__name__)
            yield from self._sign_here(job, rows, ids, done)

    def _sign_pooled(self, job: SigningJob, rows: Sequence[AnyRow],
                     ids: Sequence[str]) -> Iterator[list[SignedCredential]]:
        size = min(self.chunk_rows, math.ceil(len(rows) / (2 * self.workers)))
        futures: list[Future[list[SignedCredential]]] = []
        executor = self._running()
        try:
            try:
                for start in range(0, len(rows), size):
                    futures.append(executor.submit(
                        _sign_plain, job, [row.model_dump() for row in rows[start:start + size]],
                        list(ids[start:start + size])))
            except RuntimeError as exc:  # broken, or closed meanwhile
                self._discard(executor)
                raise _PoolUnavailable from exc
            for future in futures:
                try:
                    chunk = _result(executor, future)
                except (BrokenProcessPool, CancelledError) as exc:
                    self._discard(executor)
                    raise _PoolUnavailable from exc
                yield chunk
        finally:
            for future in futures:
                future.cancel()

    def _sign_here(self, job: SigningJob, rows: Sequence[AnyRow], ids: Sequence[str],
                   begin: int) -> Iterator[list[SignedCredential]]:
        for start in range(begin, len(rows), self.chunk_rows):
            yield sign_rows(job, rows[start:start + self.chunk_rows], ids[start:start + self.chunk_rows])

    def warm(self, *, timeout: float = WARM_TIMEOUT) -> list[int]:
        """Start every worker and wait until each has imported the signing code; returns their
        process ids (none when signing happens in-process)."""
        if self.workers < 2:
            return []
        deadline = time.monotonic() + timeout
        pids: set[int] = set()
        hold = 0.0
        while len(pids) < self.workers:
            executor = self._running()
            # A worker that is up may answer for one that is still starting: ask again,
            # holding each worker a little longer, until every one of them has answered.
            try:
                futures = [executor.submit(_ready, hold) for _ in range(self.workers)]
                for future in futures:
                    pids.add(future.result(timeout=max(0.0, deadline - time.monotonic())))
            except BrokenProcessPool:
                self._discard(executor)
                raise
            hold = min(0.2, hold + 0.02)
        return sorted(pids)

    def warm_in_background(self) -> threading.Thread:
        """:meth:`warm` in a daemon thread (a failure is logged, and signing starts the pool
        again when it needs it)."""

        def run() -> None:
            try:
                self.warm()
            except Exception:
                log.exception("could not start the signing workers")

        thread = threading.Thread(target=run, name="eduledger-signing-warm", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop the workers (the pool starts again if it is used again)."""
        with self._lock:
            executor, self._executor = self._executor, None
            if self._exit_hook:
                atexit.unregister(self.close)
                self._exit_hook = False
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _running(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=_context(),
                                                     initializer=_start_worker, initargs=(os.getpid(),))
                if not self._exit_hook:
                    atexit.register(self.close)
                    self._exit_hook = True
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        # A worker killed while it held the result queue's lock leaves the others blocked on
        # it for ever: a broken pool's processes are killed, not asked to finish.
        processes = _processes(executor)
        results = getattr(executor, "_result_queue", None)  # private, like _processes
        for process in processes:
            process.kill()
        for process in processes:  # reaped here, not left a zombie until a next pool starts
            process.join(timeout=2)
        # A worker killed in the middle of sending a result leaves the executor's manager
        # thread waiting for the rest of it for ever, and the interpreter joins that thread
        # at exit. With the workers gone, closing this process's end of the pipe gives the
        # thread end-of-file: it sees a broken pool and ends.
        writer = getattr(results, "_writer", None)
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        # Let that thread fail the pending futures before they are cancelled below: in
        # Python 3.11 it raises (and prints) InvalidStateError on a cancelled one.
        manager = getattr(executor, "_executor_manager_thread", None)
        if manager is not None and manager is not threading.current_thread():
            manager.join(timeout=5)
        executor.shutdown(wait=False, cancel_futures=True)


def _processes(executor: ProcessPoolExecutor) -> list[Any]:
    """The executor's worker processes (a private attribute of CPython's executor)."""
    return list((getattr(executor, "_processes", None) or {}).values())


def _result(executor: ProcessPoolExecutor, future: Future[list[SignedCredential]]) -> list[SignedCredential]:
    """The chunk, or BrokenProcessPool as soon as one of the workers has died: the executor
    notices a death itself, except when the dead worker took the result queue's lock with it,
    and then the survivors and this wait would block for ever."""
    while True:
        try:
            return future.result(timeout=0.5)
        except TimeoutError:
            if any(p.exitcode is not None for p in _processes(executor)):
                raise BrokenProcessPool("a signing worker died") from None


_shared: SigningPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> SigningPool:
    """This process's signing pool, sized by the setting ``EDULEDGER_SIGNING_WORKERS`` (read
    once, when it is first asked for); its workers start on first use or :meth:`warm`."""
    global _shared
    with _shared_lock:
        if _shared is None:
            from ledger.settings import Settings

            _shared = SigningPool(Settings().signing_workers)
        return _shared
