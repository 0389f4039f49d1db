"""Pages of a study's search trials: which trials (filtered, sorted, counted and paged in SQL by
``hpsearch.storage.TrialPages``, so a study of tens of thousands of trials answers as fast as a
small one), one trial in full, and every trial as a point (their shapes: ``hpsearch.protocol``)."""

from __future__ import annotations

from datetime import datetime

from hpsearch.errors import HPSearchError
from hpsearch.protocol import TrialDetail, TrialPage, TrialPoints, TrialView
from hpsearch.scheduling import StageMachine, is_search_stage, search_round
from hpsearch.spec import param_name
from hpsearch.storage import (
    SORT_KEYS,
    STATE_NAMES,
    StudyRecord,
    TrialPages,
    TrialRow,
    optuna_study_id,
)

STATES_BY_NAME = {name: state for state, name in STATE_NAMES.items()}


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
) -> TrialPage:
    """The trials matching ``state`` and ``stage``, ordered by
    ``sort`` (a key of :data:`SORT_KEYS` or a parameter name; ``-`` reverses; ``value`` puts the
    best first), ``limit`` of them from ``offset``. Missing values sort last either way."""
    key = sort.lstrip("-")
    _check_sort(key, study)
    stages = _stage_ids(machine, study)
    if stage is not None:
        stages = {i: name for i, name in stages.items() if name == stage}
    if not stages:
        return TrialPage(total=0, trials=[])
    pages = TrialPages(machine.store)
    total, ids = pages.page(
        list(stages),
        state=None if state is None else STATES_BY_NAME[state],
        sort=key,
        descending=sort.startswith("-") != (key == "value"),
        limit=limit,
        offset=offset,
    )
    return TrialPage(total=total, trials=[_view(row, stages) for row in pages.rows(ids)])


def trial_detail(machine: StageMachine, study: StudyRecord, stage: str, number: int) -> TrialDetail:
    """One trial in full: its view, every per-epoch metric (the finished trial's history, or what
    a running trial's worker has reported so far), and its intermediate values."""
    stages = {i: name for i, name in _stage_ids(machine, study).items() if name == stage}
    if not stages:
        raise BadQueryError("path.stage", f"study {study.name!r} has no search stage {stage!r} yet")
    pages = TrialPages(machine.store)
    trial_id = pages.trial_id(list(stages), number)
    if trial_id is None:
        raise BadQueryError(
            "path.number", f"stage {stage!r} of {study.name!r} has no trial {number}"
        )
    frozen = machine.store.optuna.get_trial(trial_id)
    view = _view(pages.rows([trial_id])[0], stages)
    history = frozen.user_attrs.get("history")
    if history is None:  # not finished: what its worker has reported so far
        history = pages.progress(trial_id)
    return TrialDetail(
        **view.model_dump(),
        distributions={k: str(v) for k, v in frozen.distributions.items()},
        intermediate_values={str(k): v for k, v in sorted(frozen.intermediate_values.items())},
        history=history,
        completed_at=_iso(frozen.datetime_complete),
        user_attrs={k: v for k, v in frozen.user_attrs.items() if k != "history"},
    )


def best_of(machine: StageMachine, study: StudyRecord, k: int) -> list[TrialView]:
    """The ``k`` completed search trials with the highest value (the validation objective),
    best first."""
    page = trial_page(machine, study, state="complete", sort="value", limit=k)
    return page.trials


def trial_points(machine: StageMachine, study: StudyRecord) -> TrialPoints:
    """Every search trial as a point, in columns (for scatter plots of tens of thousands):
    ``stage``, ``number``, ``state``, ``value`` and one column per parameter."""
    stages = _stage_ids(machine, study)
    found = TrialPages(machine.store).columns(list(stages))
    return TrialPoints(
        stage=[stages[i] for i in found.study_id],
        number=found.number,
        state=[STATE_NAMES[state] for state in found.state],
        value=found.value,
        **found.params,
    )


# --- pieces -------------------------------------------------------------------------------------


def _stage_ids(machine: StageMachine, study: StudyRecord) -> dict[int, str]:
    """Optuna study id -> stage name, for the search stages that have started, in plan order."""
    ids = {}
    for record in machine.store.stages(study.id):
        round_ = search_round(record) if is_search_stage(record.name) else None
        if round_ is not None:
            ostudy = machine.stage_study(study, record.name, round_.epochs)
            ids[optuna_study_id(ostudy)] = record.name
    return ids


def _check_sort(key: str, study: StudyRecord) -> None:
    params = [param_name(path) for path in study.spec.search.dimensions()]
    if key not in SORT_KEYS and key not in params:
        choices = ", ".join([*SORT_KEYS, *params])
        raise BadQueryError("query.sort", f"{key!r} is not one of {choices}")


def _view(row: TrialRow, stages: dict[int, str]) -> TrialView:
    """A trial's row as a page lists it."""
    start, end = row.started, row.completed
    return TrialView(
        number=row.number,
        stage=stages[row.study_id],
        state=STATE_NAMES[row.state],
        value=row.value,
        params=row.params,
        epochs=row.epochs,
        duration=(end - start).total_seconds() if start and end else None,
        started_at=_iso(start),
        worker=row.worker,
        reason=row.attrs.get("fail_reason"),
        retry_of=row.attrs.get("retry_of"),
        seeded=bool(row.attrs.get("seeded", False)),
    )


def _iso(moment: datetime | None) -> str | None:
    """Optuna keeps the server's local time, naive: given its offset here."""
    return None if moment is None else moment.astimezone().isoformat()
