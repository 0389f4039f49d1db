"""The coarse-to-fine recipe's rules: the plan of stages, the specs each stage derives, search
ranges and how refine narrows or extends them, the sampler and pruner of a search round, the
budget, the diagnosis of learning curves, and the launch rules.

Pure Python and pydantic: no PyTorch, no SQLAlchemy, no store. The stage machine that applies
these rules over the store is ``hpsearch.scheduling``; the PyTorch work of each stage is
``hpsearch.stages``; what the stages produce is typed in ``hpsearch.results``.
"""

from __future__ import annotations

from hpsearch.recipe._common import derived_seed, without_regularization
from hpsearch.recipe._derive import (
    Params,
    field_value,
    final_spec,
    range_test_spec,
    round_trials,
    spec_config,
    stage_epochs,
    targeted_plan,
    trial_spec,
    up_front_spec,
)
from hpsearch.recipe._diagnosis import diagnose, with_weak_classes
from hpsearch.recipe._edges import edge_warnings, extend_edges, extension_notes, widest
from hpsearch.recipe._items import (
    check_outcome,
    finite,
    first_non_finite,
    objective_key,
    objective_value,
)
from hpsearch.recipe._launch import (
    MemoryEstimate,
    MemoryLimit,
    derived_problems,
    format_gib,
    memory_corners,
    memory_estimate,
)
from hpsearch.recipe._ranges import narrow, top_count
from hpsearch.recipe._sampling import make_pruner, make_sampler

__all__ = [
    "MemoryEstimate",
    "MemoryLimit",
    "Params",
    "check_outcome",
    "derived_problems",
    "derived_seed",
    "diagnose",
    "edge_warnings",
    "extend_edges",
    "extension_notes",
    "field_value",
    "final_spec",
    "finite",
    "first_non_finite",
    "format_gib",
    "make_pruner",
    "make_sampler",
    "memory_corners",
    "memory_estimate",
    "narrow",
    "objective_key",
    "objective_value",
    "range_test_spec",
    "round_trials",
    "spec_config",
    "stage_epochs",
    "targeted_plan",
    "top_count",
    "trial_spec",
    "up_front_spec",
    "widest",
    "with_weak_classes",
    "without_regularization",
]
