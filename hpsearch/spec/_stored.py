"""Reading a spec stored by an earlier version, which the current rules may refuse.

A study launched before a bound existed (``recipe.coarse.trials`` had none) keeps its spec in the
database. Refusing to read it would break every listing of studies over that one row, so a
stored spec that no longer validates is read as it is, unvalidated, together with the problems
the current rules find; whoever would run it (a claim, a local run) refuses it with them.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from hpsearch.errors import HPSearchError, SpecError
from hpsearch.spec._load import parse_spec
from hpsearch.spec._model import StudySpec


def read_stored_spec(data: object, source: str) -> tuple[StudySpec, list[tuple[str, str]]]:
    """The stored spec and the problems the current rules find in it (none for a valid one)."""
    try:
        return parse_spec(data, source), []
    except SpecError as exc:
        if not isinstance(data, Mapping):
            raise
        return _construct(StudySpec, data), exc.problems


def check_same_spec(stored: Mapping[str, Any], spec: StudySpec) -> None:
    """Resuming a study means the same spec: a stored study of that name with another one is
    refused (``hpsearch run`` on its storage, ``hpsearch up`` through a server)."""
    if dict(stored) != spec.model_dump(mode="json"):
        raise HPSearchError(
            f"the storage already holds a study named {spec.name!r} with a different spec; "
            "run it with the same spec to resume, or choose another name or --storage"
        )


def _construct(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """``model`` built from ``data`` without validation, sections as sections; fields missing
    from ``data`` take their defaults."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in data:
            continue
        value, annotation = data[name], field.annotation
        if _is_model(annotation) and isinstance(value, Mapping):
            value = _construct(annotation, value)
        elif typing.get_origin(annotation) is dict and isinstance(value, Mapping):
            item = typing.get_args(annotation)[1]
            if typing.get_origin(item) is typing.Annotated:  # e.g. Dimension: a SearchRange
                item = typing.get_args(item)[0]
            if _is_model(item):
                value = {k: _construct(item, v) for k, v in value.items() if isinstance(v, Mapping)}
        elif typing.get_origin(annotation) is tuple and isinstance(value, list):
            value = tuple(value)  # as JSON stores a tuple
        values[name] = value
    return model.model_construct(**values)


def _is_model(annotation: object) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
