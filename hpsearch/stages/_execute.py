"""Doing a work item: the part that needs a GPU (or CPU) and no database.

The local runner calls :func:`execute` in its own processes; the worker daemon will call it on
GPU machines, with a ``report`` callback that goes over HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch

from hpsearch.data import DataBundle, load_data
from hpsearch.errors import CancelledError, DivergedError, HPSearchError
from hpsearch.results import EpochRecord, Outcome, WorkItem
from hpsearch.spec import StudySpec
from hpsearch.stages._final import run_final
from hpsearch.stages._lr_sweep import run_range_test
from hpsearch.stages._sanity import run_sanity
from hpsearch.training import (
    CheckpointError,
    CheckpointSink,
    ReportFn,
    Trainer,
    cancellable,
    read_checkpoint,
)

_cache: dict[str, DataBundle] = {}
log = logging.getLogger("hpsearch.work")


class TrialCheckpoints(CheckpointSink, Protocol):
    """A trial's checkpoints on the machine that trains it: saved now and then, and the one a
    retried trial goes on from, fetched."""

    def fetch(self) -> Path | None:
        """The checkpoint the item goes on from, here; None if it cannot be had."""


class ItemExecutor:
    """Executes work items for one driver (a worker daemon, the local runner), turning whatever
    an item raises into its outcome, the same for every driver: given up part-way
    (:class:`CancelledError`) is handed back to be done again; our own errors say what is wrong;
    anything else (out of memory, CUDA, a bug) is reported with its type and message, and its
    traceback logged the first time it is met."""

    def __init__(self, who: str) -> None:
        self.who = who
        self._seen: set[tuple[str, str]] = set()

    def outcome_of(self, item: str, exc: BaseException) -> Outcome:
        """The outcome of an item (named ``item`` in the log) that raised ``exc``."""
        if isinstance(exc, CancelledError):
            return Outcome(state="failed", reason=str(exc), retryable=True)
        if isinstance(exc, HPSearchError):  # e.g. the data set is missing on this machine
            return Outcome(state="failed", reason=str(exc))
        detail = str(exc).strip() or (
            "the worker ran out of memory" if isinstance(exc, MemoryError) else ""
        )
        reason = f"{type(exc).__name__}: {detail}"[:4000] if detail else type(exc).__name__
        key = (type(exc).__name__, str(exc)[:200])
        first = key not in self._seen
        self._seen.add(key)
        log.error("[%s] %s failed: %s", self.who, item, reason, exc_info=exc if first else None)
        return Outcome(state="failed", reason=reason)

    def execute(
        self,
        item: WorkItem,
        device: torch.device,
        report: ReportFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        name: str | None = None,
        outbox: Path | None = None,
        checkpoints: TrialCheckpoints | None = None,
    ) -> Outcome:
        """:func:`execute`, whatever it raises an outcome."""
        try:
            return execute(item, device, report, cancelled, outbox, checkpoints)
        except Exception as exc:
            return self.outcome_of(name or f"{item.study}/{item.stage}", exc)


def execute(
    item: WorkItem,
    device: torch.device,
    report: ReportFn | None = None,
    cancelled: Callable[[], bool] | None = None,
    outbox: Path | None = None,
    checkpoints: TrialCheckpoints | None = None,
) -> Outcome:
    """Run ``item`` on ``device``; ``report(epoch, metrics)`` returning True stops a trial
    (pruned) and gives a final training up. Once ``cancelled()`` is true, training raises
    :class:`~hpsearch.errors.CancelledError` at its next step. The final stage saves its
    models into ``outbox`` (named by their sha256; none without one): the outcome names them,
    and its driver delivers them before the finish. A trial saves checkpoints to
    ``checkpoints`` and, retried, goes on from the one it fetches."""
    with cancellable(cancelled):
        outcome = _execute(item, device, report, outbox, checkpoints)
    return outcome


def _execute(
    item: WorkItem,
    device: torch.device,
    report: ReportFn | None,
    outbox: Path | None,
    checkpoints: TrialCheckpoints | None,
) -> Outcome:
    spec = item.spec
    data = cached_data(spec, device)
    started = time.perf_counter()
    if item.kind in ("sanity", "range_test"):
        run = run_sanity if item.kind == "sanity" else run_range_test
        result, epochs = run(spec, data, device)
        return Outcome(
            state="passed" if result.passed else "failed",
            result=result,
            reason=None if result.passed else result.verdict,
            trial_epochs=epochs,
            seconds=time.perf_counter() - started,
        )
    if item.kind == "final":
        final = run_final(
            spec,
            item.configs,
            data,
            device,
            _give_up_on(report),
            item.epoch_budget,
            outbox,
            resume=_checkpoint_to_resume(item, checkpoints),
            checkpoint=checkpoints,
        )
        targeted = final.targeted.trial_epochs if final.targeted is not None else 0.0
        return Outcome(
            state="completed",
            result=final,
            trial_epochs=final.final.trial_epochs + targeted,
            seconds=time.perf_counter() - started,
        )
    return _run_trial(item, spec, data, device, report, checkpoints)


def _give_up_on(report: ReportFn | None) -> ReportFn | None:
    """A final training is never pruned: "stop" from its report means its study was stopped,
    and a model cut short must not be recorded as the study's result."""
    if report is None:
        return None

    def checked(epoch: int, metrics: dict[str, float]) -> bool:
        if report(epoch, metrics):
            raise CancelledError("its study was stopped")
        return False

    return checked


