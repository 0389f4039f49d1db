"""Pages of search trials, straight from the database: filtered, sorted, counted and paged in SQL
over Optuna's tables (and ours, for the worker), so a study of tens of thousands of trials
answers as fast as a small one. Only the trials of the page are then read in full.

A page spans some of Optuna's studies (a study's search stages, each one Optuna study), given
as their ids in plan order: that order is what ``stage`` sorts by.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from optuna.distributions import json_to_distribution
from optuna.trial import TrialState

from hpsearch.storage import optuna_schema as schema
from hpsearch.storage._store import Store
from hpsearch.storage._tables import leases

_T = schema.TRIALS
_VALUES = schema.TRIAL_VALUES
_PARAMS = schema.PARAMS
_STEPS = schema.INTERMEDIATE_VALUES
_ATTRS = schema.USER_ATTRS
SORT_KEYS = ("value", "number", "duration", "epochs", "worker", "state", "stage")
"""What a page sorts by, besides a parameter's name."""
SHOWN_ATTRS = ("fail_reason", "retry_of", "seeded")
"""The user attributes a trial's row carries."""


@dataclass(frozen=True)
class TrialRow:
    """One trial as a page lists it."""

    trial_id: int
    study_id: int  # Optuna's: which stage
    number: int
    state: TrialState
    value: float | None
    params: dict[str, Any]  # by Optuna's names, as the user sees them
    epochs: int  # the intermediate values it reported
    started: datetime | None  # Optuna's clock: local time, naive
    completed: datetime | None
    worker: str | None  # the worker whose lease it was
    attrs: dict[str, Any]  # of SHOWN_ATTRS, those it has


@dataclass
class TrialColumns:
    """Every trial of some studies, in columns, ordered by trial id."""

    study_id: list[int] = field(default_factory=list)
    number: list[int] = field(default_factory=list)
    state: list[TrialState] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    params: dict[str, list[Any]] = field(default_factory=dict)  # None where a trial has none


