"""Scheduling for remote workers: claims, leases, reports, heartbeats, finishes, the reaper.

A claim asks the stage machine for the next work item of a running, server-driven study and
records a lease on it. The worker renews the lease with every report or heartbeat; a lease that
runs out is reaped: its item is finished as failed ("lease expired") and the machine re-enqueues a
trial's parameters (up to ``max_retries``) or reopens a single stage.

Races, with any number of server processes on one database:
- two claims for one study: most claims pop a queued trial of the current stage, which is safe
  without a lock (``StageTrials.pop``, ``SKIP LOCKED``), or see plainly that there is nothing
  to hand out (``StageMachine.quick_item``). Anything else (starting a stage, queueing more
  trials, ending a stage) the machine must decide for a study one claim at a time: a thread of
  this process takes a lock per study, and on PostgreSQL also a transaction-scoped advisory lock
  on the study, which other server processes respect. Both are tried, never waited for: a claim
  that finds the study being decided moves on to the next study (like ``SKIP LOCKED``) and the
  worker asks again a moment later. Not a row lock: that would deadlock against the machine's
  own update of the study row. SQLite serves from one process, so the thread lock is all it
  needs;
- a finish and the reaper (or two finishes): a lease leaves ``active`` by one conditional update;
  only the caller whose update matched the row records the outcome, so nothing is applied twice.
  An outcome stored but not yet recorded (the finish was cut off) is recorded by the next one to
  see it (``LeaseBook``);
- two reapers: the same conditional update decides which one fails an expired lease.

Containment: a claim walks every running study, and nothing one study holds may stop it from
handing out another's work. A study whose next item cannot be made (a bug, a spec stored by an
earlier version that the current rules refuse) is failed with the reason and skipped; only the
database being unavailable fails the claim itself (503: the worker retries). A single-stage item
whose workers keep going silent (it kills them: out of memory, a crash) is handed out
``1 + max_retries`` times at most, then the study fails, as trials' parameters are retried a
bounded number of times. Every call on a lease names the worker; only the one that claimed it
may report on, renew or finish it.

Work can also be left with no lease at all: a claim cut off after the machine made a trial (or
claimed a single stage) but before its lease was written. The reaper finds such trials and stages
once they are older than a lease period and fails (and retries) or reopens them.

A server that was down could not hear heartbeats, so for one lease period after it starts it
reaps nothing: workers that kept training meanwhile get the chance to report back.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from optuna.exceptions import StorageInternalError
from sqlalchemy.engine import Connection

from hpsearch.errors import (
    ArtifactError,
    ArtifactKindError,
    ArtifactNotFoundError,
    StudyNotFoundError,
)
from hpsearch.protocol import LeaseRead
from hpsearch.recipe import check_outcome
from hpsearch.results import Outcome, WorkItem
from hpsearch.scheduling._leases import LeaseBook, LeaseRow, check_holder
from hpsearch.scheduling._machine import WAIT, StageMachine
from hpsearch.scheduling._reaper import Reaper
from hpsearch.scheduling._workers import WorkerBook
from hpsearch.storage import Artifacts, Store, StudyRecord
from hpsearch.storage.migrations import LOCK_SPACE

log = logging.getLogger("hpsearch.scheduling")


class Census(NamedTuple):
    """Counts for monitoring (``/metrics``)."""

    trials: dict[str, int]  # search trials of every study, by state
    studies: dict[str, int]  # by state
    workers_alive: int
    leases_active: int


class Scheduler:
    """Hands out work items under leases and takes back their reports and outcomes."""

    def __init__(
        self, machine: StageMachine, lease_seconds: float = 60.0, driver: str = "server"
    ) -> None:
        self.machine = machine
        self.store: Store = machine.store
        self.lease_seconds = lease_seconds
        self.driver = driver  # it hands out and reaps the work of this driver's studies only
        self.leases = LeaseBook(self.store, lease_seconds, driver)
        self.workers = WorkerBook(self.store, alive_seconds=max(2 * lease_seconds, 10.0))
        self.reaper = Reaper(self)
        self._locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()

    # --- claims --------------------------------------------------------------------------------

    def claim(
        self,
        worker: str,
        host: str | None = None,
        devices: list[str] | None = None,
        study_id: int | None = None,
        modules: Sequence[str] | None = None,
    ) -> LeaseRead | None:
        """The next work item of any running study (or of ``study_id``), oldest study first;
        None if there is none. A study whose model is ``python:MODULE:...`` is handed only to
        a worker whose ``modules`` (the prefixes it may import) take MODULE (None: a local run,
        its own worker, which checks that itself); one that no claiming worker could take says
        so in its message ("waiting for a worker that allows module M") until one does."""
        self.reaper.reap_now_and_then()
        if self.driver == "server":  # a local run is its own worker, not one of a server's
            self.workers.seen(worker, host, devices or [])
        for study in self.store.running_studies(driver=self.driver):
            if study_id is not None and study.id != study_id:
                continue
            if study.spec_problems:
                problems = "; ".join(study.spec_problems)
                self.give_up(study.id, f"its stored spec breaks this version's rules: {problems}")
                continue
            needs = _module_of(study.spec.model.arch)
            if needs is not None and modules is not None and not _allows(modules, needs):
                self._note(study, f"waiting for a worker that allows module {needs}")
                continue
            lease = None
            try:
                with self.contained(study.id, "its next work item could not be made"):
                    lease = self._claim_in(study, worker)
            except StudyNotFoundError:
                continue  # deleted since the list was read: nothing of it to hand out
            if lease is not None:
                self._note(study, None)
                return lease
        return None

    def _note(self, study: StudyRecord, message: str | None) -> None:
        """Say why a running study waits (None: it no longer does), writing only a change."""
        if study.message != message:
            self.store.set_study_state(study.id, "running", message, only_from="running")

    def give_up(self, study_id: int, reason: str) -> None:
        """Fail a study that cannot go on, and everything of it that no worker holds."""
        held = {row.item.trial_id for row in self.leases.held(study_id) if row.state == "active"}
        self.machine.abandon(study_id, reason, {t for t in held if t is not None})

    @contextmanager
    def contained(self, study_id: int, doing: str) -> Iterator[None]:
        """Do one study's step; whatever it raises fails that study with the reason instead of
        the caller (a claim, a finish, the reaper serve every study). Only the database being
        away is let through (a retry helps; the study is not at fault), and a study deleted
        meanwhile."""
        try:
            yield
        except StudyNotFoundError:
            raise
        except Exception as exc:
            if database_unavailable(exc):
                raise
            log.exception("study %d failed: %s", study_id, doing)
            self.give_up(study_id, f"{doing}: {_describe(exc)}")

    def _claim_in(self, study: StudyRecord, worker: str) -> LeaseRead | None:
        study_id = study.id
        quick = self.machine.quick_item(study)  # most claims end here, with no lock
        if quick == WAIT:
            return None
        if isinstance(quick, WorkItem):
            with self.store.engine.begin() as conn:
                lease_id = self.leases.insert(conn, quick, worker)
            return LeaseRead(id=lease_id, lease_seconds=self.lease_seconds, item=quick)
        # The careful path. If another claim is deciding for this study right now (a thread of
        # this process, or another server process), let it: it hands out what is due, and this
        # worker asks again a moment later. Queueing here instead made every claim of a burst
        # wait for all the ones before it.
        lock = self._study_lock(study_id)
        if not lock.acquire(blocking=False):
            return None
        try:
            with self.store.engine.begin() as conn:
                postgres = self.store.engine.dialect.name == "postgresql"
                if postgres and not _try_advisory_lock(conn, study_id):
                    return None
                item = self.machine.next_item(study_id)
                if not isinstance(item, WorkItem):
                    return None
                lease_id = self.leases.insert(conn, item, worker)
        finally:
            lock.release()
        return LeaseRead(id=lease_id, lease_seconds=self.lease_seconds, item=item)

    def _study_lock(self, study_id: int) -> threading.Lock:
        with self._locks_lock:
            return self._locks[study_id]

    # --- reports, heartbeats, finishes ---------------------------------------------------------

    def report(self, lease_id: int, worker: str, epoch: int, metrics: dict[str, float]) -> bool:
        """Record an epoch and renew the lease; True means "stop now" (pruned, stopped, expired).
        Only ``worker``, the lease's holder, may (:class:`LeaseHeldError`)."""
        renewed = self.leases.renew(lease_id, worker, {"epoch": epoch, **metrics})
        if renewed is None:
            return True
        row, study_state = renewed
        if self.driver == "server":
            self.workers.heard(row.worker)
        return self.machine.report(row.item, epoch, metrics, study_state, row.progress)

    def heartbeat(self, lease_id: int, worker: str) -> bool:
        """Renew the lease; False means the item is no longer this worker's to finish (or its
        study stopped: the worker should give it up)."""
        renewed = self.leases.renew(lease_id, worker)
        if renewed is None:
            return False
        row, study_state = renewed
        if self.driver == "server":
            self.workers.heard(row.worker)
        return study_state == "running"

    def receiving(self, lease_id: int, worker: str) -> Artifacts:
        """Where a file of work item ``lease_id`` is received, once it is known to be
        ``worker``'s active item (:class:`LeaseHeldError`, or :class:`ArtifactError` for an
        item already finished or expired)."""
        self._active(lease_id, worker)
        return self.store.artifacts

    def _active(self, lease_id: int, worker: str) -> LeaseRow:
        row = self.leases.get(lease_id)
        check_holder(lease_id, row.worker, worker)
        if row.state != "active":
            raise ArtifactError(f"work item {lease_id} is {row.state}: it takes no files now")
        return row

    def keep_checkpoint(self, lease_id: int, worker: str, epoch: int, sha256: str) -> None:
        """Make the received file of ``sha256`` the latest checkpoint of ``worker``'s active
        trial or final item ``lease_id``, taken after ``epoch`` (:class:`ArtifactError` for an
        item of another kind, or not active)."""
        item = self._active(lease_id, worker).item
        if item.kind not in ("trial", "final"):
            why = f"work item {lease_id} is a {item.kind} item: it keeps no checkpoints"
            raise ArtifactKindError(why)
        self.machine.keep_checkpoint(item, epoch, sha256)

    def checkpoint_to_resume(self, lease_id: int, worker: str) -> tuple[Path, str]:
        """The checkpoint ``worker``'s active item ``lease_id`` goes on from, and its sha256
        (:class:`ArtifactNotFoundError` when it has none)."""
        item = self._active(lease_id, worker).item
        found = self.machine.checkpoint_to_resume(item)
        if found is None:
            raise ArtifactNotFoundError(f"work item {lease_id} goes on from no checkpoint")
        return found

    def finish(self, lease_id: int, worker: str, outcome: Outcome) -> bool:
        """Apply ``outcome`` once; a repeated or late finish is acknowledged and not applied.

        True if this call recorded ``outcome`` (including a re-sent finish whose first delivery
        was cut off before its outcome was recorded). Only ``worker``, the lease's holder, may
        finish it (:class:`LeaseHeldError`).
        """
        row = self.leases.get(lease_id)
        check_holder(lease_id, row.worker, worker)
        check_outcome(row.item, outcome)  # a malformed outcome changes nothing
        if row.state == "active":  # nor one whose files did not arrive (a repeat needs none)
            self.store.artifacts.check_received(outcome.files())
        if self.leases.close(lease_id, "finished", outcome):
            return self.apply(row, outcome)
        row = self.leases.get(lease_id)
        if row.applied_at is None and row.outcome is not None:
            return self.apply(row, row.outcome) and row.outcome == outcome
        return False

    def apply(self, row: LeaseRow, outcome: Outcome) -> bool:
        """Record a closed lease's outcome in its study; False if that failed the study (the
        lease then counts as applied: nothing would ever record it)."""
        applied = False
        with self.contained(row.study_id, f"recording the outcome of work item {row.id} failed"):
            self._record(row, outcome)
            applied = True
        if not applied:
            self.leases.mark_applied(row)
        return applied

    def _record(self, row: LeaseRow, outcome: Outcome) -> None:
        if row.item.kind == "trial" or not outcome.retryable:
            self.machine.finish(row.item, outcome)
        elif self._stage_retaken(row):
            pass  # a late, repeated retry: the stage is out again already
        elif (silent := self.leases.count_expired(row.study_id, row.stage)) > self._retries:
            self.machine.give_up_stage(
                row.study_id,
                row.stage,
                f"{row.stage} was handed out {silent} times and its worker stopped answering "
                "each time (killed? out of memory?); last: " + (outcome.reason or "failed"),
            )
        else:
            self.machine.finish(row.item, outcome)  # reopened for another worker
        self.leases.mark_applied(row)

    @property
    def _retries(self) -> int:
        return self.machine.max_retries

    def _stage_retaken(self, row: LeaseRow) -> bool:
        """Whether another lease holds ``row``'s stage now: a late, repeated retry of a stage
        item must not hand the stage out a third time."""
        return any(
            other.id != row.id and other.stage == row.stage and other.state == "active"
            for other in self.leases.held(row.item.study_id)
        )

    # --- the reaper (``_reaper``) --------------------------------------------------------------

    def reap(self) -> int:
        """Everything the reaper does; returns how many leases expired."""
        return self.reaper.reap()

    def reap_expired(self) -> int:
        """Fail every item whose lease ran out (its parameters retried); returns how many."""
        return self.reaper.reap_expired()

    def take_over(self, study_id: int, reason: str) -> int:
        """Take over a study whose driver died (the local runner, starting again); returns how
        many items it held."""
        return self.reaper.take_over(study_id, reason)

    def census(self) -> Census:
        """Counts for monitoring: trials and studies by state, live workers, active leases."""
        return Census(
            trials=self.machine.optuna.census(),
            studies=self.store.count_studies_by_state(),
            workers_alive=self.workers.count_alive(),
            leases_active=self.leases.count_active(),
        )


def database_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database being unreachable (a retry helps), rather than a fault?"""
    if isinstance(exc, StorageInternalError):  # Optuna's wrapper of SQLAlchemy's errors
        exc = exc.__cause__ or exc
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | ConnectionError)


def _describe(exc: BaseException) -> str:
    """The exception in one line of at most 1,000 characters (a study's message)."""
    text = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}"[:1000] if text else type(exc).__name__


def _try_advisory_lock(conn: Connection, study_id: int) -> bool:
    """Take the study's claim lock for this transaction if no other server process holds it."""
    taken = conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_SPACE, study_id)))
    return bool(taken.scalar())


def _module_of(arch: str) -> str | None:
    """The module a ``python:MODULE:CALLABLE`` model imports (None for any other model): as
    ``hpsearch.models.python_module`` says, which scheduling may not import (the package's
    static imports reach PyTorch: the scheduling-without-torch contract)."""
    return arch.split(":")[1] if arch.startswith("python:") else None


def _allows(prefixes: Sequence[str], module: str) -> bool:
    """Whether a worker allowing ``prefixes`` may import ``module`` (a prefix ends at a dot)."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)
