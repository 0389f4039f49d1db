"""The local driver (``hpsearch run``): a whole study on this machine, against a storage URL.

It drives the same scheduler as a server, with leases, in-process: it claims the study's items
as a worker would, does them here (one at a time, or in N spawned processes that share the
storage), reports every epoch and finishes each item through the scheduler. So recovery exists
once: run the same command after a crash and the run takes its study over (the leases the dead
run held are closed and applied like expired ones, their trials retried, their stages reopened;
``Reaper.take_over``).

Its leases never run out: a local run does not send heartbeats, and a server on the same
database reaps only the leases of the studies it drives.

The spec is the user's own, run on their own machine: a ``python:`` model's module is allowed
for the run, here and in its processes (``hpsearch.models.own_model_allowed``), where a worker
needs ``--allow-module``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from hpsearch.errors import ArtifactError, HPSearchError, StudyExistsError
from hpsearch.models import allow_modules, own_model_allowed
from hpsearch.protocol import LeaseRead
from hpsearch.results import Outcome, WorkItem
from hpsearch.scheduling import Scheduler, StageMachine, resolve_init_from
from hpsearch.spec import StudySpec, check_same_spec
from hpsearch.stages import check_launch
from hpsearch.storage import Store, StudyRecord
from hpsearch.views import StudySummary, summary

LOCAL_LEASE_SECONDS = 10 * 365 * 86400.0  # never runs out: the next run takes it over
CHECKPOINT_SECONDS = 60.0  # a trial's checkpoint at most this often (as a worker's default)
INTERRUPTED = "interrupted: its process stopped"

ProgressFn = Callable[[StudySummary, WorkItem | None, Outcome | None], None]
"""``on_progress(summary, item, outcome)``: at the start (no item) and after each finished item."""


def run_search(
    spec: StudySpec,
    storage_url: str,
    *,
    workers: int = 1,
    device: str = "auto",
    on_progress: ProgressFn | None = None,
    artifacts: str | None = None,
) -> StudySummary:
    """Run (or resume) the study ``spec`` describes in ``storage_url``; returns its summary.
    Its model files are kept in ``artifacts`` (default: beside a SQLite database)."""
    store = Store(storage_url, artifacts)
    try:
        study = open_study(store, spec)
        scheduler = Scheduler(StageMachine(store), LOCAL_LEASE_SECONDS, driver="local")
        scheduler.take_over(study.id, INTERRUPTED)
        driver = _Driver(scheduler, study.id, on_progress)
        driver.progress(None, None)
        with own_model_allowed(spec.model) as allowed:  # the user's own spec, on their machine
            if workers <= 1:
                driver.inline(device)
            else:
                try:
                    driver.pool(device, workers, allowed)
                except BrokenProcessPool:  # its work items were already recorded as retryable
                    raise HPSearchError(
                        "a worker process died (out of memory?); "
                        "run the same command again to resume"
                    ) from None
        return summary(scheduler.machine, study.id)
    finally:
        store.close()


def open_study(store: Store, spec: StudySpec) -> StudyRecord:
    """The stored study named like ``spec`` (created if new); another stored spec is an error.
    A ``model.init_from: study:NAME`` is resolved to that study's model file first."""
    spec = resolve_init_from(store, spec)
    existing = store.find_study(spec.name)
    if existing is None:
        check_launch(spec, source=spec.name)
        try:
            return store.create_study(spec)
        except StudyExistsError:  # created by a concurrent run a moment ago
            existing = store.get_study(spec.name)
    check_same_spec(existing.spec.model_dump(mode="json"), spec)
    if existing.driver == "server" and existing.state == "running":
        raise HPSearchError(
            f"study {spec.name!r} is running on a server's workers; watch it with "
            "'hpsearch status', or stop it there first to continue it here"
        )
    if existing.state == "stopped":
        store.set_study_state(existing.id, "running", driver="local", only_from="stopped")
    return store.get_study(existing.id)


