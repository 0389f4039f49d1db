"""How work items and outcomes are checked and named (their models: ``hpsearch.results``).

Searched parameters are named as Optuna sees them (``lr``; ``hpsearch.spec.param_name``). An
outcome is checked against the item it belongs to before anything of it
is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpsearch.errors import OutcomeError
from hpsearch.results import Outcome, WorkItem


def objective_key(item: WorkItem) -> str:
    """The metric an item's epochs are judged by: ``val_`` and its spec's ``search.objective``
    (``val_accuracy`` for an item made before there was a choice)."""
    return f"val_{item.spec.search.objective}"


def objective_value(item: WorkItem, epoch: int, metrics: Mapping[str, float]) -> float:
    """The objective's value in an epoch's reported ``metrics``; :class:`OutcomeError` (the
    report is refused, nothing of it is judged) when they lack it or it is not in [0, 1]."""
    key = objective_key(item)
    value = metrics.get(key)
    where = f"epoch {epoch} of {item.kind} item {item.study}/{item.stage}"
    if value is None:
        raise OutcomeError(where, f"the metrics lack {key}, the study's search.objective")
    if not 0.0 <= value <= 1.0:
        raise OutcomeError(where, f"{key} is {value}, not in [0, 1]")
    return float(value)


def finite(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, inf) replaced by None: what a JSON result may
    hold (a range test's curve that blew up, a loss that diverged)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data


def first_non_finite(data: Any) -> str | None:
    """Where ``data`` first holds a NaN or an infinity (``.curve.loss[3]``), or None. Iterative,
    so a deeply nested body cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where
        if isinstance(value, dict):
            stack += reversed([(f"{where}.{key}", item) for key, item in value.items()])
        elif isinstance(value, list):
            stack += reversed([(f"{where}[{i}]", item) for i, item in enumerate(value)])
    return None


_STATES: dict[str, tuple[str, ...]] = {
    "trial": ("completed", "pruned", "failed"),
    "sanity": ("passed", "failed"),
    "range_test": ("passed", "failed"),
    "final": ("completed", "failed"),
}


def check_outcome(item: WorkItem, outcome: Outcome) -> None:
    """Refuse an outcome that does not fit ``item`` (:class:`OutcomeError` naming the fault), so
    that nothing half-formed is ever recorded in a study. (Its shape is the model's to check:
    an :class:`Outcome` is valid data already.)"""
    where = f"{item.kind} item of {item.study}/{item.stage}"
    if outcome.state not in _STATES[item.kind]:
        allowed = ", ".join(_STATES[item.kind])
        raise OutcomeError(where, f"state {outcome.state!r} is not one of {allowed}")
    if item.kind == "trial":
        if outcome.state == "completed" and outcome.value is None:
            raise OutcomeError(
                where, "a completed trial needs its value (best validation objective)"
            )
        if outcome.result is not None:
            raise OutcomeError(where, "a trial has no result: its epochs are its history")
        return
    if outcome.result is not None and outcome.result.kind != item.kind:
        raise OutcomeError(where, f"result.kind {outcome.result.kind!r} is not {item.kind!r}")
    if outcome.state != "failed" and outcome.result is None:
        raise OutcomeError(where, f"a {outcome.state} {item.kind} item needs its result")
