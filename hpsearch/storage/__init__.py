"""Storage: our tables (studies, stage results) beside Optuna's, over one SQLAlchemy URL."""

from hpsearch.storage._artifacts import Artifacts, artifact_dir
from hpsearch.storage._engine import create_engine, normalize_url, upsert
from hpsearch.storage._store import (
    FINISHED_STAGE,
    StageRecord,
    Store,
    StudyRecord,
    as_utc,
    utcnow,
)

__all__ = [
    "FINISHED_STAGE",
    "Artifacts",
    "StageRecord",
    "Store",
    "StudyRecord",
    "artifact_dir",
    "as_utc",
    "create_engine",
    "normalize_url",
    "upsert",
    "utcnow",
]
