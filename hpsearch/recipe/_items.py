"""What the stage machine hands out and what comes back: plain, JSON-ready data.

A :class:`WorkItem` carries everything needed to do the work (the full spec for this item, with
the trial's parameters applied), so whoever executes it needs no database access; an
:class:`Outcome` is what the executor reports back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hpsearch.errors import OutcomeError

Kind = Literal["sanity", "range_test", "trial", "final"]
OutcomeState = Literal["passed", "failed", "completed", "pruned"]

# Searched parameters are named as Optuna sees them; the spec path they set:
PARAM_PATHS = {"lr": "train.lr", "weight_decay": "train.weight_decay"}


def param_path(name: str) -> str:
    """The spec field an Optuna parameter sets (``lr`` -> ``train.lr``; extra dims are paths)."""
    return PARAM_PATHS.get(name, name)


def param_name(path: str) -> str:
    """The Optuna parameter name of a spec field (``train.lr`` -> ``lr``)."""
    return next((name for name, p in PARAM_PATHS.items() if p == path), path)


@dataclass(frozen=True)
class WorkItem:
    study_id: int
    study: str
    stage: str
    kind: Kind
    spec: dict[str, Any]  # the full study spec for this item, parameters applied
    params: dict[str, float] = field(default_factory=dict)  # trial: by Optuna parameter name
    trial_id: int | None = None
    trial_number: int | None = None
    configs: list[dict[str, float]] = field(default_factory=list)  # final: by spec path, best first
    epoch_budget: float | None = None  # final: trial-epochs left for a targeted stage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItem:
        return cls(**data)


@dataclass(frozen=True)
class Outcome:
    state: OutcomeState
    value: float | None = None  # trial: best validation accuracy
    result: dict[str, Any] = field(default_factory=dict)  # stage items: the stage's result
    history: list[dict[str, float]] = field(default_factory=list)  # trial: per-epoch metrics
    reason: str | None = None  # failed: why, in words
    retryable: bool = False  # failed for a reason that is not the configuration's fault
    trial_epochs: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**data)


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
_FINAL_KEYS = ("params", "val_accuracy", "test_accuracy", "diagnosis", "trial_epochs", "seconds")
_TARGETED_KEYS = ("ran", "trial_epochs", "seconds")


def check_outcome(item: WorkItem, outcome: Outcome) -> None:
    """Refuse an outcome that does not fit ``item`` (:class:`OutcomeError` naming the fault), so
    that nothing half-formed is ever recorded in a study."""
    where = f"{item.kind} item of {item.study}/{item.stage}"
    if outcome.state not in _STATES[item.kind]:
        allowed = ", ".join(_STATES[item.kind])
        raise OutcomeError(where, f"state {outcome.state!r} is not one of {allowed}")
    if item.kind == "trial" and outcome.state == "completed" and outcome.value is None:
        raise OutcomeError(where, "a completed trial needs its value (best validation accuracy)")
    if item.kind == "final" and outcome.state == "completed":
        final = outcome.result.get("final")
        if not isinstance(final, dict):
            raise OutcomeError(where, "result.final is missing")
        _require(where, "result.final", final, _FINAL_KEYS)
        targeted = outcome.result.get("targeted")
        if targeted is not None:
            if not isinstance(targeted, dict):
                raise OutcomeError(where, "result.targeted must be an object or null")
            _require(where, "result.targeted", targeted, _TARGETED_KEYS)


def _require(where: str, name: str, data: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise OutcomeError(where, f"{name} lacks {', '.join(missing)}")
