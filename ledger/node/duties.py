"""What a node does by itself, besides answering requests.

At start-up it finishes work that was accepted before a stop (``recover``): batches
accepted but not anchored, corrections issued but not applied (after their batches are
anchored), evaluation terms sealed but not yet marked so (after their batches are
anchored), interrupted integrity audits. Then, about once a second (``run_pass``), it
anchors any accepted batch still waiting (one accepted while the chain was unreachable is
anchored as soon as the chain is back, without a restart), marks sealed the evaluation
terms whose batch that anchored, keeps the event index current,
writes into credential rows the statuses the chain changed behind their back, and now and
then anchors the access log's head, so that rewriting the log is evident on chain, and
anchors the learning records waiting for a batch (every few seconds or every N statements), and
erases the candidates' photos and names kept for the proctors of exam sessions now over. Each
step is retried at the next start or pass when it fails; a failure is logged and never
stops the node serving.

A new capability with accepted work to finish or a periodic duty adds it here.
"""

from __future__ import annotations

import logging
import threading
import time

from ledger.errors import ChainUnavailable
from ledger.node.services import NodeServices

__all__ = ["NodeDuties", "auditor_of_run"]

log = logging.getLogger("eduledger.node")

PASS_INTERVAL_SECONDS = 1.0
PURGE_INTERVAL_SECONDS = 30.0


def auditor_of_run(requested_by: str) -> str | None:
    """The organisation that signs a run's report: runs started from the command line are
    recorded as ``cli:<org>`` (``cli:anonymous`` when nobody signs)."""
    org = requested_by.removeprefix("cli:")
    return None if org in ("", "anonymous") else org


class NodeDuties:
    def __init__(self, services: NodeServices) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_checkpoint = 0.0
        self._has_identity = False
        self._next_purge = 0.0

    # -- start-up ----------------------------------------------------------------------

    def recover(self) -> None:
        """Finish what was accepted before the last stop."""
        services = self.services
        try:
            resumed = services.anchoring.resume()
            if resumed:
                log.warning("resumed %d accepted anchor batches", len(resumed))
        except Exception:  # noqa: BLE001 - retried at the next start; the node keeps serving
            log.exception("resuming accepted anchor batches failed")
        try:
            finished = services.credentials.finish_corrections()  # after their batches are anchored
            if finished:
                log.warning("finished %d interrupted corrections", finished)
        except Exception:  # noqa: BLE001 - retried at the next start
            log.exception("finishing interrupted corrections failed")
        if services.node.identity_registry() is not None:
            try:
                finished = services.identity.resume()
                if finished:
                    log.warning("finished %d accepted identity-card rosters", finished)
            except Exception:  # noqa: BLE001 - retried at the next start and pass
                log.exception("finishing accepted identity-card rosters failed")
            try:
                finished = services.evaluation.resume()  # after their batches are anchored
                if finished:
                    log.warning("finished sealing %d evaluation terms", finished)
            except Exception:  # noqa: BLE001 - retried at the next start and pass
                log.exception("finishing the sealing of evaluation terms failed")
        for run in services.unfinished_audit_runs():
            try:  # each resumes from its last committed chunk
                services.integrity_audit(auditor_of_run(run.requested_by)).run(run.id)
                log.warning("resumed interrupted audit run %s", run.id)
            except Exception:  # noqa: BLE001 - the run records its error; retried at the next start
                log.exception("resuming audit run %s failed", run.id)

    # -- every pass --------------------------------------------------------------------

    def run_pass(self) -> None:
        services, settings = self.services, self.services.node.settings
        if services.anchoring.resume():  # accepted while the chain was unreachable, say
            services.credentials.finish_corrections()
        if self._has_identity:
            services.identity.resume()
            services.evaluation.resume()  # terms whose seal batch anchoring just anchored
            if time.monotonic() >= self._next_purge:  # what proctors saw, once its session is over
                self._next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
                services.exams.purge()
        services.records.anchor_due()  # statements waiting for a batch (and after a restart)
        services.node.indexer().run_once()
        services.credentials.follow_chain_statuses()
        if time.monotonic() >= self._next_checkpoint:
            self._next_checkpoint = time.monotonic() + settings.access_checkpoint_seconds
            if services.access_log.head()[0] > 0:
                services.access_log.checkpoint(services.anchoring, settings.node_org)

    def _run(self) -> None:
        self.recover()
        self._has_identity = self.services.node.identity_registry() is not None
        self._next_checkpoint = time.monotonic() + self.services.node.settings.access_checkpoint_seconds
        chain_down = False
        while not self._stop.is_set():
            try:
                self.run_pass()
                if chain_down:
                    log.warning("the chain answers again")
                chain_down = False
            except ChainUnavailable as exc:  # said once per outage, not every second
                if not chain_down:
                    log.warning("background pass: %s; retrying every %.0f s", exc.message,
                                PASS_INTERVAL_SECONDS)
                chain_down = True
            except Exception:  # noqa: BLE001 - keep serving; the next pass retries
                log.exception("background pass failed")
            self._stop.wait(PASS_INTERVAL_SECONDS)

    # -- the thread --------------------------------------------------------------------

    def start(self) -> None:
        """Recover, then run passes, in a background thread (a node with a deployment only)."""
        if self.services.node.deployment is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, daemon=True, name="eduledger-duties")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
