"""Storage: our tables (studies, stage results) beside Optuna's, over one SQLAlchemy URL."""

from hpsearch.storage._artifacts import Artifacts, artifact_dir
from hpsearch.storage._engine import create_engine, normalize_url, upsert
from hpsearch.storage._optuna_pages import SORT_KEYS, TrialColumns, TrialPages, TrialRow
from hpsearch.storage._optuna_queue import STATE_NAMES, Queued, TrialQueue
from hpsearch.storage._optuna_trials import TrialRows, frozen_trial
from hpsearch.storage._store import (
    FINISHED_STAGE,
    StageRecord,
    Store,
    StudyRecord,
    as_utc,
    utcnow,
)
from hpsearch.storage._tables import leases, studies, workers
from hpsearch.storage.optuna_schema import study_id as optuna_study_id
from hpsearch.storage.optuna_schema import trial_id as optuna_trial_id

__all__ = [
    "FINISHED_STAGE",
    "SORT_KEYS",
    "STATE_NAMES",
    "Artifacts",
    "Queued",
    "StageRecord",
    "Store",
    "StudyRecord",
    "TrialColumns",
    "TrialPages",
    "TrialQueue",
    "TrialRow",
    "TrialRows",
    "artifact_dir",
    "as_utc",
    "create_engine",
    "frozen_trial",
    "leases",
    "normalize_url",
    "optuna_study_id",
    "optuna_trial_id",
    "studies",
    "upsert",
    "utcnow",
    "workers",
]
