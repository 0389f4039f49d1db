"""A study's summary for people and scripts: its stages with their typed results, the best
configuration, the diagnosis, the compute spent, and what to look out for.

Read in a few queries (counts and the best trial in SQL, never every trial), so a study of ten
thousand trials is summarized as fast as a small one.
"""

from __future__ import annotations

from pydantic import BaseModel

from hpsearch.protocol import BestView, Compute, StageView, StudySummary
from hpsearch.recipe import edge_warnings, extension_notes, widest
from hpsearch.results import (
    FinalResult,
    RangeTestResult,
    SanityResult,
    SearchRound,
    StageNote,
    TargetedResult,
    TrialCounts,
    stored_result,
)
from hpsearch.scheduling import StageMachine, is_search_stage, plan, search_round
from hpsearch.spec import param_name
from hpsearch.storage import StageRecord, StudyRecord
from hpsearch.views._pages import best_of

_RESULTS: dict[str, type[BaseModel]] = {
    "sanity": SanityResult,
    "range_test": RangeTestResult,
    "final": FinalResult,
    "targeted": TargetedResult,
}


def summary(machine: StageMachine, study_id: int) -> StudySummary:
    """What a person or a script wants to know about a study: stages, best, diagnosis, compute."""
    store = machine.store
    study = store.get_study(study_id)
    records = {r.name: r for r in store.stages(study_id)}
    stages = []
    for name in [*plan(study.spec), "targeted"]:
        record = records.get(name)
        if record is not None:
            stages.append(_stage_view(machine, study, record))
        elif name != "targeted":
            stages.append(StageView(name=name, status="pending"))
    final = next((s.result for s in stages if s.name == "final"), None)
    best = _best(machine, study, final)
    diagnosis = final.diagnosis if isinstance(final, FinalResult) else None
    rounds = {
        r.name: round_
        for r in sorted(records.values(), key=lambda r: r.position)
        if is_search_stage(r.name) and (round_ := search_round(r)) is not None
    }
    notes = extension_notes(rounds)
    return StudySummary(
        study=study.name,
        state=study.state,
        message=study.message,
        stages=stages,
        best=best,
        warnings=notes + edge_warnings(study.spec, widest(rounds.values()), best.params),
        diagnosis=diagnosis,
        compute={
            r.name: Compute(trial_epochs=r.trial_epochs, seconds=r.seconds)
            for r in records.values()
        },
    )


def _best(machine: StageMachine, study: StudyRecord, final: object) -> BestView:
    """The final training's configuration once it has a result, else the best trial so far."""
    objective = study.spec.search.objective
    if isinstance(final, FinalResult):
        value = final.val_value
        if value is None and objective == "accuracy":  # stored before the objective was kept
            value = final.val_accuracy
        return BestView(
            params={param_name(k): v for k, v in final.params.items()},
            val_accuracy=final.val_accuracy,
            test_accuracy=final.test_accuracy,
            objective=objective,
            value=value,
        )
    top = best_of(machine, study, 1)
    value = top[0].value if top else None
    return BestView.model_validate(
        {
            "params": top[0].params if top else {},
            "val_accuracy": value if objective == "accuracy" else None,
            "test_accuracy": None,
            "objective": objective,
            "value": value,
        }
    )


def _stage_view(machine: StageMachine, study: StudyRecord, record: StageRecord) -> StageView:
    view = StageView(
        name=record.name,
        status=record.status,
        started_at=record.started_at.isoformat() if record.started_at else None,
        finished_at=record.finished_at.isoformat() if record.finished_at else None,
        trial_epochs=record.trial_epochs,
        seconds=record.seconds,
    )
    if not record.result:
        return view  # running, and no result yet
    if is_search_stage(record.name):
        round_ = search_round(record)
        if round_ is None:
            return view.model_copy(update={"result": stored_result(StageNote, record.result)})
        ostudy = machine.stage_study(study, record.name, round_.epochs)
        counts = TrialCounts(**machine.optuna.counts(ostudy))
        return view.model_copy(update={"counts": counts, "result": round_})
    model = _RESULTS.get(record.name)
    result: SearchRound | BaseModel = (
        stored_result(model, record.result) if model else stored_result(StageNote, record.result)
    )
    return view.model_copy(update={"result": result})
