"""Read-only views of a study for people and scripts: its summary, pages of its trials, one trial.

Everything here reads counts and pages in SQL (``_pages``), never every trial of a study, so a
study of ten thousand trials is summarized as fast as a small one.
"""

from __future__ import annotations

from typing import Any, Literal

from hpsearch.recipe._edges import edge_warnings
from hpsearch.recipe._items import param_name
from hpsearch.recipe._machine import StageMachine, is_search_stage, plan
from hpsearch.recipe._pages import BadQueryError, best_of, trial_detail, trial_page, trial_points
from hpsearch.storage import StudyRecord

TrialStateName = Literal["complete", "pruned", "failed", "running", "waiting"]

__all__ = [
    "BadQueryError",
    "TrialStateName",
    "best_trials",
    "list_trials",
    "summary",
    "trial_detail",
    "trial_points",
]


def list_trials(
    machine: StageMachine,
    study: StudyRecord,
    *,
    state: TrialStateName | None = None,
    stage: str | None = None,
    sort: str = "number",
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """A filtered, sorted page of trials and the total count before paging."""
    return trial_page(
        machine, study, state=state, stage=stage, sort=sort, limit=limit, offset=offset
    )


def best_trials(machine: StageMachine, study: StudyRecord, k: int) -> list[dict[str, Any]]:
    """The ``k`` completed search trials with the highest validation accuracy, best first."""
    return best_of(machine, study, k)


def summary(machine: StageMachine, study_id: int) -> dict[str, Any]:
    """What a person or a script wants to know about a study: stages, best, diagnosis, compute."""
    store = machine.store
    study = store.get_study(study_id)
    records = {r.name: r for r in store.stages(study_id)}
    stages = []
    for name in [*plan(study.spec), "targeted"]:
        record = records.get(name)
        if record is None:
            if name != "targeted":
                stages.append({"name": name, "status": "pending"})
            continue
        entry = record.as_dict()
        if is_search_stage(name) and "epochs" in record.result:
            ostudy = machine.stage_study(study, name, record.result["epochs"])
            entry["counts"] = machine.optuna.counts(ostudy)
        stages.append(entry)
    final = records.get("final")
    if final is not None and final.status == "completed":
        result = final.result
        best = {
            "params": {param_name(k): v for k, v in result["params"].items()},
            "val_accuracy": result["val_accuracy"],
            "test_accuracy": result["test_accuracy"],
        }
        diagnosis = result["diagnosis"]
    else:
        top = best_of(machine, study, 1)
        best = {
            "params": top[0]["params"] if top else {},
            "val_accuracy": top[0]["value"] if top else None,
            "test_accuracy": None,
        }
        diagnosis = None
    coarse = records.get("coarse")
    searched = coarse.result.get("ranges", {}) if coarse is not None else {}
    return {
        "study": study.name,
        "state": study.state,
        "message": study.message,
        "stages": stages,
        "best": best,
        "warnings": edge_warnings(study.spec, searched, best["params"]),
        "diagnosis": diagnosis,
        "compute": {
            r.name: {"trial_epochs": r.trial_epochs, "seconds": r.seconds} for r in records.values()
        },
    }
