"""A study driven to its end by made-up outcomes (no training), for the read models to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.results import Outcome
from hpsearch.scheduling import Scheduler, StageMachine
from hpsearch.storage import Store, StudyRecord
from tests.conftest import tiny_study
from workers.simulate import simulated_outcome


def run_simulated(machine: StageMachine, study: StudyRecord, limit: int = 500) -> int:
    """Claim and finish every item of ``study`` with made-up outcomes; the items done."""
    scheduler = Scheduler(machine, 60.0)
    for done in range(limit):
        lease = scheduler.claim("w1", study_id=study.id)
        if lease is None:
            return done
        scheduler.finish(lease.id, "w1", Outcome(**simulated_outcome(lease.item)))
    raise AssertionError(f"study {study.name!r} still had work after {limit} items")


@pytest.fixture
def machine(tmp_path: Path) -> StageMachine:
    return StageMachine(Store(f"sqlite:///{tmp_path / 'views.db'}", tmp_path / "artifacts"))


@pytest.fixture
def finished(machine: StageMachine) -> StudyRecord:
    """A tiny study (10 coarse trials, two refine rounds of 4) run to its end."""
    study = machine.store.create_study(tiny_study("viewed"), driver="server")
    assert run_simulated(machine, study) > 10
    return machine.store.get_study(study.id)
