"""Scheduling: the stage machine that applies the recipe over the store (its search rounds, their
first trials, how a trial ends, the final stage's model files), claims under leases, reports,
finishes, the reaper, the registry of workers, and the local driver that runs a study on this
machine through the same scheduler."""

from hpsearch.scheduling._final_models import keep_final_models, resolve_init_from, stored_model
from hpsearch.scheduling._leases import LeaseBook, LeaseHeldError, LeaseNotFoundError, LeaseRow
from hpsearch.scheduling._machine import DONE, SINGLE, WAIT, StageMachine, plan
from hpsearch.scheduling._reaper import LEASE_EXPIRED, ORPHANED
from hpsearch.scheduling._rounds import is_search_stage, search_round
from hpsearch.scheduling._scheduler import Census, Scheduler, database_unavailable
from hpsearch.scheduling._stage_trials import StageTrials, distributions, optuna_name
from hpsearch.scheduling._workers import WorkerBook

__all__ = [
    "DONE",
    "LEASE_EXPIRED",
    "ORPHANED",
    "SINGLE",
    "WAIT",
    "Census",
    "LeaseBook",
    "LeaseHeldError",
    "LeaseNotFoundError",
    "LeaseRow",
    "Scheduler",
    "StageMachine",
    "StageTrials",
    "WorkerBook",
    "database_unavailable",
    "distributions",
    "is_search_stage",
    "keep_final_models",
    "optuna_name",
    "plan",
    "resolve_init_from",
    "search_round",
    "stored_model",
]