def _run_trial(
    item: WorkItem,
    spec: StudySpec,
    data: DataBundle,
    device: torch.device,
    report: ReportFn | None,
    checkpoints: TrialCheckpoints | None,
) -> Outcome:
    started = time.perf_counter()
    resume = _checkpoint_to_resume(item, checkpoints)
    try:
        try:
            result = Trainer(spec, data, device).fit(
                report,
                resume=resume,
                checkpoint=checkpoints,
                keep_last=item.keep_final,
                extend=item.continues is not None,
            )
        except CheckpointError as exc:  # of another spec or length: trained from the start
            log.warning("%s: %s; training it from epoch 1", _trial_name(item), exc)
            result = Trainer(spec, data, device).fit(
                report, checkpoint=checkpoints, keep_last=item.keep_final
            )
    except DivergedError as exc:  # the configuration's fault: retrying would diverge again
        return Outcome(
            state="failed",
            reason=f"diverged: {exc}",
            trial_epochs=float(exc.epoch - (resume["epoch"] if resume else 0)),
            seconds=time.perf_counter() - started,
        )
    return Outcome(
        state="pruned" if result.stopped == "report" else "completed",
        value=result.best_value,  # the best validation objective of any epoch
        history=[EpochRecord(**asdict(m)) for m in result.history],
        trial_epochs=float(result.trained_epochs),  # a checkpoint's epochs were counted before
        seconds=result.seconds,
    )


def _checkpoint_to_resume(
    item: WorkItem, checkpoints: TrialCheckpoints | None
) -> dict[str, Any] | None:
    """The checkpoint a retried trial goes on from, read; None (it starts at epoch 1) when it
    has none, or it cannot be fetched or read."""
    if item.resume_epoch is None or checkpoints is None:
        return None
    path = checkpoints.fetch()
    if path is None:
        return None
    try:
        state = read_checkpoint(path)
    except CheckpointError as exc:
        log.warning("%s: %s; training it from epoch 1", _trial_name(item), exc)
        return None
    log.info("%s: continues at epoch %d (its checkpoint)", _trial_name(item), state["epoch"] + 1)
    return state


def _trial_name(item: WorkItem) -> str:
    trial = f" trial {item.trial_number}" if item.kind == "trial" else ""
    return f"{item.study}/{item.stage}{trial}"


def cached_data(spec: StudySpec, device: torch.device) -> DataBundle:
    """The spec's splits on ``device``, loaded once per process for consecutive items."""
    key = f"{spec.dataset.model_dump_json()}|{spec.seed}|{device}"
    if key not in _cache:
        _cache.clear()  # one data set at a time: a worker's device memory is for training
        _cache[key] = load_data(spec.dataset, spec.seed, device)
    return _cache[key]
