from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.errors import HPSearchError, OutcomeError
from hpsearch.local import INTERRUPTED, LOCAL_LEASE_SECONDS, run_search
from hpsearch.recipe import diagnose
from hpsearch.recipe._derive import round_trials
from hpsearch.recipe._edges import edge_side
from hpsearch.results import EpochRecord, Outcome, WorkItem
from hpsearch.scheduling import DONE, WAIT, Scheduler, StageMachine
from hpsearch.scheduling._machine import plan
from hpsearch.spec import SearchRange, spec_with
from hpsearch.storage import Store
from hpsearch.views import StudySummary
from tests.conftest import tiny_study
from workers.simulate import simulated_outcome


def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """``run_search``'s summary as JSON data, as ``hpsearch run --json`` prints it."""
    return run_search(*args, **kwargs).json_data()


def stages_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each stage by name: its status, counts and compute with its result's fields."""
    return {s["name"]: {**(s["result"] or {}), **s} for s in result["stages"]}


def test_a_study_runs_every_stage_and_plain_optuna_reads_it(storage_url: str) -> None:
    spec = tiny_study()
    result = run(spec, storage_url)
    assert result["state"] == "completed"
    statuses = {s["name"]: s["status"] for s in result["stages"]}
    # a short final run is often "still improving": the targeted stage then trains longer
    assert statuses.pop("targeted", "completed") in ("completed", "skipped")
    assert statuses == {
        "sanity": "passed",
        "range_test": "passed",
        "coarse": "completed",
        "refine-1": "completed",
        "refine-2": "completed",
        "final": "completed",
    }
    assert result["best"]["test_accuracy"] > 0.8
    assert set(result["best"]["params"]) == {"lr", "weight_decay"}
    final, targeted = stages_of(result)["final"], stages_of(result).get("targeted")
    verdict = result["diagnosis"]["verdict"]
    assert result["diagnosis"] == final["diagnosis"]
    if targeted is not None and targeted["improved"]:  # the kept model is the targeted one
        assert targeted["reason"] == f"the diagnosis was {verdict!r}"
        assert final["history"] == targeted["chosen"]["history"]
    else:  # the verdict is the one the final training's curves call for
        fin = spec.recipe.final
        expected = diagnose(
            final["history"],
            overfit_gap=fin.overfit_gap,
            underfit_train_accuracy=fin.underfit_train_accuracy,
            improving_gain=fin.improving_gain,
        )
        assert result["diagnosis"] == expected
        called_for = verdict in ("overfitting", "still improving")
        assert (targeted is not None) == called_for  # a targeted stage exactly when called for

    names = {
        s.study_name
        for s in optuna.get_all_study_summaries(
            storage_url.replace("postgresql://", "postgresql+psycopg://")
        )
    }
    assert {"tiny:coarse", "tiny:refine-1", "tiny:refine-2"} <= names
    states = []
    for stage in ("coarse", "refine-1", "refine-2"):
        study = optuna.load_study(study_name=f"tiny:{stage}", storage=Store(storage_url).url)
        for trial in study.trials:
            states.append(trial.state)
            assert set(trial.params) == {"lr", "weight_decay"}
            assert trial.user_attrs["stage"] == stage
            if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
                epochs = sorted(trial.intermediate_values)
                assert epochs == list(range(1, len(epochs) + 1))
                assert len(trial.user_attrs["history"]) == len(epochs)
    assert TrialState.PRUNED in states
    assert TrialState.RUNNING not in states
    assert states.count(TrialState.COMPLETE) >= 3


def test_refine_ranges_nest_and_keep_the_best_trial(storage_url: str) -> None:
    result = run(tiny_study(), storage_url)
    stages = stages_of(result)
    previous = stages["coarse"]["ranges"]
    for name in ("refine-1", "refine-2"):
        stage = stages[name]
        assert stage["previous_ranges"] == previous
        best = stage["best_so_far"]["params"]
        for dim, r in stage["ranges"].items():
            # inside the round before's range, but past an edge the best so far lay on
            side = edge_side(best[dim], SearchRange.model_validate(previous[dim]))
            assert r["low"] < r["high"]
            assert (
                (r["low"] < previous[dim]["low"])
                if side == "lower"
                else (previous[dim]["low"] <= r["low"])
            )
            assert (
                (r["high"] > previous[dim]["high"])
                if side == "upper"
                else (r["high"] <= previous[dim]["high"])
            )
            assert SearchRange.model_validate(r).contains(best[dim])
        previous = stage["ranges"]


