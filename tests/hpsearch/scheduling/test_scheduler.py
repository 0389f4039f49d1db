"""The scheduler on its own (no HTTP): cut-off finishes, refused outcomes, lost reports."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from hpsearch.results import Outcome
from tests.hpsearch.scheduling.serving import connection_dropped, first_trial, served, trial_of


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


def test_an_outcome_that_does_not_fit_is_refused_and_changes_nothing(storage_url: str) -> None:
    from hpsearch.errors import OutcomeError

    scheduler, _ = served(storage_url, "picky")
    lease = scheduler.claim("w1")
    assert lease is not None
    assert lease.item.kind == "sanity"
    with pytest.raises(OutcomeError, match="state 'completed' is not one of passed, failed"):
        scheduler.finish(lease.id, "w1", Outcome(state="completed"))
    assert scheduler.leases.get(lease.id).state == "active"  # still the worker's to finish


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
