"""The reaper: orphans, the grace after a restart, retries of stages and trials, hand-backs."""

from __future__ import annotations

import time

import pytest
from optuna.trial import TrialState

from hpsearch.results import Outcome, WorkItem
from hpsearch.scheduling import LEASE_EXPIRED, ORPHANED, Scheduler, StageMachine
from hpsearch.storage import Store
from tests.conftest import tiny_study
from tests.hpsearch.scheduling.serving import connection_dropped, first_trial, served, trial_of


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
