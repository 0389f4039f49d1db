"""Is the best configuration on the edge of what was searched?

A best learning rate of 0.997 in a range that ends at 1.0 says little about the best learning
rate: better ones may lie beyond the edge. A careful person notices and widens the range; the
study's summary says so (and names the field to widen).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpsearch.recipe._items import param_path
from hpsearch.recipe._ranges import Range
from hpsearch.spec import StudySpec

EDGE = 0.05  # the outer share of a range (of its decades, on a log scale) that counts as its edge


def position(value: float, searched: Range) -> float:
    """Where ``value`` lies in ``searched``: 0 at its low end, 1 at its high end."""
    if searched.log and searched.low > 0 and value > 0:
        low, high, at = math.log(searched.low), math.log(searched.high), math.log(value)
    else:
        low, high, at = searched.low, searched.high, value
    return (at - low) / (high - low) if high > low else 0.5


def edge_warnings(
    spec: StudySpec, searched: Mapping[str, Mapping[str, Any]], best: Mapping[str, float]
) -> list[str]:
    """A sentence for each parameter of ``best`` (Optuna names) that lies at the edge of its
    ``searched`` range (the coarse stage's ranges: the widest the search looked at)."""
    warnings = []
    for name, value in best.items():
        if name not in searched:
            continue
        searched_range = Range.from_dict(searched[name])
        at = position(float(value), searched_range)
        if EDGE < at < 1 - EDGE:
            continue
        side = "upper" if at >= 1 - EDGE else "lower"
        warnings.append(
            f"the best {name} ({value:.4g}) lies at the {side} edge of the searched range "
            f"[{searched_range.low:.4g}, {searched_range.high:.4g}]: better values may lie "
            f"beyond it; {_how_to_widen(spec, name, side, searched_range)} and search again"
        )
    return warnings


def _how_to_widen(spec: StudySpec, name: str, side: str, searched: Range) -> str:
    if name != "lr":
        path = param_path(name)
        field = f"search.extra.{path}" if path in spec.search.extra else f"search.{name}"
        return f"widen {field}.{'high' if side == 'upper' else 'low'}"
    outer = spec.search.lr
    bound = outer.high if side == "upper" else outer.low
    if math.isclose(bound, searched.high if side == "upper" else searched.low, rel_tol=1e-6):
        return f"widen search.lr.{'high' if side == 'upper' else 'low'}"
    knob = "decades_above" if side == "upper" else "decades_below"
    return f"the range test set this range: raise recipe.range_test.{knob}"
