"""A study's summary: what `hpsearch status`, the API and the study page show of it."""

from __future__ import annotations

from hpsearch.results import FinalResult
from hpsearch.scheduling import StageMachine, plan
from hpsearch.spec import param_name
from hpsearch.storage import StudyRecord
from hpsearch.views import summary
from tests.conftest import tiny_study


def test_a_new_study_lists_every_planned_stage_as_pending(machine: StageMachine) -> None:
    study = machine.store.create_study(tiny_study("new"), driver="server")
    seen = summary(machine, study.id)
    assert seen.state == "running"
    assert [s.name for s in seen.stages] == plan(study.spec)
    assert {s.status for s in seen.stages} == {"pending"}
    assert seen.best.test_accuracy is None


def test_a_finished_study_shows_each_stage_its_best_and_its_compute(
    machine: StageMachine, finished: StudyRecord
) -> None:
    seen = summary(machine, finished.id)
    assert seen.state == "completed"
    names = [s.name for s in seen.stages]
    assert names[: len(plan(finished.spec))] == plan(finished.spec)  # in the recipe's order
    statuses = {s.name: s.status for s in seen.stages}
    assert statuses["sanity"] == statuses["range_test"] == "passed"
    assert statuses["coarse"] == statuses["final"] == "completed"
    final = next(s.result for s in seen.stages if s.name == "final")
    assert isinstance(final, FinalResult)
    # the best is the final training's configuration (by Optuna's names), with its test accuracy
    assert seen.best.params == {param_name(path): v for path, v in final.params.items()}
    assert seen.best.test_accuracy == final.test_accuracy
    assert seen.diagnosis == final.diagnosis
    assert seen.compute["coarse"].trial_epochs > 0
