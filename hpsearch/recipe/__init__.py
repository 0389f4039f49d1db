"""The coarse-to-fine recipe: the stages, the stage machine that sequences them, and the local
driver that runs a whole study on this machine."""

from hpsearch.recipe._diagnosis import diagnose
from hpsearch.recipe._execute import execute
from hpsearch.recipe._final import run_final
from hpsearch.recipe._items import Outcome, WorkItem
from hpsearch.recipe._local import open_study, run_search
from hpsearch.recipe._machine import DONE, WAIT, StageMachine, optuna_name, plan, summary
from hpsearch.recipe._query import TrialSort, TrialStateName, best_trials, list_trials
from hpsearch.recipe._range_test import check_lr, run_range_test
from hpsearch.recipe._ranges import Range, narrow
from hpsearch.recipe._sanity import check_initial_loss, check_overfit, run_sanity

__all__ = [
    "DONE",
    "WAIT",
    "Outcome",
    "Range",
    "StageMachine",
    "TrialSort",
    "TrialStateName",
    "WorkItem",
    "best_trials",
    "check_initial_loss",
    "check_lr",
    "check_overfit",
    "diagnose",
    "execute",
    "list_trials",
    "narrow",
    "open_study",
    "optuna_name",
    "plan",
    "run_final",
    "run_range_test",
    "run_sanity",
    "run_search",
    "summary",
]