class _Driver:
    def __init__(self, scheduler: Scheduler, study_id: int, on_progress: ProgressFn | None):
        self.scheduler, self.study_id, self.on_progress = scheduler, study_id, on_progress
        self.worker = f"local-{os.getpid()}"

    def progress(self, item: WorkItem | None, outcome: Outcome | None) -> None:
        if self.on_progress is not None:
            self.on_progress(summary(self.scheduler.machine, self.study_id), item, outcome)

    def claim(self) -> LeaseRead | None:
        """The study's next item; None once it is over. Waiting on work nobody does (every
        item out, none of them here) is an error: this is the study's only driver."""
        lease = self.scheduler.claim(self.worker, study_id=self.study_id)
        if lease is None and self.scheduler.store.study_state(self.study_id) == "running":
            raise HPSearchError("the study waits on work that no local process is doing")
        return lease

    def finish(self, lease: LeaseRead, outcome: Outcome) -> None:
        self.scheduler.finish(lease.id, self.worker, outcome)
        self.progress(lease.item, outcome)

    def inline(self, device: str) -> None:
        from hpsearch.device import resolve_device
        from hpsearch.stages import ItemExecutor

        here, executor = resolve_device(device), ItemExecutor(self.worker)
        while (lease := self.claim()) is not None:
            inbox = self.scheduler.store.artifacts.inbox  # its files are received as written
            saved = LocalCheckpoints(self.scheduler, lease.id, self.worker)
            report = self._reporter(lease)
            outcome = executor.execute(lease.item, here, report, outbox=inbox, checkpoints=saved)
            self.finish(lease, outcome)

    def pool(self, device: str, workers: int, allowed: tuple[str, ...]) -> None:
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")  # no forked CUDA or BLAS state
        store = self.scheduler.store
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init,
            initargs=(store.url, str(store.artifacts.root), device, threads, allowed),
        ) as pool:
            running: dict[Future[dict[str, Any]], LeaseRead] = {}
            while True:
                while len(running) < workers:
                    lease = self.scheduler.claim(self.worker, study_id=self.study_id)
                    if lease is None:
                        break
                    running[pool.submit(_do, lease, self.worker)] = lease
                if not running:
                    self.claim()  # None once the study is over, else the error it is
                    return
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    lease = running.pop(future)
                    self.finish(lease, _collect(future))

    def _reporter(self, lease: LeaseRead) -> Callable[[int, dict[str, float]], bool]:
        def report(epoch: int, metrics: dict[str, float]) -> bool:
            return self.scheduler.report(lease.id, self.worker, epoch, metrics)

        return report


def _collect(future: Future[dict[str, Any]]) -> Outcome:
    try:
        return Outcome.from_dict(future.result())
    except BrokenProcessPool as exc:  # the process doing it died: not the item's fault
        return Outcome(state="failed", reason=f"worker process died: {exc}", retryable=True)


# --- inside a pool process ---------------------------------------------------------------------

_process: dict[str, Any] = {}


def _init(
    storage_url: str, artifacts: str, device: str, threads: int, allowed: tuple[str, ...]
) -> None:
    import torch

    from hpsearch.device import resolve_device
    from hpsearch.stages import ItemExecutor

    torch.set_num_threads(threads)
    allow_modules(allowed)
    store = Store(storage_url, artifacts)
    _process["scheduler"] = Scheduler(StageMachine(store), LOCAL_LEASE_SECONDS, driver="local")
    _process["device"] = resolve_device(device)
    _process["executor"] = ItemExecutor(f"local-{os.getpid()}")


def _do(lease: LeaseRead, worker: str) -> dict[str, Any]:
    from hpsearch.stages import ItemExecutor

    scheduler: Scheduler = _process["scheduler"]
    item, lease_id = lease.item, lease.id

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        return scheduler.report(lease_id, worker, epoch, metrics)

    executor: ItemExecutor = _process["executor"]
    inbox = scheduler.store.artifacts.inbox
    saved = LocalCheckpoints(scheduler, lease_id, worker)
    outcome = executor.execute(item, _process["device"], report, outbox=inbox, checkpoints=saved)
    return outcome.to_dict()


class LocalCheckpoints:
    """A trial's checkpoints in a local run: written into the artifact directory and kept as
    a server keeps a worker's (a run started again after a crash goes on from them)."""

    every_seconds = CHECKPOINT_SECONDS

    def __init__(self, scheduler: Scheduler, lease_id: int, worker: str) -> None:
        self.scheduler, self.lease_id, self.worker = scheduler, lease_id, worker

    def save(self, state: dict[str, Any], epoch: int) -> None:
        from hpsearch.training import write_checkpoint
        from hpsearch.uploads import sha256_of

        artifacts = self.scheduler.store.artifacts
        written = artifacts.inbox / f".checkpoint-{self.lease_id}.pt"
        write_checkpoint(state, written)
        sha256 = sha256_of(written)
        os.replace(written, artifacts.received(sha256))
        self.scheduler.keep_checkpoint(self.lease_id, self.worker, epoch, sha256)

    def fetch(self) -> Path | None:
        try:
            path, _ = self.scheduler.checkpoint_to_resume(self.lease_id, self.worker)
        except ArtifactError:
            return None
        return path
