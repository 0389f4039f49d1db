"""A simulated worker: speaks the trial protocol exactly like ``hpsearch worker`` but trains
nothing. For load tests and ``bench/service.py``: it measures the server and its database, not a
GPU. It imports neither PyTorch nor the recipe, so dozens of them start in a moment.

Results are made up but shaped like real ones, so a simulated study moves through every stage:
a trial's validation accuracy is a smooth function of its learning rate and weight decay (best at
``lr=0.05``, ``weight_decay=1e-4``), rising over the epochs.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from workers._client import ProtocolClient, Unreachable

CALLS = ("claim", "report", "finish")
SUGGESTED_LR = 0.05  # what the simulated range test suggests (the made-up optimum's LR)
LR_RANGE = (SUGGESTED_LR / 10, SUGGESTED_LR * 10**0.5)  # and the coarse LR range it gives


def simulated_accuracy(params: dict[str, float], epoch: int) -> float:
    """Validation accuracy of a made-up trial after ``epoch`` epochs."""
    lr = params.get("lr", 0.05)
    wd = params.get("weight_decay", 1e-4)
    peak = 0.99 - 0.08 * math.log10(lr / 0.05) ** 2 - 0.01 * math.log10(wd / 1e-4) ** 2
    return min(0.995, max(0.1, peak)) * (1 - 0.5**epoch)


class SimulatedWorker:
    """Claims items until none is left, timing every call by kind."""

    def __init__(
        self,
        server: str,
        token: str | None,
        worker_id: str,
        epoch_seconds: float = 0.0,
        poll_seconds: float = 0.05,
    ) -> None:
        self.client = ProtocolClient(server, token, worker_id)
        self.epoch_seconds = epoch_seconds  # how long a simulated epoch "trains" (sleeps)
        self.poll_seconds = poll_seconds  # how long to wait after a 204 (the daemon waits 2 s)
        self.timings: dict[str, list[float]] = defaultdict(list)  # seconds per call, by kind
        self.errors: list[str] = []  # server errors (5xx) and unreachable calls
        self.items: list[dict[str, Any]] = []  # every lease claimed, in order
        self.last_finish = 0.0  # time.perf_counter() when the last item was finished
        self.first_trial = math.inf  # time.perf_counter() when a claim that got a trial began
        self.last_trial = 0.0  # and when the finish of the last trial returned

    def close(self) -> None:
        self.client.close()

    def run(
        self,
        idle_seconds: float = 2.0,
        stop: threading.Event | None = None,
    ) -> int:
        """Work until nothing was handed out for ``idle_seconds``; given ``stop``, work until it
        is set instead, however long the server has nothing to hand out (a study between stages,
        or busy queueing a stage's trials). Returns how many items were finished."""
        idle_since = None
        time.sleep(random.uniform(0, self.poll_seconds))  # as the daemon: first claims spread
        while stop is None or not stop.is_set():
            asked = time.perf_counter()
            lease = self._call("claim", self.client.claim, "simulated", ["none"])
            if lease is None:
                idle_since = idle_since or time.monotonic()
                if stop is None and time.monotonic() - idle_since >= idle_seconds:
                    break
                time.sleep(self.poll_seconds * random.uniform(0.75, 1.25))  # as the daemon
                continue
            idle_since = None
            self.items.append(lease)
            if lease["item"]["kind"] == "trial":
                self.first_trial = min(self.first_trial, asked)
            self._finish(int(lease["id"]), self._outcome(lease))
            if lease["item"]["kind"] == "trial":
                self.last_trial = self.last_finish
        return len(self.items)

    def _outcome(self, lease: dict[str, Any]) -> dict[str, Any]:
        item_id = int(lease["id"])

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            return bool(self._call("report", self.client.report, item_id, epoch, metrics))

        return simulated_outcome(lease["item"], report, self.epoch_seconds)

    def _finish(self, item_id: int, outcome: dict[str, Any]) -> None:
        self._call("finish", self.client.finish, item_id, outcome)
        self.last_finish = time.perf_counter()

    def _call(self, kind: str, method: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args)
        except Unreachable as exc:
            self.errors.append(f"{kind}: {exc}")
            raise
        finally:
            self.timings[kind].append(time.perf_counter() - started)


def simulated_outcome(
    item: dict[str, Any],
    report: Callable[[int, dict[str, float]], bool] | None = None,
    epoch_seconds: float = 0.0,
) -> dict[str, Any]:
    """A made-up outcome for a work item (as JSON data), shaped like a real one. A trial spends
    about ``epoch_seconds`` on each epoch (0.5x to 1.5x), reports it to ``report`` and stops
    (pruned) when it answers True."""
    if item["kind"] == "trial":
        return _trial(item, report or (lambda epoch, metrics: False), epoch_seconds)
    made = {"sanity": _sanity, "range_test": _range_test, "final": _final}[item["kind"]]
    return made(item)


def _trial(
    item: dict[str, Any], report: Callable[[int, dict[str, float]], bool], epoch_seconds: float
) -> dict[str, Any]:
    history, value = [], 0.0
    jitter = random.Random(item.get("trial_number"))  # epochs of real trials differ in length
    for epoch in range(1, int(item["spec"]["train"]["epochs"]) + 1):
        time.sleep(epoch_seconds * jitter.uniform(0.5, 1.5))
        value = simulated_accuracy(item["params"], epoch)
        metrics = {"val_accuracy": value, "train_accuracy": value, "val_loss": 1 - value}
        history.append({"epoch": epoch, **metrics})
        if report(epoch, metrics):
            return {"state": "pruned", "value": value, "history": history, "trial_epochs": epoch}
    return {"state": "completed", "value": value, "history": history,
            "trial_epochs": len(history)}  # fmt: skip


def _sanity(item: dict[str, Any]) -> dict[str, Any]:
    checks = [
        {"check": "initial_loss", "verdict": "passed", "passed": True, "advice": "",
         "expected": math.log(10), "measured": math.log(10)},
        {"check": "overfit", "verdict": "passed", "passed": True, "advice": "", "steps": 10,
         "curve": [2.3 * 0.7**i for i in range(10)], "train_accuracy": 1.0},
    ]  # fmt: skip
    result = {"passed": True, "verdict": "passed", "advice": "", "checks": checks}
    return {"state": "passed", "result": result, "trial_epochs": 1.0}


def _range_test(item: dict[str, Any]) -> dict[str, Any]:
    lrs = [10 ** (-6 + 7 * i / 49) for i in range(50)]
    losses = [2.3 - 2.0 * math.exp(-((math.log10(lr) + 1.3) ** 2)) for lr in lrs]
    result = {
        "passed": True,
        "verdict": "passed",
        "curve": {"lr": lrs, "loss": losses, "smoothed": losses},
        "stopped": "end of sweep",
        "lr_steepest": SUGGESTED_LR,
        "lr_min_loss": SUGGESTED_LR,
        "suggested_lr": SUGGESTED_LR,
        "range": {"low": LR_RANGE[0], "high": LR_RANGE[1]},
        "check": {"lr": SUGGESTED_LR, "passed": True, "iterations": 20},
    }
    return {"state": "passed", "result": result, "trial_epochs": 1.0}


def _final(item: dict[str, Any]) -> dict[str, Any]:
    params = item["configs"][0]
    history = [
        {"epoch": e, "train_accuracy": 0.99, "val_accuracy": 0.98, "train_loss": 0.05,
         "val_loss": 0.07, "lr": 0.0, "seconds": 0.0}
        for e in range(1, 4)
    ]  # fmt: skip
    diagnosis = {"verdict": "good fit", "advice": "nothing to change", "gap": 0.01}
    final = {
        "params": params, "history": history, "best_epoch": 3, "weights_epoch": 3,
        "val_accuracy": 0.98, "train_accuracy": 0.99, "test_accuracy": 0.975,
        "test_loss": 0.08, "tta_flip": False, "diagnosis": diagnosis,
        "trial_epochs": 3.0, "seconds": 0.0,
    }  # fmt: skip
    return {"state": "completed", "result": {"final": final, "targeted": None},
            "trial_epochs": 3.0}  # fmt: skip
