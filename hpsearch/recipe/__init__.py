"""The coarse-to-fine recipe: the stages, the stage machine that sequences them, and the local
driver that runs a whole study on this machine.

The stage machine and the views of a study need no PyTorch; what trains (the stages' work, the
local runner) loads it on first use, so a server that only schedules starts in a moment.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from hpsearch.recipe._diagnosis import diagnose
from hpsearch.recipe._items import Outcome, WorkItem, check_outcome, finite, first_non_finite
from hpsearch.recipe._launch import MemoryEstimate, MemoryLimit, check_launch, estimate_memory
from hpsearch.recipe._machine import DONE, SINGLE, WAIT, StageMachine, plan
from hpsearch.recipe._query import (
    BadQueryError,
    TrialStateName,
    best_trials,
    list_trials,
    summary,
    trial_detail,
    trial_points,
)
from hpsearch.recipe._ranges import Range, narrow
from hpsearch.recipe._sampling import make_sampler
from hpsearch.recipe._trials import optuna_name

if TYPE_CHECKING:
    from hpsearch.recipe._execute import execute
    from hpsearch.recipe._final import run_final
    from hpsearch.recipe._local import open_study, run_search
    from hpsearch.recipe._range_test import check_lr, run_range_test
    from hpsearch.recipe._sanity import check_initial_loss, check_overfit, run_sanity

_TRAINING = {
    "execute": "hpsearch.recipe._execute",
    "run_final": "hpsearch.recipe._final",
    "open_study": "hpsearch.recipe._local",
    "run_search": "hpsearch.recipe._local",
    "check_lr": "hpsearch.recipe._range_test",
    "run_range_test": "hpsearch.recipe._range_test",
    "check_initial_loss": "hpsearch.recipe._sanity",
    "check_overfit": "hpsearch.recipe._sanity",
    "run_sanity": "hpsearch.recipe._sanity",
}


def __getattr__(name: str) -> Any:
    if name not in _TRAINING:
        raise AttributeError(f"module 'hpsearch.recipe' has no attribute {name!r}")
    return getattr(import_module(_TRAINING[name]), name)


__all__ = [
    "DONE",
    "SINGLE",
    "WAIT",
    "BadQueryError",
    "MemoryEstimate",
    "MemoryLimit",
    "Outcome",
    "Range",
    "StageMachine",
    "TrialStateName",
    "WorkItem",
    "best_trials",
    "check_initial_loss",
    "check_launch",
    "check_lr",
    "check_outcome",
    "check_overfit",
    "diagnose",
    "estimate_memory",
    "execute",
    "finite",
    "first_non_finite",
    "list_trials",
    "make_sampler",
    "narrow",
    "open_study",
    "optuna_name",
    "plan",
    "run_final",
    "run_range_test",
    "run_sanity",
    "run_search",
    "summary",
    "trial_detail",
    "trial_points",
]
