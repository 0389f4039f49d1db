"""Pages of a study's search trials, straight from the database: filtered, sorted, counted and
paged in SQL over Optuna's tables (and ours, for the worker), so a study of tens of thousands of
trials answers as fast as a small one. Only the trials of the page are then read in full."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from optuna.distributions import json_to_distribution

from hpsearch.errors import HPSearchError
from hpsearch.recipe import StageMachine
from hpsearch.recipe._rounds import is_search_stage, search_round
from hpsearch.recipe._trials import STATE_NAMES
from hpsearch.storage import StudyRecord
from hpsearch.storage import optuna_schema as schema
from hpsearch.storage._tables import leases

_T = schema.TRIALS
_VALUES = schema.TRIAL_VALUES
_PARAMS = schema.PARAMS
_STEPS = schema.INTERMEDIATE_VALUES
_ATTRS = schema.USER_ATTRS
STATES_BY_NAME = {name: state for state, name in STATE_NAMES.items()}
SORT_KEYS = ("value", "number", "duration", "epochs", "worker", "state", "stage")
_SHOWN_ATTRS = ("fail_reason", "retry_of", "seeded")


class BadQueryError(HPSearchError):
    """A page was asked for with a parameter that does not fit this study."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {problem}")


def trial_page(
    machine: StageMachine,
    study: StudyRecord,
    *,
    state: str | None = None,
    stage: str | None = None,
    sort: str = "number",
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """``{"total": N, "trials": [...]}``: the trials matching ``state`` and ``stage``, ordered by
    ``sort`` (a key of :data:`SORT_KEYS` or a parameter name; ``-`` reverses; ``value`` puts the
    best first), ``limit`` of them from ``offset``. Missing values sort last either way."""
    _check_sort(sort.lstrip("-"), study)
    stages = _stage_ids(machine, study)
    if stage is not None:
        stages = {i: name for i, name in stages.items() if name == stage}
    if not stages:
        return {"total": 0, "trials": []}
    where: list[sa.ColumnElement[bool]] = [_T.c.study_id.in_(list(stages))]
    if state is not None:
        where.append(_T.c.state == STATES_BY_NAME[state])
    value = _value_column()
    key, joined = _sort_key(sort.lstrip("-"), stages, value, machine)
    source = _T.outerjoin(value, value.c.trial_id == _T.c.trial_id)
    for table, on in joined:
        source = source.outerjoin(table, on)
    query = sa.select(_T.c.trial_id).select_from(source)
    descending = sort.startswith("-") != (sort.lstrip("-") == "value")
    order = key.desc() if descending else key.asc()
    position = sa.case({i: n for n, i in enumerate(stages)}, value=_T.c.study_id)
    # nulls last, in words every backend knows (MySQL has no NULLS LAST): false sorts first
    query = query.where(*where).order_by(key.is_(None), order, position, _T.c.number)
    with machine.store.optuna_reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(_T).where(*where)).scalar_one()
        ids = [int(r[0]) for r in conn.execute(query.limit(limit).offset(offset))]
    return {"total": int(total), "trials": _views(machine, stages, ids)}


def trial_detail(
    machine: StageMachine, study: StudyRecord, stage: str, number: int
) -> dict[str, Any]:
    """One trial in full: its view, every per-epoch metric (the finished trial's history, or what
    a running trial's worker has reported so far), and its intermediate values."""
    stages = {i: name for i, name in _stage_ids(machine, study).items() if name == stage}
    if not stages:
        raise BadQueryError("path.stage", f"study {study.name!r} has no search stage {stage!r} yet")
    with machine.store.optuna_reader.connect() as conn:
        trial_id = conn.execute(
            sa.select(_T.c.trial_id).where(_T.c.study_id.in_(list(stages)), _T.c.number == number)
        ).scalar()
    if trial_id is None:
        raise BadQueryError(
            "path.number", f"stage {stage!r} of {study.name!r} has no trial {number}"
        )
    frozen = machine.store.optuna.get_trial(int(trial_id))
    view = _views(machine, stages, [int(trial_id)])[0]
    history = frozen.user_attrs.get("history")
    if history is None:  # not finished: what its worker has reported so far
        with machine.store.reader.connect() as conn:
            progress = conn.execute(
                sa.select(leases.c.progress)
                .where(leases.c.trial_id == trial_id)
                .order_by(leases.c.id.desc())
            ).scalar()
        history = list(progress or [])
    view |= {
        "distributions": {k: str(v) for k, v in frozen.distributions.items()},
        "intermediate_values": {str(k): v for k, v in sorted(frozen.intermediate_values.items())},
        "history": history,
        "completed_at": _iso(frozen.datetime_complete),
        "user_attrs": {k: v for k, v in frozen.user_attrs.items() if k != "history"},
    }
    return view


def best_of(machine: StageMachine, study: StudyRecord, k: int) -> list[dict[str, Any]]:
    """The ``k`` completed search trials with the highest value (the validation objective),
    best first."""
    page = trial_page(machine, study, state="complete", sort="value", limit=k)
    return list(page["trials"])


# --- pieces -------------------------------------------------------------------------------------


