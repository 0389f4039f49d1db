"""Doing a work item: the part that needs a GPU (or CPU) and no database.

The local runner calls :func:`execute` in its own processes; the worker daemon will call it on
GPU machines, with a ``report`` callback that goes over HTTP.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from hpsearch.data import DataBundle, load_data
from hpsearch.errors import DivergedError
from hpsearch.recipe._final import run_final
from hpsearch.recipe._items import Outcome, WorkItem
from hpsearch.recipe._range_test import run_range_test
from hpsearch.recipe._sanity import run_sanity
from hpsearch.spec import StudySpec, parse_spec
from hpsearch.training import ReportFn, Trainer

_cache: dict[str, DataBundle] = {}


def execute(item: WorkItem, device: torch.device, report: ReportFn | None = None) -> Outcome:
    """Run ``item`` on ``device``; ``report(epoch, metrics)`` returning True stops a trial."""
    spec = parse_spec(item.spec, f"work item {item.study}/{item.stage}")
    data = cached_data(spec, device)
    started = time.perf_counter()
    if item.kind in ("sanity", "range_test"):
        run = run_sanity if item.kind == "sanity" else run_range_test
        result = run(spec, data, device)
        epochs = result.pop("trial_epochs")
        return Outcome(
            state="passed" if result["passed"] else "failed",
            result=result,
            reason=None if result["passed"] else result["verdict"],
            trial_epochs=epochs,
            seconds=time.perf_counter() - started,
        )
    if item.kind == "final":
        result = run_final(spec, item.configs, data, device, report, item.epoch_budget)
        targeted = result["targeted"] or {}
        return Outcome(
            state="completed",
            result=result,
            trial_epochs=result["final"]["trial_epochs"] + targeted.get("trial_epochs", 0.0),
            seconds=time.perf_counter() - started,
        )
    return _run_trial(spec, data, device, report)


def _run_trial(
    spec: StudySpec, data: DataBundle, device: torch.device, report: ReportFn | None
) -> Outcome:
    started = time.perf_counter()
    try:
        result = Trainer(spec, data, device).fit(report=report)
    except DivergedError as exc:  # the configuration's fault: retrying would diverge again
        return Outcome(
            state="failed",
            reason=f"diverged: {exc}",
            trial_epochs=float(exc.epoch),
            seconds=time.perf_counter() - started,
        )
    return Outcome(
        state="pruned" if result.stopped == "report" else "completed",
        value=max(m.val_accuracy for m in result.history),
        history=[asdict(m) for m in result.history],
        trial_epochs=float(len(result.history)),
        seconds=result.seconds,
    )


def cached_data(spec: StudySpec, device: torch.device) -> DataBundle:
    """The spec's splits on ``device``, loaded once per process for consecutive items."""
    key = f"{spec.dataset.model_dump_json()}|{spec.seed}|{device}"
    if key not in _cache:
        _cache.clear()  # one data set at a time: a worker's device memory is for training
        _cache[key] = load_data(spec.dataset, spec.seed, device)
    return _cache[key]
