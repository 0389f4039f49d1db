"""The local driver: runs a whole study on this machine against a storage URL.

One worker runs items in this process. N workers run them in N spawned processes that share the
storage (each reports epochs and is told to prune through its own connection); this process asks
the stage machine for work and records the outcomes. Run the same command again after a crash and
it resumes: trials the dead run left RUNNING are failed and their parameters retried.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from hpsearch.device import resolve_device
from hpsearch.errors import HPSearchError, StudyExistsError
from hpsearch.recipe._execute import execute
from hpsearch.recipe._items import Outcome, WorkItem
from hpsearch.recipe._launch import check_launch
from hpsearch.recipe._machine import DONE, WAIT, StageMachine
from hpsearch.recipe._query import summary
from hpsearch.spec import StudySpec
from hpsearch.storage import Store, StudyRecord

ProgressFn = Callable[[dict[str, Any], WorkItem | None, Outcome | None], None]
"""``on_progress(summary, item, outcome)``: at the start (no item) and after each finished item."""


def run_search(
    spec: StudySpec,
    storage_url: str,
    *,
    workers: int = 1,
    device: str = "auto",
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study ``spec`` describes in ``storage_url``; returns its summary."""
    store = Store(storage_url)
    try:
        study = open_study(store, spec)
        machine = StageMachine(store)
        machine.recover(study.id)
        report = _Progress(machine, study.id, on_progress)
        report(None, None)
        if workers <= 1:
            _run_inline(machine, study.id, resolve_device(device), report)
        else:
            try:
                _run_pool(machine, study.id, device, workers, report)
            except BrokenProcessPool:  # its work items were already recorded as retryable
                raise HPSearchError(
                    "a worker process died (out of memory?); run the same command again to resume"
                ) from None
        return summary(machine, study.id)
    finally:
        store.close()


def open_study(store: Store, spec: StudySpec) -> StudyRecord:
    """The stored study named like ``spec`` (created if new); another stored spec is an error."""
    existing = store.find_study(spec.name)
    if existing is None:
        check_launch(spec, source=spec.name)
        try:
            return store.create_study(spec)
        except StudyExistsError:  # created by a concurrent run a moment ago
            existing = store.get_study(spec.name)
    if existing.spec != spec:
        raise HPSearchError(
            f"the storage already holds a study named {spec.name!r} with a different spec; "
            "run it with the same spec to resume, or choose another name or --storage"
        )
    if existing.driver == "server" and existing.state == "running":
        raise HPSearchError(
            f"study {spec.name!r} is running on a server's workers; watch it with "
            "'hpsearch status', or stop it there first to continue it here"
        )
    if existing.state == "stopped":
        store.set_study_state(existing.id, "running", driver="local", only_from="stopped")
    return store.get_study(existing.id)


class _Progress:
    def __init__(self, machine: StageMachine, study_id: int, on_progress: ProgressFn | None):
        self.machine, self.study_id, self.on_progress = machine, study_id, on_progress

    def __call__(self, item: WorkItem | None, outcome: Outcome | None) -> None:
        if self.on_progress is not None:
            self.on_progress(summary(self.machine, self.study_id), item, outcome)


def _run_inline(
    machine: StageMachine, study_id: int, device: torch.device, progress: _Progress
) -> None:
    while True:
        item = machine.next_item(study_id)
        if item == DONE:
            return
        if item == WAIT:
            raise HPSearchError("the study waits on work that no local process is doing")
        assert isinstance(item, WorkItem)
        outcome = _guarded(item, _executor(machine, item, device))
        machine.finish(item, outcome)
        progress(item, outcome)


def _run_pool(
    machine: StageMachine, study_id: int, device: str, workers: int, progress: _Progress
) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # no forked CUDA or BLAS state
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(machine.store.url, device, threads),
    ) as pool:
        running: dict[Future[dict[str, Any]], WorkItem] = {}
        done = False
        while True:
            while not done and len(running) < workers:
                item = machine.next_item(study_id)
                if item == DONE:
                    done = True
                elif item == WAIT:
                    break
                else:
                    assert isinstance(item, WorkItem)
                    running[pool.submit(_worker_execute, item.to_dict())] = item
            if not running:
                if done:
                    return
                raise HPSearchError("the study waits on work that no local process is doing")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                outcome = _guarded(item, _collector(future))
                machine.finish(item, outcome)
                progress(item, outcome)


def _guarded(item: WorkItem, work: Callable[[], Outcome]) -> Outcome:
    """Turn an error while doing ``item`` into a failed outcome; the study carries on."""
    try:
        return work()
    except BrokenProcessPool as exc:
        return Outcome(state="failed", reason=f"worker process died: {exc}", retryable=True)
    except HPSearchError as exc:
        return Outcome(state="failed", reason=str(exc))
    except (RuntimeError, ValueError, OSError) as exc:  # CUDA out of memory is a RuntimeError
        return Outcome(state="failed", reason=f"{type(exc).__name__}: {exc}")


def _executor(machine: StageMachine, item: WorkItem, device: torch.device) -> Callable[[], Outcome]:
    def work() -> Outcome:
        return execute(item, device, lambda epoch, metrics: machine.report(item, epoch, metrics))

    return work


def _collector(future: Future[dict[str, Any]]) -> Callable[[], Outcome]:
    return lambda: Outcome.from_dict(future.result())


# --- inside a pool process ---------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(storage_url: str, device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    _worker["machine"] = StageMachine(Store(storage_url))
    _worker["device"] = resolve_device(device)


def _worker_execute(item_data: dict[str, Any]) -> dict[str, Any]:
    item = WorkItem.from_dict(item_data)
    machine: StageMachine = _worker["machine"]
    outcome = _guarded(item, _executor(machine, item, _worker["device"]))
    return outcome.to_dict()
