"""Search trials that end: recorded once, their compute added to their round's, and retried (a
new trial of the same parameters) when the failure was not their configuration's fault: a worker
that died, a lease that ran out, a process that stopped. At most ``max_retries`` times each.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import optuna
from optuna.trial import TrialState

from hpsearch.recipe._items import objective_key
from hpsearch.recipe._trials import StageTrials
from hpsearch.results import EpochRecord, Outcome, WorkItem
from hpsearch.spec import parse_spec
from hpsearch.storage import Store


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
        if ended:
            self.store.add_stage_compute(
                item.study_id, item.stage, outcome.trial_epochs, outcome.seconds
            )

    def fail_trial(
        self, item: WorkItem, reason: str, retryable: bool, attrs: dict[str, Any]
    ) -> bool:
        """Fail the trial; retry its parameters (a new trial) if the failure was not theirs."""
        assert item.trial_id is not None
        frozen = self.store.optuna.get_trial(item.trial_id)
        retries = int(frozen.user_attrs.get("retries", 0))
        retry = retryable and retries < self.max_retries
        attrs = attrs | {"fail_reason": reason, "retried": retry}
        if not self.optuna.finish(item.trial_id, TrialState.FAIL, None, attrs):
            return False
        if retry:
            again = {
                "stage": frozen.user_attrs.get("stage"),
                "retry_of": frozen.number,
                "retries": retries + 1,
            }
            entry = (frozen.params, frozen.distributions, again)
            self.optuna.enqueue(self.item_study(item), [entry])
        return True

    def item_study(self, item: WorkItem) -> optuna.Study:
        """The Optuna study of a trial item, without reading the study row when it is open."""
        spec = parse_spec(item.spec, f"work item {item.study}/{item.stage}")
        return self.optuna.study(item.study_id, item.study, spec, item.stage, spec.train.epochs)


def _curve(history: list[EpochRecord], key: str) -> dict[int, float]:
    """Epoch -> the objective (``key``: ``val_accuracy``, ``val_macro_f1``...) of a trial's
    history; an epoch without it (reported by an earlier version) is left out."""
    values = {e.epoch: getattr(e, key, None) for e in history}
    return {epoch: value for epoch, value in values.items() if _finite(value)}


def _finite(x: object) -> TypeGuard[float]:
    return isinstance(x, float | int) and math.isfinite(x)
