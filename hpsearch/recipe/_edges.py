"""Is the best configuration on the edge of what was searched?

A best learning rate of 0.997 in a range that ends at 1.0 says little about the best learning
rate: better ones may lie beyond the edge. A careful person notices, widens the range and looks
again. So does the recipe: a refine round whose best-so-far lies on an edge of the round
before's range searches past that edge (:func:`extend_edges`), and the study's summary says so;
where the best still lies on the edge of everything searched, the summary names the field to
widen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal

from hpsearch.errors import SpecError
from hpsearch.recipe._derive import field_value
from hpsearch.results import SearchRound
from hpsearch.spec import SearchRange, StudySpec, param_path, spec_with

EDGE = 0.05  # the outer share of a range (of its decades, on a log scale) that counts as its edge
WEIGHT_DECAY_LIMITS = (1e-12, 1.0)  # how far an extended weight-decay range may reach
Side = Literal["lower", "upper"]


def position(value: float, searched: SearchRange) -> float:
    """Where ``value`` lies in ``searched``: 0 at its low end, 1 at its high end."""
    if searched.log and searched.low > 0 and value > 0:
        low, high, at = math.log(searched.low), math.log(searched.high), math.log(value)
    else:
        low, high, at = searched.low, searched.high, value
    return (at - low) / (high - low) if high > low else 0.5


def edge_side(value: float, searched: SearchRange) -> Side | None:
    """The edge of ``searched`` that ``value`` lies on (its outer ``EDGE``), if any."""
    at = position(value, searched)
    if at >= 1 - EDGE:
        return "upper"
    return "lower" if at <= EDGE else None


def extend_edges(
    spec: StudySpec,
    narrowed: Mapping[str, SearchRange],
    previous: Mapping[str, SearchRange],
    best: Mapping[str, float],
    margin: float,
) -> dict[str, SearchRange]:
    """``narrowed`` (a refine round's ranges, inside ``previous``) reaching past each edge of
    ``previous`` that the best-so-far configuration ``best`` lies on: by ``margin`` squared on a
    log scale, by ``margin - 1`` times the previous width on a linear one; no further than a
    value the field accepts (the learning rate: the range test's sweep). ``SearchRound.extended``
    reads back which sides reach past."""
    ranges = dict(narrowed)
    for name, prev in previous.items():
        if name not in best or name not in ranges:
            continue
        side = edge_side(float(best[name]), prev)
        if side is None:
            continue
        reach = _beyond(prev, side, margin)
        bound = _accepted(spec, name, side, reach)
        if bound is None:
            continue
        if side == "upper" and bound > prev.high:
            ranges[name] = ranges[name].model_copy(update={"high": float(bound)})
        elif side == "lower" and bound < prev.low:
            ranges[name] = ranges[name].model_copy(update={"low": float(bound)})
    return ranges


def _beyond(prev: SearchRange, side: Side, margin: float) -> float:
    if prev.log:
        return prev.high * margin**2 if side == "upper" else prev.low / margin**2
    width = (margin - 1) * (prev.high - prev.low)
    return prev.high + width if side == "upper" else prev.low - width


def _accepted(spec: StudySpec, name: str, side: Side, value: float) -> float | None:
    """``value``, or the nearest value toward it the parameter accepts; None if none is."""
    if name == "lr":
        sweep = spec.recipe.range_test
        return min(max(value, sweep.min_lr), sweep.max_lr)
    if name == "weight_decay":
        return min(max(value, WEIGHT_DECAY_LIMITS[0]), WEIGHT_DECAY_LIMITS[1])
    path = param_path(name)
    if isinstance(field_value(spec, path), int):
        value = math.floor(value) if side == "upper" else math.ceil(value)
    try:
        spec_with(spec, {path: value})
    except SpecError:  # past what the field accepts (a dropout above 1): not extended
        return None
    return value


def extension_notes(rounds: Mapping[str, SearchRound]) -> list[str]:
    """A sentence for each range a refine round extended (``rounds``: by name)."""
    notes = []
    for stage, round_ in rounds.items():
        for name, side in round_.extended.items():
            r = round_.ranges[name]
            reach = r.high if side == "upper" else r.low
            notes.append(
                f"the best {name} lay at the {side} edge of the range searched before {stage}: "
                f"{stage} searched past it, to {reach:.4g} ([{r.low:.4g}, {r.high:.4g}])"
            )
    return notes


def widest(rounds: Iterable[SearchRound]) -> dict[str, SearchRange]:
    """The union of the rounds' ranges, per parameter: everything the search looked at."""
    union: dict[str, SearchRange] = {}
    for round_ in rounds:
        for name, r in round_.ranges.items():
            seen = union.setdefault(name, r)
            low, high = min(seen.low, r.low), max(seen.high, r.high)
            union[name] = seen.model_copy(update={"low": low, "high": high})
    return union


def edge_warnings(
    spec: StudySpec, searched: Mapping[str, SearchRange], best: Mapping[str, float]
) -> list[str]:
    """A sentence for each parameter of ``best`` (Optuna names) that lies at the edge of its
    ``searched`` range (every round's ranges together: the widest the search looked at)."""
    warnings = []
    for name, value in best.items():
        if name not in searched:
            continue
        searched_range = searched[name]
        side = edge_side(float(value), searched_range)
        if side is None:
            continue
        warnings.append(
            f"the best {name} ({value:.4g}) lies at the {side} edge of the searched range "
            f"[{searched_range.low:.4g}, {searched_range.high:.4g}]: better values may lie "
            f"beyond it; {_how_to_widen(spec, name, side, searched_range)} and search again"
        )
    return warnings


def _how_to_widen(spec: StudySpec, name: str, side: str, searched: SearchRange) -> str:
    if name != "lr":
        field = spec.search.bound_by(param_path(name))
        return f"widen {field}.{'high' if side == 'upper' else 'low'}"
    outer, sweep = spec.search.lr, spec.recipe.range_test
    reached = searched.high if side == "upper" else searched.low
    limit = sweep.max_lr if side == "upper" else sweep.min_lr
    end = "high" if side == "upper" else "low"
    if math.isclose(reached, limit, rel_tol=1e-6):
        sweep_end = "max_lr" if side == "upper" else "min_lr"
        return f"widen recipe.range_test.{sweep_end} and search.lr.{end}"
    bound = outer.high if side == "upper" else outer.low
    if (reached >= bound) if side == "upper" else (reached <= bound):
        return f"widen search.lr.{end}"
    knob = "decades_above" if side == "upper" else "decades_below"
    return f"the range test set this range: raise recipe.range_test.{knob}"
