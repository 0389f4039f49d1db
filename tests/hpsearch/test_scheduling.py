"""The scheduler on its own (no HTTP): leases, cut-off finishes, orphans, the reaper's grace."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.recipe import Outcome, StageMachine, WorkItem
from hpsearch.recipe._execute import execute
from hpsearch.scheduling import LEASE_EXPIRED, ORPHANED, Lease, Scheduler
from hpsearch.scheduling._local import INTERRUPTED, LOCAL_LEASE_SECONDS, LocalCheckpoints
from hpsearch.storage import Store
from tests.conftest import CPU, tiny_study
from workers.simulate import simulated_outcome


def served(storage_url: str, name: str, lease_seconds: float = 60.0) -> tuple[Scheduler, int]:
    store = Store(storage_url)
    study = store.create_study(tiny_study(name), driver="server")
    return Scheduler(StageMachine(store), lease_seconds), study.id


def first_trial(scheduler: Scheduler, worker: str = "w1") -> Lease:
    """Claim (and finish with made-up results) the single stages until a trial comes up."""
    lease = scheduler.claim(worker)
    while lease is not None and lease.item.kind != "trial":
        scheduler.finish(lease.id, worker, Outcome(**simulated_outcome(lease.item.to_dict())))
        lease = scheduler.claim(worker)
    assert lease is not None
    return lease


def trial_of(storage_url: str, study: str, item: WorkItem) -> optuna.trial.FrozenTrial:
    loaded = optuna.load_study(study_name=f"{study}:{item.stage}", storage=Store(storage_url).url)
    return loaded.trials[item.trial_number or 0]


def connection_dropped(*args: Any) -> None:
    raise ConnectionError("the database went away")


def test_a_finish_cut_off_half_way_is_completed_by_its_resend(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler, _ = served(storage_url, "cutoff")
    lease = first_trial(scheduler)
    outcome = Outcome(state="completed", value=0.9, trial_epochs=2)

    with monkeypatch.context() as patch:  # the lease moves, then the study cannot be written
        patch.setattr(scheduler.machine, "finish", connection_dropped)
        with pytest.raises(ConnectionError, match="went away"):
            scheduler.finish(lease.id, "w1", outcome)
    assert trial_of(storage_url, "cutoff", lease.item).state == TrialState.RUNNING
    assert scheduler.finish(lease.id, "w1", outcome)  # the worker's resend records it
    assert trial_of(storage_url, "cutoff", lease.item).value == 0.9
    assert not scheduler.finish(lease.id, "w1", outcome)  # and only once


def test_the_reaper_records_an_outcome_nobody_resent(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler, _ = served(storage_url, "unsent", lease_seconds=0.3)
    lease = first_trial(scheduler)
    with monkeypatch.context() as patch:
        patch.setattr(scheduler.machine, "finish", connection_dropped)
        with pytest.raises(ConnectionError, match="went away"):
            scheduler.finish(lease.id, "w1", Outcome(state="completed", value=0.8, trial_epochs=2))
    time.sleep(0.4)  # past the lease, and past the reaper's grace after start-up
    scheduler.reap()
    assert trial_of(storage_url, "unsent", lease.item).value == 0.8


def test_a_trial_no_lease_holds_is_failed_and_retried(storage_url: str) -> None:
    scheduler, study_id = served(storage_url, "orphan", lease_seconds=0.3)
    first = first_trial(scheduler)  # the stage is under way (and its lease will run out too)
    lost = scheduler.machine.next_item(study_id)  # a claim cut off before its lease was written
    assert isinstance(lost, WorkItem)
    assert lost.kind == "trial"
    time.sleep(0.4)
    scheduler.reap()
    dead = trial_of(storage_url, "orphan", lost)
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["fail_reason"] == ORPHANED
    retries = [scheduler.claim("w2"), scheduler.claim("w2")]  # retries are handed out first
    assert {str(r.item.params) for r in retries if r} == {str(first.item.params), str(lost.params)}


def test_a_single_stage_no_lease_holds_is_reopened(storage_url: str) -> None:
    scheduler, study_id = served(storage_url, "lonely", lease_seconds=0.3)
    lost = scheduler.machine.next_item(study_id)  # the sanity stage, claimed without a lease
    assert isinstance(lost, WorkItem)
    assert lost.kind == "sanity"
    assert scheduler.claim("w1") is None  # the stage looks taken
    time.sleep(0.4)
    scheduler.reap()
    again = scheduler.claim("w1")
    assert again is not None
    assert again.item.kind == "sanity"


def test_a_restarted_server_reaps_nothing_for_one_lease_period(storage_url: str) -> None:
    scheduler, _ = served(storage_url, "grace", lease_seconds=0.5)
    lease = first_trial(scheduler)
    time.sleep(0.6)  # the lease ran out while "the server was down"
    restarted = Scheduler(StageMachine(Store(storage_url)), lease_seconds=0.5)
    assert restarted.reap() == 0  # the worker may still be training: give it a lease period
    assert restarted.finish(lease.id, "w1", Outcome(state="completed", value=0.7, trial_epochs=2))
    time.sleep(0.6)
    late = first_trial(restarted, "w2")
    time.sleep(0.6)
    assert restarted.reap() == 1
    dead = trial_of(storage_url, "grace", late.item)
    assert dead.user_attrs["fail_reason"] == LEASE_EXPIRED


def test_a_server_leaves_studies_run_locally_alone(storage_url: str) -> None:
    store = Store(storage_url)
    store.create_study(tiny_study("local"))  # hpsearch run drives this one
    scheduler = Scheduler(StageMachine(store))
    assert scheduler.claim("w1") is None


def test_an_outcome_that_does_not_fit_is_refused_and_changes_nothing(storage_url: str) -> None:
    from hpsearch.errors import OutcomeError

    scheduler, _ = served(storage_url, "picky")
    lease = scheduler.claim("w1")
    assert lease is not None
    assert lease.item.kind == "sanity"
    with pytest.raises(OutcomeError, match="state 'completed' is not one of passed, failed"):
        scheduler.finish(lease.id, "w1", Outcome(state="completed"))
    assert scheduler.leases.get(lease.id).state == "active"  # still the worker's to finish


def test_a_stage_retried_twice_by_a_late_reaper_is_handed_out_once(storage_url: str) -> None:
    scheduler, study_id = served(storage_url, "twice", lease_seconds=0.5)
    scheduler.reaper.started -= 1.0  # past the restart grace
    dead = scheduler.claim("w1")
    assert dead is not None
    assert dead.item.kind == "sanity"
    time.sleep(0.7)
    assert scheduler.reap_expired() == 1  # sanity is pending again, and handed out anew
    again = scheduler.claim("w2")
    assert again is not None
    assert again.item.kind == "sanity"
    expired = scheduler.leases.get(dead.id)
    assert expired.outcome is not None
    scheduler.apply(expired, expired.outcome)  # a second reaper applies the same expiry late

    assert scheduler.claim("w3") is None  # the stage stays w2's: not handed out a third time
    stage = scheduler.store.stage(study_id, "sanity")
    assert stage is not None
    assert stage.status == "running"


def test_a_stage_whose_workers_keep_dying_fails_the_study_after_its_retries(
    storage_url: str,
) -> None:
    scheduler, study_id = served(storage_url, "killer", lease_seconds=0.3)
    scheduler.reaper.started -= 1.0  # past the restart grace
    handed = 0
    while (lease := scheduler.claim(f"w{handed}")) is not None:
        assert lease.item.kind == "sanity"  # the item kills every worker that takes it
        handed += 1
        time.sleep(0.4)
        assert scheduler.reap_expired() == 1
    assert handed == 1 + scheduler.machine.max_retries
    study = scheduler.store.get_study(study_id)
    assert study.state == "failed"
    assert "sanity was handed out 3 times and its worker stopped answering" in str(study.message)
    stage = scheduler.store.stage(study_id, "sanity")
    assert stage is not None
    assert stage.status == "failed"


def test_a_stage_handed_back_by_a_shutting_down_worker_is_not_counted_as_a_death(
    storage_url: str,
) -> None:
    scheduler, study_id = served(storage_url, "polite")
    for i in range(4):  # more hand-backs than retries: each is the worker's choice, not a death
        lease = scheduler.claim(f"w{i}")
        assert lease is not None
        assert lease.item.kind == "sanity"
        back = Outcome(state="failed", reason="worker shut down", retryable=True)
        assert scheduler.finish(lease.id, f"w{i}", back)
    assert scheduler.store.get_study(study_id).state == "running"


def test_a_trial_whose_reports_were_lost_gets_its_curve_from_the_finish(storage_url: str) -> None:
    scheduler, _ = served(storage_url, "lossy")
    lease = first_trial(scheduler)
    scheduler.report(lease.id, "w1", 1, {"val_accuracy": 0.5})  # epoch 2's report never came
    history = [{"epoch": e, "val_accuracy": v} for e, v in ((1, 0.5), (2, 0.7), (3, 0.6))]
    outcome = Outcome(state="pruned", history=history, trial_epochs=3)
    assert scheduler.finish(lease.id, "w1", outcome)
    trial = trial_of(storage_url, "lossy", lease.item)
    assert trial.intermediate_values == {1: 0.5, 2: 0.7, 3: 0.6}
    assert trial.value == 0.6  # a pruned trial's value: its last epoch's, as Study.tell has it


class Killed(BaseException):
    """The process dying mid-trial (nothing catches it, as nothing catches SIGKILL)."""


def test_a_local_run_started_again_goes_on_from_its_trials_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'local.db'}", tmp_path / "artifacts")
    # no refine round continues its trials: every checkpoint goes when its trial ends
    recipe = {"coarse": {"epochs": 5}, "refine": {"continue_top": 0}}
    study = store.create_study(tiny_study("local-ckpt", recipe=recipe))
    scheduler = Scheduler(StageMachine(store), LOCAL_LEASE_SECONDS, driver="local")
    lease = first_trial(scheduler, "local-1")
    monkeypatch.setattr(LocalCheckpoints, "every_seconds", 0.0)  # after every epoch

    def dies_at_epoch_3(epoch: int, metrics: dict[str, float]) -> bool:
        scheduler.report(lease.id, "local-1", epoch, metrics)
        if epoch == 3:
            raise Killed
        return False

    saved = LocalCheckpoints(scheduler, lease.id, "local-1")
    with pytest.raises(Killed):
        execute(lease.item, CPU, dies_at_epoch_3, checkpoints=saved)

    # the same command again: the run takes its study over, and the retry goes on from epoch 2
    # (the checkpoint after epoch 3 was never taken: it died reporting it)
    assert scheduler.take_over(study.id, INTERRUPTED) == 1
    retry = scheduler.claim("local-2", study_id=study.id)
    assert retry is not None
    assert retry.item.resume_epoch == 2
    reported: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reported.append(epoch)
        return scheduler.report(retry.id, "local-2", epoch, metrics)

    caplog.set_level(logging.INFO, "hpsearch.work")
    again = LocalCheckpoints(scheduler, retry.id, "local-2")
    outcome = execute(retry.item, CPU, report, checkpoints=again)
    assert outcome.state == "completed"
    assert [e.epoch for e in outcome.history] == reported == [1, 2, 3, 4, 5]
    assert outcome.trial_epochs == 3  # 1-2 were the first run's
    assert "continues at epoch 3 (its checkpoint)" in caplog.text
    scheduler.finish(retry.id, "local-2", outcome)
    assert not list((tmp_path / "artifacts" / "checkpoints").rglob("*.pt"))
