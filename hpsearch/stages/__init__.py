"""The PyTorch work of each stage of the recipe: the sanity checks, the learning-rate range
sweep, a search trial, the final training; the launch check that builds what a study will run;
and ``execute``, which does any work item and turns whatever it raises into its outcome.

Names load on first use, so that importing the package costs nothing until a stage runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from hpsearch.stages._execute import ItemExecutor, execute
    from hpsearch.stages._final import run_final
    from hpsearch.stages._launch import (
        check_launch,
        dataset_problems,
        estimate_memory,
        init_problems,
        model_problems,
    )
    from hpsearch.stages._lr_sweep import check_lr, run_range_test
    from hpsearch.stages._sanity import check_initial_loss, check_overfit, run_sanity

_EXPORTS = {
    "ItemExecutor": "hpsearch.stages._execute",
    "execute": "hpsearch.stages._execute",
    "run_final": "hpsearch.stages._final",
    "check_launch": "hpsearch.stages._launch",
    "dataset_problems": "hpsearch.stages._launch",
    "estimate_memory": "hpsearch.stages._launch",
    "init_problems": "hpsearch.stages._launch",
    "model_problems": "hpsearch.stages._launch",
    "check_lr": "hpsearch.stages._lr_sweep",
    "run_range_test": "hpsearch.stages._lr_sweep",
    "check_initial_loss": "hpsearch.stages._sanity",
    "check_overfit": "hpsearch.stages._sanity",
    "run_sanity": "hpsearch.stages._sanity",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ItemExecutor",
    "check_initial_loss",
    "check_launch",
    "check_lr",
    "check_overfit",
    "dataset_problems",
    "estimate_memory",
    "execute",
    "init_problems",
    "model_problems",
    "run_final",
    "run_range_test",
    "run_sanity",
]