def test_the_same_spec_and_seed_sample_the_same_params(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/same.db"
    runs = [run(tiny_study(name), url) for name in ("first", "second")]
    params = []
    for name in ("first", "second"):
        study = optuna.load_study(study_name=f"{name}:coarse", storage=url)
        params.append([t.params for t in sorted(study.trials, key=lambda t: t.number)])
    assert params[0] == params[1]
    assert runs[0]["best"] == runs[1]["best"]
    other = run(tiny_study("third", seed=7), url)
    third = optuna.load_study(study_name="third:coarse", storage=url).trials
    assert [t.params for t in third][:3] != params[0][:3]
    assert other["state"] == "completed"


def test_a_failed_sanity_check_stops_the_study(storage_url: str) -> None:
    result = run(tiny_study("broken", train={"lr": 1000.0}), storage_url)
    assert result["state"] == "failed"
    assert "diverged" in result["message"]
    statuses = {s["name"]: s["status"] for s in result["stages"]}
    assert statuses["sanity"] == "failed"
    assert statuses["coarse"] == "pending"


def test_a_trial_left_running_is_failed_and_its_params_retried(storage_url: str) -> None:
    store = Store(storage_url)
    study = store.create_study(tiny_study("crashy"))
    scheduler = Scheduler(StageMachine(store), LOCAL_LEASE_SECONDS, driver="local")
    lease = scheduler.claim("local-1")
    while lease is not None and lease.item.kind != "trial":  # do the single stages quickly
        scheduler.finish(lease.id, "local-1", _fake_outcome(lease.item, scheduler.machine))
        lease = scheduler.claim("local-1")
    assert lease is not None
    item = lease.item
    assert item.trial_number == 0  # the seeded first trial: nothing to compare it with yet
    assert scheduler.report(lease.id, "local-1", 1, {"val_accuracy": 0.5}) is False
    # the process running it dies; a new run starts up on the same storage and takes over
    fresh = Scheduler(StageMachine(Store(storage_url)), LOCAL_LEASE_SECONDS, driver="local")
    assert fresh.take_over(study.id, INTERRUPTED) == 1
    trials = optuna.load_study(study_name="crashy:coarse", storage=store.url).trials
    dead = trials[item.trial_number]
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["fail_reason"] == INTERRUPTED
    assert dead.intermediate_values == {1: 0.5}
    retry = fresh.claim("local-2")
    assert retry is not None
    assert retry.item.params == item.params
    assert retry.item.trial_number not in (None, item.trial_number)
    # finishing twice changes nothing the second time
    done = Outcome(state="completed", value=0.7, trial_epochs=2)
    assert fresh.finish(retry.id, "local-2", done)
    assert not fresh.finish(retry.id, "local-2", done.model_copy(update={"value": 0.1}))
    again = optuna.load_study(study_name="crashy:coarse", storage=store.url).trials
    assert again[retry.item.trial_number or 0].value == 0.7
    assert again[retry.item.trial_number or 0].user_attrs["retry_of"] == item.trial_number


def test_a_stopped_study_prunes_at_the_next_report(storage_url: str) -> None:
    store = Store(storage_url)
    study = store.create_study(tiny_study("stoppable"))
    machine = StageMachine(store)
    item = machine.next_item(study.id)
    while isinstance(item, WorkItem) and item.kind != "trial":
        machine.finish(item, _fake_outcome(item, machine))
        item = machine.next_item(study.id)
    assert isinstance(item, WorkItem)
    store.set_study_state(study.id, "stopped")
    assert machine.report(item, 1, {"val_accuracy": 0.9}) is True
    assert machine.next_item(study.id) == DONE


def test_reports_are_judged_on_the_objective_and_refused_without_it(storage_url: str) -> None:
    store = Store(storage_url)
    store.create_study(tiny_study("by-f1", search={"objective": "macro_f1"}))
    scheduler = Scheduler(StageMachine(store), LOCAL_LEASE_SECONDS, driver="local")
    lease = scheduler.claim("w1")
    while lease is not None and lease.item.kind != "trial":
        scheduler.finish(lease.id, "w1", _fake_outcome(lease.item, scheduler.machine))
        lease = scheduler.claim("w1")
    assert lease is not None
    with pytest.raises(OutcomeError, match="lack val_macro_f1"):
        scheduler.report(lease.id, "w1", 1, {"val_accuracy": 0.9})
    assert scheduler.report(lease.id, "w1", 1, {"val_accuracy": 0.9, "val_macro_f1": 0.5}) is False
    history = [
        EpochRecord(epoch=1, val_accuracy=0.9, val_macro_f1=0.5),
        EpochRecord(epoch=2, val_accuracy=0.95, val_macro_f1=0.75),  # its report was lost
    ]
    done = Outcome(state="completed", value=0.75, history=history, trial_epochs=2)
    assert scheduler.finish(lease.id, "w1", done)
    number = lease.item.trial_number or 0
    trial = optuna.load_study(study_name="by-f1:coarse", storage=store.url).trials[number]
    assert trial.intermediate_values == {1: 0.5, 2: 0.75}  # macro-F1, not accuracy
    assert trial.value == 0.75


def test_several_local_processes_share_the_storage(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/pool.db"
    result = run(tiny_study("pooled"), url, workers=2)
    assert result["state"] == "completed"
    trials = optuna.load_study(study_name="pooled:coarse", storage=url).trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 10
    assert all(t.state != TrialState.RUNNING for t in trials)


def _fake_outcome(item: WorkItem, machine: StageMachine) -> Outcome:
    """A passing result for a single stage without training (the simulated worker's)."""
    return Outcome.from_dict(simulated_outcome(item.to_dict()))


def test_plan_follows_the_recipe() -> None:
    assert plan(tiny_study()) == ["sanity", "range_test", "coarse", "refine-1", "refine-2", "final"]
    assert plan(tiny_study(recipe={"refine": {"rounds": 0}}))[-2:] == ["coarse", "final"]


def test_first_trials_try_the_suggestion_then_the_best_so_far_longer(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/seeded.db"
    result = run(tiny_study("seeded"), url)
    stages = stages_of(result)
    coarse = optuna.load_study(study_name="seeded:coarse", storage=url).trials
    assert coarse[0].params["lr"] == stages["range_test"]["suggested_lr"]
    assert coarse[0].user_attrs["seeded"] is True
    refine = optuna.load_study(study_name="seeded:refine-1", storage=url).trials
    assert refine[0].params == stages["refine-1"]["best_so_far"]["params"]
    assert len(refine[0].intermediate_values) > len(coarse[0].intermediate_values) or (
        refine[0].state == TrialState.PRUNED
    )


def test_an_epoch_budget_stops_the_search_early_but_not_the_final(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/budget.db"
    # 12 trial-epochs: about 4 for the budget-scaled checks and range test, 4 coarse trials
    result = run(tiny_study("thrifty", budget={"trial_epochs": 12, "scale_trials": False}), url)
    assert result["state"] == "completed"
    stages = stages_of(result)
    assert stages["coarse"]["budget_exhausted"]
    counts = stages["coarse"]["counts"]
    assert counts["complete"] + counts["pruned"] < 10
    assert stages["refine-1"]["status"] == "skipped"
    assert stages["refine-1"]["reason"] == "the study's budget is spent"
    assert stages["final"]["status"] == "completed"
    before_final = sum(c["trial_epochs"] for n, c in result["compute"].items() if n != "final")
    assert before_final <= 12 + 2  # only the last coarse trial (2 epochs) may overrun


def test_a_budget_sizes_each_round_from_what_is_left() -> None:
    """The spec's counts share the plan (tiny: coarse 10 x 2 epochs, 2 refine rounds of 4 x 4:
    coarse 20/52 of it); the budget sets the scale, a trial reckoned at 0.6 of its epochs."""
    spec = tiny_study("sized", budget={"trial_epochs": 100})
    assert round_trials(spec, "coarse", spent=9.0) == round(91 * 20 / 52 / (2 * 0.6))  # 29
    assert round_trials(spec, "refine-1", spent=40.0) == round(60 / 2 / (4 * 0.6))  # 12
    assert round_trials(spec, "refine-2", spent=70.0) == round(30 / (4 * 0.6))  # all that's left
    assert round_trials(spec, "refine-2", spent=100.0) == 3  # spent: at least 3 all the same
    bigger = spec_with(spec, {"budget.trial_epochs": 1000})
    assert round_trials(bigger, "coarse", spent=9.0) > 9 * round_trials(spec, "coarse", spent=9.0)
    for unscaled in (tiny_study("own"), spec_with(spec, {"budget.scale_trials": False})):
        assert round_trials(unscaled, "coarse", spent=9.0) == 10  # the spec's own counts
        assert round_trials(unscaled, "refine-1", spent=40.0) == 4


def test_a_budgeted_study_runs_the_rounds_its_budget_sized(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/sized.db"
    spec = tiny_study("sized", budget={"trial_epochs": 30})
    result = run(spec, url)
    assert result["state"] == "completed"
    stages = stages_of(result)
    spent_before = sum(result["compute"][name]["trial_epochs"] for name in ("sanity", "range_test"))
    assert stages["coarse"]["trials"] == round_trials(spec, "coarse", spent_before)
    assert stages["coarse"]["trials"] != spec.recipe.coarse.trials
    search = sum(c["trial_epochs"] for n, c in result["compute"].items() if n != "final")
    assert search <= 30 + 4  # the budget, and at most the last refine trial past it
    assert search > 30 * 0.6  # and the rounds were sized to use it


def test_a_spent_seconds_budget_goes_straight_to_the_final(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/seconds.db"
    result = run(tiny_study("hasty", budget={"seconds": 1e-6}), url)
    statuses = {s["name"]: s["status"] for s in result["stages"]}
    assert statuses["coarse"] == "skipped"
    assert statuses["refine-1"] == "skipped"
    assert statuses["final"] == "completed"
    assert result["best"]["params"] == {"lr": 0.1, "weight_decay": 5e-4}  # the spec's own


def test_a_dead_worker_process_stops_the_run_cleanly_and_it_resumes(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/dead.db"
    spec = tiny_study("dead")

    def kill_a_worker(summary: StudySummary, item: object, outcome: object) -> None:
        coarse = next(s for s in summary.stages if s.name == "coarse")
        counts = coarse.counts
        if counts is not None and counts.complete + counts.pruned >= 2:
            for child in multiprocessing.active_children():
                os.kill(child.pid or 0, signal.SIGKILL)

    with pytest.raises(HPSearchError, match="worker process died"):
        run_search(spec, url, workers=2, on_progress=kill_a_worker)
    result = run(spec, url)
    assert result["state"] == "completed"
    trials = optuna.load_study(study_name="dead:coarse", storage=url).trials
    assert all(t.state != TrialState.RUNNING for t in trials)
    assert any(t.user_attrs.get("retry_of") is not None for t in trials)


def test_a_claim_that_loses_the_queued_trial_to_another_waits(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(storage_url)
    study = store.create_study(tiny_study("raced"))
    machine = StageMachine(store)
    for _ in ("sanity", "range_test"):
        item = machine.next_item(study.id)
        assert isinstance(item, WorkItem)
        machine.finish(item, _fake_outcome(item, machine))
    pop = machine.optuna.pop

    def taken_by_another_claim(ostudy: optuna.Study) -> None:
        pop(ostudy)  # the fast path of another claim starts it first

    monkeypatch.setattr(machine.optuna, "pop", taken_by_another_claim)
    # the coarse stage starts with its first trial queued; another claim takes it
    assert machine.next_item(study.id) == WAIT  # counted it as queued, found it gone
    coarse = store.stage(study.id, "coarse")
    assert coarse is not None
    assert coarse.status == "running"  # not mistaken for finished


def test_a_big_stage_is_queued_a_bounded_batch_at_a_time(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpsearch.scheduling import _rounds

    monkeypatch.setattr(_rounds, "QUEUE_BATCH", 8)  # 256 in use; the same logic, fewer claims
    store = Store(storage_url)
    study = store.create_study(tiny_study("big", recipe={"coarse": {"trials": 20}}))
    machine = StageMachine(store)
    item = machine.next_item(study.id)
    while isinstance(item, WorkItem) and item.kind != "trial":
        machine.finish(item, _fake_outcome(item, machine))
        item = machine.next_item(study.id)
    ostudy = machine.stage_study(store.get_study(study.id), "coarse", 2)
    counts = machine.optuna.counts(ostudy)
    assert counts["running"] == 1
    assert counts["waiting"] <= 8  # not the stage's 20: a claim's work is bounded
    assert isinstance(item, WorkItem)
    numbers = {item.trial_number}
    for _ in range(19):  # every trial is still handed out, each once
        next_one = machine.next_item(study.id)
        assert isinstance(next_one, WorkItem)
        numbers.add(next_one.trial_number)
    assert numbers == set(range(20))
    assert machine.next_item(study.id) == WAIT