def _stage_ids(machine: StageMachine, study: StudyRecord) -> dict[int, str]:
    """Optuna study id -> stage name, for the search stages that have started, in plan order."""
    ids = {}
    for record in machine.store.stages(study.id):
        round_ = search_round(record) if is_search_stage(record.name) else None
        if round_ is not None:
            ostudy = machine.stage_study(study, record.name, round_.epochs)
            ids[schema.study_id(ostudy)] = record.name
    return ids


def _value_column() -> Any:
    return (
        sa.select(_VALUES.c.trial_id, _VALUES.c.value)
        .where(_VALUES.c.objective == 0)
        .subquery("value")
    )


def _sort_key(
    key: str, stages: dict[int, str], value: Any, machine: StageMachine
) -> tuple[Any, list[tuple[Any, Any]]]:
    """The column to order by (a checked key), and the tables to join for it."""
    if key == "value":
        return value.c.value, []
    if key == "number":
        return _T.c.number, []
    if key == "state":
        return _T.c.state, []
    if key == "stage":
        return sa.case({i: n for n, i in enumerate(stages)}, value=_T.c.study_id), []
    if key == "duration":
        return _seconds_between(_T.c.datetime_start, _T.c.datetime_complete, machine), []
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


def _check_sort(key: str, study: StudyRecord) -> None:
    params = ["lr", "weight_decay", *study.spec.search.extra]
    if key not in SORT_KEYS and key not in params:
        choices = ", ".join([*SORT_KEYS, *params])
        raise BadQueryError("query.sort", f"{key!r} is not one of {choices}")


def _seconds_between(start: Any, end: Any, machine: StageMachine) -> Any:
    dialect = machine.store.optuna.engine.dialect.name
    if dialect == "postgresql":
        return sa.extract("epoch", end - start)
    if dialect in ("mysql", "mariadb"):
        return sa.func.timestampdiff(sa.text("MICROSECOND"), start, end) / 1e6
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _views(machine: StageMachine, stages: dict[int, str], ids: list[int]) -> list[dict[str, Any]]:
    """The trials ``ids`` as JSON-ready views, in that order, read in a few queries."""
    if not ids:
        return []
    rows, params, attrs, epochs = _trial_rows(machine, ids)
    with machine.store.reader.connect() as conn:
        workers: dict[int, str] = dict(
            conn.execute(
                sa.select(leases.c.trial_id, leases.c.worker).where(leases.c.trial_id.in_(ids))
            ).all()
        )
    views = []
    for trial_id in ids:
        row = rows[trial_id]
        start, end = row.datetime_start, row.datetime_complete
        views.append(
            {
                "number": row.number,
                "stage": stages[row.study_id],
                "state": STATE_NAMES[row.state],
                "value": row.value,
                "params": params[trial_id],
                "epochs": int(epochs.get(trial_id, 0)),
                "duration": (end - start).total_seconds() if start and end else None,
                "started_at": _iso(start),
                "worker": workers.get(trial_id),
                "reason": attrs[trial_id].get("fail_reason"),
                "retry_of": attrs[trial_id].get("retry_of"),
                "seeded": bool(attrs[trial_id].get("seeded", False)),
            }
        )
    return views


def _trial_rows(machine: StageMachine, ids: list[int]) -> tuple[Any, Any, Any, dict[int, int]]:
    """Optuna's rows of the trials ``ids``: the trials with their values, their parameters,
    the user attributes the views show, and how many epochs each reported."""
    with machine.store.optuna_reader.connect() as conn:
        rows = {
            int(r.trial_id): r
            for r in conn.execute(
                sa.select(_T, _VALUES.c.value)
                .outerjoin(
                    _VALUES, sa.and_(_VALUES.c.trial_id == _T.c.trial_id, _VALUES.c.objective == 0)
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
                _ATTRS.c.trial_id.in_(ids), _ATTRS.c.key.in_(_SHOWN_ATTRS)
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


def _iso(moment: datetime | None) -> str | None:
    """Optuna keeps the server's local time, naive: given its offset here."""
    return None if moment is None else moment.astimezone().isoformat()


def trial_points(machine: StageMachine, study: StudyRecord) -> dict[str, Any]:
    """Every search trial as a point, in columns (for scatter plots of tens of thousands):
    ``stage``, ``number``, ``state``, ``value`` and one column per parameter."""
    stages = _stage_ids(machine, study)
    columns: dict[str, list[Any]] = {"stage": [], "number": [], "state": [], "value": []}
    if not stages:
        return columns
    value = _value_column()
    where = _T.c.study_id.in_(list(stages))
    with machine.store.optuna_reader.connect() as conn:
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
        columns["stage"].append(stages[row.study_id])
        columns["number"].append(row.number)
        columns["state"].append(STATE_NAMES[row.state])
        columns["value"].append(row.value)
    for name, values in params.items():
        columns[name] = [values.get(row.trial_id) for row in rows]
    return columns


_DISTRIBUTIONS: dict[str, Any] = {}


def _external(distribution_json: str, internal: float) -> Any:
    """A stored parameter value as the user sees it (distributions parsed once each)."""
    if distribution_json not in _DISTRIBUTIONS:
        _DISTRIBUTIONS[distribution_json] = json_to_distribution(distribution_json)
    return _DISTRIBUTIONS[distribution_json].to_external_repr(internal)
