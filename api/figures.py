"""Figures of Optuna's own visualization module (plotly), for the dashboard and for scripts.

The study's search stages are plain Optuna studies, so ``optuna.visualization`` draws them as it
would any study: the optimization history of every round together, the importance of each
parameter (fANOVA), and the intermediate values (the pruning picture). On a large study the two
costly ones see a sample: importance the stage's completed trials up to ``IMPORTANCE_TRIALS``,
intermediate values up to ``CURVE_TRIALS`` curves (the best ones and an even spread of the rest),
copied into an in-memory study. Figures are kept until the study's trial counts change.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.protocol import Figure
from hpsearch.scheduling import StageMachine, is_search_stage, search_round
from hpsearch.storage import StudyRecord, optuna_schema

ChartKind = Literal["history", "importance", "intermediate"]
IMPORTANCE_TRIALS = 1000
CURVE_TRIALS = 300
_CACHED = 32


class Charts:
    """Builds figures and keeps the most recent ones (per process)."""

    def __init__(self, machine: StageMachine) -> None:
        self.machine = machine
        self._cache: OrderedDict[tuple[Any, ...], Figure] = OrderedDict()
        self._lock = threading.Lock()

    def figure(self, study: StudyRecord, kind: ChartKind, stage: str | None) -> Figure:
        """A plotly figure as JSON data; an empty figure with a note when there is nothing yet."""
        stages = self._stages(study)
        if stage is not None:
            stages = {name: s for name, s in stages.items() if name == stage}
        finished = [(name, self.machine.optuna.counts(s)) for name, s in stages.items()]
        # the figures read only complete and pruned trials: claims and starts keep them valid
        counts = tuple((name, c["complete"], c["pruned"]) for name, c in finished)
        key = (study.id, kind, stage, counts)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        figure = Figure.model_validate(_draw(kind, stages))
        with self._lock:
            self._cache[key] = figure
            while len(self._cache) > _CACHED:
                self._cache.popitem(last=False)
        return figure

    def _stages(self, study: StudyRecord) -> dict[str, optuna.Study]:
        out = {}
        for record in self.machine.store.stages(study.id):
            round_ = search_round(record) if is_search_stage(record.name) else None
            if round_ is not None:
                out[record.name] = self.machine.stage_study(study, record.name, round_.epochs)
        return out


def _draw(kind: ChartKind, stages: dict[str, optuna.Study]) -> dict[str, Any]:
    finished = {
        name: s.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        for name, s in stages.items()
    }
    complete = {n: [t for t in ts if t.state == TrialState.COMPLETE] for n, ts in finished.items()}
    if not any(complete.values()):
        return _empty("no completed trials yet")
    if kind == "history":
        figure = optuna.visualization.plot_optimization_history(
            [_copy(name, ts) for name, ts in complete.items() if ts],
            target_name="validation accuracy",
        )
    elif kind == "importance":
        name, trials = max(complete.items(), key=lambda item: len(item[1]))
        if len(trials) < 2:
            return _empty("importance needs two completed trials")
        sample = _spread(trials, IMPORTANCE_TRIALS)
        figure = optuna.visualization.plot_param_importances(
            _copy(name, sample), target_name="validation accuracy"
        )
        figure.update_layout(title=f"Parameter importance ({name}, {len(sample)} trials)")
    else:
        trials = [t for ts in finished.values() for t in ts if t.intermediate_values]
        best = sorted(_complete(trials), key=lambda t: t.value or 0.0, reverse=True)[:20]
        sample = _spread(trials, CURVE_TRIALS - len(best))
        chosen = {optuna_schema.trial_id(t): t for t in [*best, *sample]}
        figure = optuna.visualization.plot_intermediate_values(
            _copy("curves", list(chosen.values()))
        )
        figure.update_layout(
            title=f"Validation accuracy per epoch ({len(chosen)} of {len(trials)} trials)",
            showlegend=False,
        )
    figure.update_layout(margin={"l": 50, "r": 20, "t": 40, "b": 40}, template="plotly_white")
    data: dict[str, Any] = json.loads(figure.to_json())
    return data


def _complete(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE]


def _spread(trials: list[FrozenTrial], limit: int) -> list[FrozenTrial]:
    """At most ``limit`` trials, evenly spread over the list (all of them if few)."""
    if len(trials) <= limit:
        return list(trials)
    step = len(trials) / max(1, limit)
    return [trials[int(i * step)] for i in range(limit)]


def _copy(name: str, trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory study holding ``trials`` (Optuna's plots take studies)."""
    study = optuna.create_study(study_name=name, direction="maximize")
    study.add_trials(trials)
    return study


def _empty(note: str) -> dict[str, Any]:
    return {
        "data": [],
        "layout": {
            "annotations": [{"text": note, "showarrow": False, "font": {"size": 14}}],
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "template": "plotly_white",
        },
    }
