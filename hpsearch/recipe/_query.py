"""Read-only views of a study's trials for people and scripts (the API's list and best routes)."""

from __future__ import annotations

from typing import Any, Literal

from optuna.trial import FrozenTrial, TrialState

from hpsearch.recipe._machine import StageMachine, plan
from hpsearch.storage import StudyRecord

TrialStateName = Literal["complete", "pruned", "failed", "running", "waiting"]
TrialSort = Literal["value", "-value", "number", "-number", "duration", "-duration"]
_STATES: dict[TrialState, str] = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def trial_view(stage: str, trial: FrozenTrial) -> dict[str, Any]:
    """One trial as JSON-ready data: params, state, value, epochs, timing, reason."""
    duration = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return {
        "number": trial.number,
        "stage": stage,
        "state": _STATES[trial.state],
        "value": trial.value,
        "params": dict(trial.params),
        "epochs": len(trial.intermediate_values),
        "duration": duration,
        "started_at": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "worker": trial.user_attrs.get("worker"),
        "reason": trial.user_attrs.get("fail_reason"),
        "retry_of": trial.user_attrs.get("retry_of"),
    }


def search_trials(machine: StageMachine, study: StudyRecord) -> list[dict[str, Any]]:
    """Every coarse and refine trial of ``study``, as views, in stage then number order."""
    views = []
    for stage in plan(study.spec):
        if stage == "coarse" or stage.startswith("refine-"):
            views += [trial_view(stage, t) for t in machine.trials(study, stage)]
    return views


def list_trials(
    machine: StageMachine,
    study: StudyRecord,
    *,
    state: TrialStateName | None = None,
    stage: str | None = None,
    sort: TrialSort = "number",
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """A filtered, sorted page of trials and the total count before paging."""
    views = [
        v
        for v in search_trials(machine, study)
        if (state is None or v["state"] == state) and (stage is None or v["stage"] == stage)
    ]
    key = sort.lstrip("-")
    present = [v for v in views if v[key] is not None]
    missing = [v for v in views if v[key] is None]  # no value or duration yet: always last
    present.sort(key=lambda v: v[key], reverse=sort.startswith("-") != (key == "value"))
    ordered = present + missing
    return {"total": len(ordered), "trials": ordered[offset : offset + limit]}


def best_trials(machine: StageMachine, study: StudyRecord, k: int) -> list[dict[str, Any]]:
    """The ``k`` completed search trials with the highest validation accuracy, best first."""
    ranked = machine.ranked_trials(study)[:k]
    return [trial_view(str(t.user_attrs.get("stage")), t) for t in ranked]
