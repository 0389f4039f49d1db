"""A scheduler serving a tiny study, as the scheduler tests drive it (no HTTP)."""

from __future__ import annotations

from typing import Any

import optuna

from hpsearch.protocol import LeaseRead
from hpsearch.results import Outcome, WorkItem
from hpsearch.scheduling import Scheduler, StageMachine
from hpsearch.storage import Store
from tests.conftest import tiny_study
from workers.simulate import simulated_outcome


def served(storage_url: str, name: str, lease_seconds: float = 60.0) -> tuple[Scheduler, int]:
    store = Store(storage_url)
    study = store.create_study(tiny_study(name), driver="server")
    return Scheduler(StageMachine(store), lease_seconds), study.id


def first_trial(scheduler: Scheduler, worker: str = "w1") -> LeaseRead:
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