class TrialPages:
    """Reads pages of one store's trials."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def page(
        self,
        study_ids: Sequence[int],
        *,
        state: TrialState | None,
        sort: str,
        descending: bool,
        limit: int,
        offset: int,
    ) -> tuple[int, list[int]]:
        """How many trials of ``study_ids`` are in ``state`` (any: None), and the ids of
        ``limit`` of them from ``offset``, ordered by ``sort`` (a key of :data:`SORT_KEYS` or a
        parameter name); missing values last either way, then by stage and number."""
        where: list[sa.ColumnElement[bool]] = [_T.c.study_id.in_(list(study_ids))]
        if state is not None:
            where.append(_T.c.state == state)
        value = _value_column()
        key, joined = self._sort_key(sort, study_ids, value)
        source = _T.outerjoin(value, value.c.trial_id == _T.c.trial_id)
        for table, on in joined:
            source = source.outerjoin(table, on)
        query = sa.select(_T.c.trial_id).select_from(source)
        order = key.desc() if descending else key.asc()
        # nulls last, in words every backend knows (MySQL has no NULLS LAST): false sorts first
        query = query.where(*where).order_by(key.is_(None), order, _stage(study_ids), _T.c.number)
        with self.store.optuna_reader.connect() as conn:
            count = sa.select(sa.func.count()).select_from(_T).where(*where)
            total = conn.execute(count).scalar_one()
            ids = [int(r[0]) for r in conn.execute(query.limit(limit).offset(offset))]
        return int(total), ids

    def trial_id(self, study_ids: Sequence[int], number: int) -> int | None:
        """The id of trial ``number`` of one of ``study_ids`` (a stage's), if it has one."""
        query = sa.select(_T.c.trial_id).where(
            _T.c.study_id.in_(list(study_ids)), _T.c.number == number
        )
        with self.store.optuna_reader.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    def progress(self, trial_id: int) -> list[Any]:
        """The epochs a trial's worker has reported so far (its latest lease's)."""
        query = (
            sa.select(leases.c.progress)
            .where(leases.c.trial_id == trial_id)
            .order_by(leases.c.id.desc())
        )
        with self.store.reader.connect() as conn:
            return list(conn.execute(query).scalar() or [])

    def rows(self, ids: list[int]) -> list[TrialRow]:
        """The trials ``ids``, in that order, read in a few queries."""
        if not ids:
            return []
        rows, params, attrs, epochs = self._trial_rows(ids)
        with self.store.reader.connect() as conn:
            workers: dict[int, str] = dict(
                conn.execute(
                    sa.select(leases.c.trial_id, leases.c.worker).where(leases.c.trial_id.in_(ids))
                ).all()
            )
        return [
            TrialRow(
                trial_id=trial_id,
                study_id=int(rows[trial_id].study_id),
                number=int(rows[trial_id].number),
                state=rows[trial_id].state,
                value=rows[trial_id].value,
                params=params[trial_id],
                epochs=int(epochs.get(trial_id, 0)),
                started=rows[trial_id].datetime_start,
                completed=rows[trial_id].datetime_complete,
                worker=workers.get(trial_id),
                attrs=attrs[trial_id],
            )
            for trial_id in ids
        ]

    def columns(self, study_ids: Sequence[int]) -> TrialColumns:
        """Every trial of ``study_ids`` as columns (for scatter plots of tens of thousands)."""
        columns = TrialColumns()
        if not study_ids:
            return columns
        value = _value_column()
        where = _T.c.study_id.in_(list(study_ids))
        with self.store.optuna_reader.connect() as conn:
            rows = conn.execute(
                sa.select(_T.c.trial_id, _T.c.study_id, _T.c.number, _T.c.state, value.c.value)
                .select_from(_T.outerjoin(value, value.c.trial_id == _T.c.trial_id))
                .where(where)
                .order_by(_T.c.trial_id)
            ).all()
            params: dict[str, dict[int, float]] = defaultdict(dict)
            for trial_id, name, internal, dist in conn.execute(
                sa.select(_PARAMS.c.trial_id, _PARAMS.c.param_name, _PARAMS.c.param_value,
                          _PARAMS.c.distribution_json)
                .join(_T, _T.c.trial_id == _PARAMS.c.trial_id)
                .where(where)
            ):  # fmt: skip
                params[name][trial_id] = _external(dist, internal)
        for row in rows:
            columns.study_id.append(row.study_id)
            columns.number.append(row.number)
            columns.state.append(row.state)
            columns.value.append(row.value)
        for name, values in params.items():
            columns.params[name] = [values.get(row.trial_id) for row in rows]
        return columns

    # --- pieces --------------------------------------------------------------------------------

    def _sort_key(
        self, key: str, study_ids: Sequence[int], value: Any
    ) -> tuple[Any, list[tuple[Any, Any]]]:
        """The column to order by (a checked key), and the tables to join for it."""
        if key == "value":
            return value.c.value, []
        if key == "number":
            return _T.c.number, []
        if key == "state":
            return _T.c.state, []
        if key == "stage":
            return _stage(study_ids), []
        if key == "duration":
            return self._seconds_between(_T.c.datetime_start, _T.c.datetime_complete), []
        if key == "epochs":
            steps = (
                sa.select(_STEPS.c.trial_id, sa.func.count().label("epochs"))
                .group_by(_STEPS.c.trial_id)
                .subquery("steps")
            )
            return steps.c.epochs, [(steps, steps.c.trial_id == _T.c.trial_id)]
        if key == "worker":
            held = (
                sa.select(leases.c.trial_id, sa.func.max(leases.c.worker).label("worker"))
                .group_by(leases.c.trial_id)
                .subquery("held")
            )
            return held.c.worker, [(held, held.c.trial_id == _T.c.trial_id)]
        param = _PARAMS.alias("sort_param")
        on = sa.and_(param.c.trial_id == _T.c.trial_id, param.c.param_name == key)
        return param.c.param_value, [(param, on)]

    def _seconds_between(self, start: Any, end: Any) -> Any:
        dialect = self.store.optuna.engine.dialect.name
        if dialect == "postgresql":
            return sa.extract("epoch", end - start)
        if dialect in ("mysql", "mariadb"):
            return sa.func.timestampdiff(sa.text("MICROSECOND"), start, end) / 1e6
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0

    def _trial_rows(self, ids: list[int]) -> tuple[Any, Any, Any, dict[int, int]]:
        """Optuna's rows of the trials ``ids``: the trials with their values, their parameters,
        the user attributes the rows carry, and how many epochs each reported."""
        with self.store.optuna_reader.connect() as conn:
            rows = {
                int(r.trial_id): r
                for r in conn.execute(
                    sa.select(_T, _VALUES.c.value)
                    .outerjoin(
                        _VALUES,
                        sa.and_(_VALUES.c.trial_id == _T.c.trial_id, _VALUES.c.objective == 0),
                    )
                    .where(_T.c.trial_id.in_(ids))
                )
            }
            params: dict[int, dict[str, Any]] = defaultdict(dict)
            for trial_id, name, internal, dist in conn.execute(
                sa.select(_PARAMS.c.trial_id, _PARAMS.c.param_name, _PARAMS.c.param_value,
                          _PARAMS.c.distribution_json)
                .where(_PARAMS.c.trial_id.in_(ids))
                .order_by(_PARAMS.c.param_id)
            ):  # fmt: skip
                params[trial_id][name] = _external(dist, internal)
            attrs: dict[int, dict[str, Any]] = defaultdict(dict)
            for trial_id, key, value_json in conn.execute(
                sa.select(_ATTRS.c.trial_id, _ATTRS.c.key, _ATTRS.c.value_json).where(
                    _ATTRS.c.trial_id.in_(ids), _ATTRS.c.key.in_(SHOWN_ATTRS)
                )
            ):
                attrs[trial_id][key] = json.loads(value_json)
            epochs: dict[int, int] = dict(
                conn.execute(
                    sa.select(_STEPS.c.trial_id, sa.func.count())
                    .where(_STEPS.c.trial_id.in_(ids))
                    .group_by(_STEPS.c.trial_id)
                ).all()
            )
        return rows, params, attrs, epochs


def _stage(study_ids: Sequence[int]) -> Any:
    """A trial's stage as its position in ``study_ids``."""
    return sa.case({i: n for n, i in enumerate(study_ids)}, value=_T.c.study_id)


def _value_column() -> Any:
    return (
        sa.select(_VALUES.c.trial_id, _VALUES.c.value)
        .where(_VALUES.c.objective == 0)
        .subquery("value")
    )


_DISTRIBUTIONS: dict[str, Any] = {}


def _external(distribution_json: str, internal: float) -> Any:
    """A stored parameter value as the user sees it (distributions parsed once each)."""
    if distribution_json not in _DISTRIBUTIONS:
        _DISTRIBUTIONS[distribution_json] = json_to_distribution(distribution_json)
    return _DISTRIBUTIONS[distribution_json].to_external_repr(internal)
