"""Read models of studies for the API, the dashboard and the CLI: a study's summary, pages of
its trials, one trial, every trial as a point. They read the store (our tables and Optuna's) and
never change it; the recipe decides, these only show."""

from typing import Literal

from hpsearch.protocol import BestView, Compute, StageView, StudySummary
from hpsearch.views._pages import BadQueryError, best_of, trial_detail, trial_page, trial_points
from hpsearch.views._summary import summary

TrialStateName = Literal["complete", "pruned", "failed", "running", "waiting"]

__all__ = [
    "BadQueryError",
    "BestView",
    "Compute",
    "StageView",
    "StudySummary",
    "TrialStateName",
    "best_of",
    "summary",
    "trial_detail",
    "trial_page",
    "trial_points",
]
