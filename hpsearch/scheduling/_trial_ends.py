"""Search trials that end: recorded once, their compute added to their round's, and retried (a
new trial of the same parameters) when the failure was not their configuration's fault: a worker
that died, a lease that ran out, a process that stopped. At most ``max_retries`` times each.

A running trial's worker saves a checkpoint now and then (``keep_checkpoint``: the latest one
replaces the one before). A retry goes on from the latest checkpoint of the trials it retries
(its ``resume`` attribute names it: the failed trial's own, else the one that trial went on
from), so a trial whose worker died at epoch k trains from epoch k+1. A trial's checkpoints are
deleted when it ends, except the one its retry goes on from, deleted when the retry ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

import optuna
from optuna.trial import TrialState
from pydantic import JsonValue

from hpsearch.recipe import objective_key
from hpsearch.results import EpochRecord, Outcome, WorkItem
from hpsearch.scheduling._stage_trials import CHECKPOINT, CONTINUES, RESUME, StageTrials
from hpsearch.storage import Queued, Store


class TrialEnds:
    def __init__(self, store: Store, trials: StageTrials, max_retries: int) -> None:
        self.store = store
        self.optuna = trials
        self.max_retries = max_retries  # re-enqueues of an interrupted trial's parameters

    def finish_trial(self, item: WorkItem, outcome: Outcome) -> None:
        """Record a trial's end (once), its compute with it; a failure not of its configuration
        queues its parameters again."""
        assert item.trial_id is not None
        attrs: dict[str, Any] = {}
        if outcome.history:
            attrs["history"] = [e.model_dump(mode="json") for e in outcome.history]
        if outcome.state == "failed":
            ended = self.fail_trial(item, outcome.reason or "failed", outcome.retryable, attrs)
        else:
            state = TrialState.COMPLETE if outcome.state == "completed" else TrialState.PRUNED
            curve = _curve(outcome.history, objective_key(item))
            ended = self.optuna.finish(item.trial_id, state, outcome.value, attrs, curve)
            if ended:  # a completed trial a later round may continue keeps its last weights
                kept = item.keep_final and outcome.state == "completed"
                self._drop_checkpoints(item, handed_on=item.trial_id if kept else None)
        if ended:
            self.store.add_stage_compute(
                item.study_id, item.stage, outcome.trial_epochs, outcome.seconds
            )

    def fail_trial(
        self, item: WorkItem, reason: str, retryable: bool, attrs: Mapping[str, JsonValue]
    ) -> bool:
        """Fail the trial; retry its parameters (a new trial) if the failure was not theirs,
        from the latest checkpoint of its run."""
        assert item.trial_id is not None
        frozen = self.store.optuna.get_trial(item.trial_id)
        retries = int(frozen.user_attrs.get("retries", 0))
        retry = retryable and retries < self.max_retries
        attrs = {**attrs, "fail_reason": reason, "retried": retry}
        if not self.optuna.finish(item.trial_id, TrialState.FAIL, None, attrs):
            return False
        handed_on = None
        if retry:
            again = {
                "stage": frozen.user_attrs.get("stage"),
                "retry_of": frozen.number,
                "retries": retries + 1,
            }
            if CONTINUES in frozen.user_attrs:  # still continuing that trial, when retried
                again[CONTINUES] = frozen.user_attrs[CONTINUES]
            saved = frozen.user_attrs.get(CHECKPOINT)  # else the one it went on from, if any
            own = {"trial_id": item.trial_id, **saved} if saved else None
            resume = own or frozen.user_attrs.get(RESUME)
            if resume and self._checkpoint_of(item, resume).is_file():
                again[RESUME] = resume
                handed_on = int(resume["trial_id"])
            entry = Queued(frozen.params, frozen.distributions, again)
            self.optuna.enqueue(self.item_study(item), [entry])
        self._drop_checkpoints(item, handed_on)
        return True

    def keep_checkpoint(self, item: WorkItem, epoch: int, sha256: str) -> None:
        """Make the received file of ``sha256`` the trial's latest checkpoint, taken after
        ``epoch``; a trial that ended meanwhile keeps none."""
        assert item.trial_id is not None
        path = self.store.artifacts.keep_checkpoint(sha256, item.study_id, item.trial_id)
        saved = {"epoch": epoch, "sha256": sha256}
        if not self.optuna.set_while_running(item.trial_id, CHECKPOINT, saved):
            path.unlink(missing_ok=True)

    def checkpoint_to_resume(self, item: WorkItem) -> tuple[Path, str] | None:
        """The checkpoint a retried trial goes on from, and its sha256; None if there is none."""
        if item.trial_id is None or item.resume_epoch is None:
            return None
        resume = self.store.optuna.get_trial(item.trial_id).user_attrs.get(RESUME)
        if not resume or not (path := self._checkpoint_of(item, resume)).is_file():
            return None
        return path, str(resume["sha256"])

    def _checkpoint_of(self, item: WorkItem, saved: dict[str, Any]) -> Path:
        return self.store.artifacts.checkpoint(item.study_id, int(saved["trial_id"]))

    def _drop_checkpoints(self, item: WorkItem, handed_on: int | None) -> None:
        """Delete the checkpoints an ended trial saved or went on from, but the one its retry
        goes on from (saved by the trial ``handed_on``)."""
        assert item.trial_id is not None
        ids = {item.trial_id}
        if item.resume_epoch is not None:  # else it went on from none (no read on a finish)
            resume = self.store.optuna.get_trial(item.trial_id).user_attrs.get(RESUME)
            ids |= {int(resume["trial_id"])} if resume else set()
        ids -= {handed_on} if handed_on is not None else set()
        self.store.artifacts.remove_checkpoints(item.study_id, sorted(ids))

    def item_study(self, item: WorkItem) -> optuna.Study:
        """The Optuna study of a trial item, without reading the study row when it is open."""
        spec = item.spec
        return self.optuna.study(item.study_id, item.study, spec, item.stage, spec.train.epochs)


def _curve(history: list[EpochRecord], key: str) -> dict[int, float]:
    """Epoch -> the objective (``key``: ``val_accuracy``, ``val_macro_f1``...) of a trial's
    history; an epoch without it (reported by an earlier version) is left out."""
    values = {e.epoch: getattr(e, key, None) for e in history}
    return {epoch: value for epoch, value in values.items() if _finite(value)}


def _finite(x: object) -> TypeGuard[float]:
    return isinstance(x, float | int) and math.isfinite(x)
