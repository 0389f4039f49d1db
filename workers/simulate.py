"""A simulated worker: the worker loop of ``hpsearch worker`` (the same claims, reports,
heartbeats, spool and finishes) with made-up work instead of training. For load tests and
``bench/service.py``: it measures the server and its database, not a GPU. It imports neither
PyTorch nor the recipe, so dozens of them start in a moment.

Results are made up but have the typed shapes of real ones (``hpsearch.results``), so a simulated
study moves through every stage: a trial's validation accuracy is a smooth function of its
learning rate and weight decay (best at ``lr=0.05``, ``weight_decay=1e-4``), rising over the
epochs.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpsearch.client import ProtocolClient, ServerError
from hpsearch.protocol import LeaseRead
from hpsearch.results import (
    ClassMetrics,
    Diagnosis,
    EpochRecord,
    FinalItemResult,
    FinalResult,
    InitialLossCheck,
    LrCheck,
    LrCurve,
    LrRange,
    Outcome,
    OverfitCheck,
    RangeTestResult,
    SanityResult,
    SplitMetrics,
    WorkItem,
)
from workers._daemon import Worker
from workers._spool import Spool

CALLS = ("claim", "report", "finish")
SUGGESTED_LR = 0.05  # what the simulated range test suggests (the made-up optimum's LR)
LR_RANGE = (SUGGESTED_LR / 10, SUGGESTED_LR * 10**0.5)  # and the coarse LR range it gives


def simulated_accuracy(params: dict[str, float], epoch: int) -> float:
    """Validation accuracy of a made-up trial after ``epoch`` epochs."""
    lr = params.get("lr", 0.05)
    wd = params.get("weight_decay", 1e-4)
    peak = 0.99 - 0.08 * math.log10(lr / 0.05) ** 2 - 0.01 * math.log10(wd / 1e-4) ** 2
    return min(0.995, max(0.1, peak)) * (1 - 0.5**epoch)


class TimedClient:
    """The protocol client, timing every claim, report and finish by kind and keeping the
    errors (an unreachable server, a 5xx) that the worker then rides out."""

    def __init__(self, client: ProtocolClient) -> None:
        self.client = client
        self.worker_id = client.worker_id
        self.timings: dict[str, list[float]] = defaultdict(list)  # seconds per call, by kind
        self.errors: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name not in (*CALLS, "heartbeat"):
            return method

        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args)
            except ServerError as exc:
                self.errors.append(f"{name}: {exc}")
                raise
            finally:
                if name in CALLS:
                    self.timings[name].append(time.perf_counter() - started)

        return timed


class SimulatedWorker:
    """A worker that makes its results up, timing every call by kind."""

    def __init__(
        self,
        server: str,
        token: str | None,
        worker_id: str,
        epoch_seconds: float = 0.0,
        poll_seconds: float = 0.05,
    ) -> None:
        self.client = ProtocolClient(server, token, worker_id)
        self.timed = TimedClient(self.client)
        self.epoch_seconds = epoch_seconds  # how long a simulated epoch "trains" (sleeps)
        self.poll_seconds = poll_seconds  # how long to wait after a 204 (the daemon waits 2 s)
        self.items: list[LeaseRead] = []  # every lease claimed, in order
        self.first_trial = math.inf  # time.perf_counter() when a claim that got a trial began
        self.last_trial = 0.0  # and when the finish of the last trial returned
        self.last_finish = 0.0  # time.perf_counter() when the last item was finished
        self._folder = Path(tempfile.mkdtemp(prefix="hpsearch-simulated-"))

    @property
    def timings(self) -> dict[str, list[float]]:
        return self.timed.timings

    @property
    def errors(self) -> list[str]:
        return self.timed.errors

    def close(self) -> None:
        self.client.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def run(self, idle_seconds: float = 2.0, stop: threading.Event | None = None) -> int:
        """Work until nothing was handed out for ``idle_seconds``; given ``stop``, work until it
        is set instead, however long the server has nothing to hand out (a study between stages,
        or busy queueing a stage's trials). Returns how many items were finished."""
        spool = Spool(self._folder / self.client.worker_id)
        loop = Worker(
            self.timed,  # type: ignore[arg-type]  # the client, timed
            "simulated",
            spool,
            idle_seconds=self.poll_seconds,
            idle_exit=None if stop is not None else idle_seconds,
            execute=self._execute,
        )
        if stop is not None:
            loop.warm_stop = stop
        loop.after_item = self._done
        try:
            return loop.run()
        finally:
            spool.close()

    def _execute(
        self, item: WorkItem, report: Callable[[int, dict[str, float]], bool], *_: object
    ) -> Outcome:
        return Outcome.from_dict(simulated_outcome(item, report, self.epoch_seconds))

    def _done(self, lease: LeaseRead, began: float) -> None:
        self.items.append(lease)
        self.last_finish = time.perf_counter()
        if lease.item.kind == "trial":
            self.first_trial = min(self.first_trial, began)
            self.last_trial = self.last_finish


def simulated_outcome(
    item: WorkItem | Mapping[str, Any],
    report: Callable[[int, dict[str, float]], bool] | None = None,
    epoch_seconds: float = 0.0,
) -> dict[str, Any]:
    """A made-up outcome for a work item (given as itself or as the JSON of a lease's
    ``item``), as JSON data shaped like a real one. A trial spends about ``epoch_seconds`` on
    each epoch (0.5x to 1.5x), reports it to ``report`` and stops (pruned) when it answers
    True."""
    kind = item.kind if isinstance(item, WorkItem) else item["kind"]
    if kind in ("sanity", "range_test"):  # made of nothing of the item: its kind will do
        return (_sanity() if kind == "sanity" else _range_test()).to_dict()
    if not isinstance(item, WorkItem):
        item = WorkItem.model_validate(item)
    if item.kind == "trial":
        return _trial(item, report or (lambda epoch, metrics: False), epoch_seconds)
    return _final(item).to_dict()


def _trial(
    item: WorkItem, report: Callable[[int, dict[str, float]], bool], epoch_seconds: float
) -> dict[str, Any]:
    history, value = [], 0.0
    jitter = random.Random(item.trial_number)  # epochs of real trials differ in length
    for epoch in range(1, item.spec.train.epochs + 1):
        time.sleep(epoch_seconds * jitter.uniform(0.5, 1.5))
        value = simulated_accuracy(item.params, epoch)
        # the server judges a trial on the study's objective; here every metric is the same
        objective = item.spec.search.objective
        metrics = {"val_accuracy": value, "train_accuracy": value, "val_loss": 1 - value,
                   f"val_{objective}": value}  # fmt: skip
        history.append(EpochRecord(epoch=epoch, **metrics))
        if report(epoch, metrics):
            state = "pruned"
            break
    else:
        state = "completed"
    outcome = Outcome(state=state, value=value, history=history, trial_epochs=len(history))
    return outcome.to_dict()


def _sanity() -> Outcome:
    checks: list[InitialLossCheck | OverfitCheck] = [
        InitialLossCheck(verdict="passed", passed=True, advice="", expected=math.log(10),
                         classes=10, measured=math.log(10)),
        OverfitCheck(verdict="passed", passed=True, advice="", lr=0.05, images=320, steps=10,
                     curve=[2.3 * 0.7**i for i in range(10)], train_accuracy=1.0,
                     pass_accuracy=0.99),
    ]  # fmt: skip
    result = SanityResult(passed=True, verdict="passed", advice="", checks=checks)
    return Outcome(state="passed", result=result, trial_epochs=1.0)


def _range_test() -> Outcome:
    lrs = [10 ** (-6 + 7 * i / 49) for i in range(50)]
    losses = [2.3 - 2.0 * math.exp(-((math.log10(lr) + 1.3) ** 2)) for lr in lrs]
    check = LrCheck(lr=SUGGESTED_LR, iterations=20, loss_before=2.3, loss_after=1.0,
                    required_drop=0.2, passed=True, curve=[2.3, 1.0])  # fmt: skip
    result = RangeTestResult(
        passed=True,
        verdict="passed",
        curve=LrCurve(lr=lrs, loss=losses, smoothed=losses),
        stopped="end of sweep",
        lr_steepest=SUGGESTED_LR,
        lr_min_loss=SUGGESTED_LR,
        suggested_lr=SUGGESTED_LR,
        range=LrRange(low=LR_RANGE[0], high=LR_RANGE[1]),
        check=check,
    )
    return Outcome(state="passed", result=result, trial_epochs=1.0)


def _final(item: WorkItem) -> Outcome:
    history = [
        EpochRecord(epoch=e, train_accuracy=0.99, val_accuracy=0.98, train_loss=0.05,
                    val_loss=0.07, lr=0.0, seconds=0.0, val_balanced_accuracy=0.98,
                    val_macro_f1=0.98, val_roc_auc=0.999)
        for e in range(1, 4)
    ]  # fmt: skip
    diagnosis = Diagnosis(verdict="good fit", advice="nothing to change", gap=0.01)
    # ten classes of 40 test images, 39 of each right and one taken for the next class: 0.975
    names = [str(c) for c in range(10)]
    confusion = [[39 if j == i else int(j == (i + 1) % 10) for j in range(10)] for i in range(10)]
    per_class = [
        ClassMetrics(name=name, precision=0.975, recall=0.975, f1=0.975, support=40)
        for name in names
    ]
    test = SplitMetrics(accuracy=0.975, balanced_accuracy=0.975, macro_f1=0.975, roc_auc=0.999,
                        classes=per_class, confusion=confusion)  # fmt: skip
    objective = item.spec.search.objective
    final = FinalResult(
        params=item.configs[0], history=history, best_epoch=3, weights_epoch=3,
        val_accuracy=0.98, train_accuracy=0.99, test_accuracy=0.975, test_loss=0.08,
        tta_flip=False, diagnosis=diagnosis, trial_epochs=3.0, seconds=0.0,
        objective=objective, val_value=getattr(history[-1], f"val_{objective}"), test_metrics=test,
    )  # fmt: skip
    return Outcome(state="completed", result=FinalItemResult(final=final), trial_epochs=3.0)
