"""The coarse-to-fine recipe: the stages, the stage machine that sequences them, the launch
check, and the diagnosis.

The stage machine needs no PyTorch; what trains (the stages' work, the local runner) loads it on
first use, so a server that only schedules starts in a moment. What the stages produce is typed
in ``hpsearch.results``; the read models of a study are ``hpsearch.views``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.lazy import lazy_exports
from hpsearch.recipe._diagnosis import diagnose
from hpsearch.recipe._items import check_outcome, finite, first_non_finite
from hpsearch.recipe._launch import MemoryEstimate, MemoryLimit, check_launch, estimate_memory
from hpsearch.recipe._machine import DONE, SINGLE, WAIT, StageMachine, plan
from hpsearch.recipe._models import resolve_init_from, stored_model
from hpsearch.recipe._ranges import Range, narrow
from hpsearch.recipe._sampling import make_sampler
from hpsearch.recipe._trials import optuna_name
from hpsearch.results import Outcome, WorkItem

if TYPE_CHECKING:
    from hpsearch.recipe._execute import execute
    from hpsearch.recipe._final import run_final
    from hpsearch.recipe._range_test import check_lr, run_range_test
    from hpsearch.recipe._sanity import check_initial_loss, check_overfit, run_sanity

_TRAINING = {
    "execute": "hpsearch.recipe._execute",
    "run_final": "hpsearch.recipe._final",
    "check_lr": "hpsearch.recipe._range_test",
    "run_range_test": "hpsearch.recipe._range_test",
    "check_initial_loss": "hpsearch.recipe._sanity",
    "check_overfit": "hpsearch.recipe._sanity",
    "run_sanity": "hpsearch.recipe._sanity",
}


__getattr__ = lazy_exports(__name__, _TRAINING)


__all__ = [
    "DONE",
    "SINGLE",
    "WAIT",
    "MemoryEstimate",
    "MemoryLimit",
    "Outcome",
    "Range",
    "StageMachine",
    "WorkItem",
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
    "make_sampler",
    "narrow",
    "optuna_name",
    "plan",
    "resolve_init_from",
    "run_final",
    "run_range_test",
    "run_sanity",
    "stored_model",
]
