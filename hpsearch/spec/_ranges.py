"""The one type of a searched interval, and how a searched spec field is named in Optuna.

A :class:`SearchRange` is what the spec's search section bounds (``search.lr``), what each search
round searches (``SearchRound.ranges``, narrowed and extended by the recipe) and what an Optuna
distribution is built from. Where it comes from decides only how it is written:

- in a spec file, ``{low, high, log}`` (:data:`Dimension`): whether a field is searched over the
  integers is its type's to say (``SearchSpec.dimensions`` sets ``integer``), so a spec file
  never holds ``integer``, and a stored spec reads back and compares as it was written;
- in a stored round, ``{low, high, log, integer}``, as every earlier version stored it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)

from hpsearch.spec._problem import FieldProblem

# the Optuna names of the two dimensions every search has, as every stored study has them; an
# extra dimension's Optuna name is its spec path
_OPTUNA_NAMES = {"train.lr": "lr", "train.weight_decay": "weight_decay"}


def param_name(path: str) -> str:
    """The Optuna parameter name of a searched spec field (``train.lr`` -> ``lr``)."""
    return _OPTUNA_NAMES.get(path, path)


def param_path(name: str) -> str:
    """The spec field an Optuna parameter sets (``lr`` -> ``train.lr``): :func:`param_name`
    read backwards."""
    return next((path for path, short in _OPTUNA_NAMES.items() if short == name), name)


class SearchRange(BaseModel):
    """An interval searched over: ``[low, high]``, drawn on a log scale or not, over the
    integers in it or not. Frozen: a narrowed or extended range is a new one."""

    # NaN and infinities are refused: a spec and a stored round must be valid JSON everywhere
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    low: float
    high: float
    log: bool = True
    integer: bool = False  # over the integers in [low, high] (a field of type int)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


SPEC_FORM_FIELDS = ("low", "high", "log")
"""The fields a spec file writes of a range (``low``, ``high``, ``log``)."""


def _refuse_integer(value: object) -> object:
    if isinstance(value, Mapping) and "integer" in value:
        known = ", ".join(SPEC_FORM_FIELDS)
        raise FieldProblem("integer", f"unknown field; known fields: {known}")
    return value


def _check_bounds(searched: SearchRange) -> SearchRange:
    if not searched.low < searched.high:
        raise FieldProblem("high", f"must be above low ({searched.low} >= {searched.high})")
    if searched.log and searched.low <= 0:
        raise FieldProblem("low", f"must be > 0 on a log scale (got {searched.low})")
    return searched


def _spec_form(searched: SearchRange) -> dict[str, Any]:
    return {field: getattr(searched, field) for field in SPEC_FORM_FIELDS}


Dimension = Annotated[
    SearchRange,
    BeforeValidator(_refuse_integer),
    AfterValidator(_check_bounds),
    PlainSerializer(_spec_form),
    WithJsonSchema(  # what a spec file may write of it
        {
            "type": "object",
            "title": "Dimension",
            "properties": {
                "low": {"type": "number", "title": "Low"},
                "high": {"type": "number", "title": "High"},
                "log": {"type": "boolean", "title": "Log", "default": True},
            },
            "required": ["low", "high"],
            "additionalProperties": False,
        }
    ),
]
"""A :class:`SearchRange` as a spec file writes it (``search.lr``, ``search.extra.<path>``):
``{low, high, log}``, low below high, low above 0 on a log scale."""
