"""A best configuration on the edge of the searched range is pointed out, with what to widen."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from hpsearch.recipe._edges import edge_warnings, extend_edges
from hpsearch.results import Diagnosis, FinalResult, SearchRound
from hpsearch.scheduling import StageMachine
from hpsearch.scheduling._rounds import search_round
from hpsearch.scheduling._stage_trials import distributions
from hpsearch.spec import SearchRange, StudySpec
from hpsearch.storage import Store
from hpsearch.views import summary
from tests.conftest import tiny_study

WD = {"low": 1e-6, "high": 1e-2}
SEARCHED = {
    "lr": SearchRange(low=1e-4, high=1.0),
    "weight_decay": SearchRange(low=1e-6, high=1e-2),
}


@pytest.mark.parametrize(
    ("best", "words"),
    [
        (
            {"lr": 0.997, "weight_decay": 1e-4},
            ["lr (0.997) lies at the upper edge", "search.lr.high"],
        ),
        (
            {"lr": 0.01, "weight_decay": 1.1e-6},
            ["weight_decay", "lower edge", "search.weight_decay.low"],
        ),
    ],
)
def test_a_best_value_on_an_edge_is_pointed_out(best: dict[str, float], words: list[str]) -> None:
    (warning,) = edge_warnings(tiny_study(), SEARCHED, best)
    assert all(w in warning for w in words), warning


def test_a_best_value_inside_the_range_says_nothing() -> None:
    assert edge_warnings(tiny_study(), SEARCHED, {"lr": 0.05, "weight_decay": 1e-4}) == []


def test_an_lr_range_the_range_test_set_points_at_the_range_test() -> None:
    searched = SEARCHED | {"lr": SearchRange(low=0.01, high=0.3)}
    (warning,) = edge_warnings(tiny_study(), searched, {"lr": 0.29, "weight_decay": 1e-4})
    assert "raise recipe.range_test.decades_above" in warning


def test_the_summary_of_a_study_says_its_best_lr_is_on_the_edge(storage_url: str) -> None:
    store = Store(storage_url)
    study = store.create_study(tiny_study("edgy", recipe={"refine": {"rounds": 0}}))
    stored = {k: {"low": r.low, "high": r.high, "log": r.log} for k, r in SEARCHED.items()}
    setup: dict[str, Any] = {"ranges": stored, "epochs": 2, "trials": 1}
    store.start_stage(study.id, "coarse", 2, setup)
    store.update_stage(study.id, "coarse", status="completed")
    final = FinalResult(
        params={"train.lr": 0.997, "train.weight_decay": 1e-4},
        history=[],
        best_epoch=1,
        weights_epoch=1,
        val_accuracy=0.9,
        train_accuracy=0.95,
        test_accuracy=0.89,
        test_loss=0.3,
        tta_flip=False,
        diagnosis=Diagnosis(verdict="good fit", advice="", gap=0.05),
        trial_epochs=6,
        seconds=1,
    )
    store.start_stage(study.id, "final", 3, final.model_dump(mode="json"))
    store.update_stage(study.id, "final", status="completed")

    view = summary(StageMachine(store), study.id)

    assert len(view.warnings) == 1
    assert "the best lr (0.997) lies at the upper edge" in view.warnings[0]


# --- the reaction: the next round looks past the edge ----------------------------------------


def past(ranges: dict[str, SearchRange], previous: dict[str, SearchRange]) -> dict[str, str]:
    """The sides of ``previous`` that ``ranges`` reach past, as a round reads them back."""
    round_ = SearchRound(ranges=ranges, previous_ranges=previous, epochs=1, trials=1)
    return dict(round_.extended)


def test_a_round_searches_past_the_edge_its_best_lies_on() -> None:
    """Log scale: margin squared past the edge; the other side narrowed as usual."""
    previous = {
        "lr": SearchRange(low=1e-4, high=1.0),
        "weight_decay": SearchRange(low=1e-6, high=1e-2),
    }
    narrowed = {
        "lr": SearchRange(low=0.05, high=1.0),
        "weight_decay": SearchRange(low=1e-5, high=1e-3),
    }
    ranges = extend_edges(
        tiny_study(), narrowed, previous, {"lr": 0.997, "weight_decay": 1e-4}, margin=2.0
    )
    assert past(ranges, previous) == {"lr": "upper"}
    assert ranges["lr"] == SearchRange(low=0.05, high=4.0)
    assert ranges["weight_decay"] == narrowed["weight_decay"]


def test_an_extension_stops_where_the_field_stops() -> None:
    """The LR no further than the range test's sweep; a dropout never past 1; a linear range
    by the previous width; a lower edge at 0 that nothing is below stays."""
    spec = tiny_study(search={"extra": {"model.dropout": {"low": 0.0, "high": 0.6, "log": False}}})
    previous = {
        "lr": SearchRange(low=0.1, high=8.0),
        "model.dropout": SearchRange(low=0.0, high=0.6, log=False),
    }
    best = {"lr": 7.9, "model.dropout": 0.59}
    ranges = extend_edges(spec, dict(previous), previous, best, margin=2.0)
    assert ranges["lr"].high == spec.recipe.range_test.max_lr  # 8 x 4 capped at the sweep's 10
    assert ranges["model.dropout"] == SearchRange(low=0.0, high=0.6, log=False)  # 1.2 is no dropout
    assert past(ranges, previous) == {"lr": "upper"}
    ranges = extend_edges(
        spec, dict(previous), previous, {"lr": 1.0, "model.dropout": 0.0}, margin=1.5
    )
    assert past(ranges, previous) == {}  # dropout below 0 is no dropout either
    near_top = {"lr": 1.0, "model.dropout": 0.59}
    previous["model.dropout"] = SearchRange(low=0.0, high=0.4, log=False)
    near_top["model.dropout"] = 0.395
    ranges = extend_edges(spec, dict(previous), previous, near_top, margin=1.5)
    assert ranges["model.dropout"].high == pytest.approx(0.6)  # 0.4 + (1.5 - 1) x 0.4
    assert past(ranges, previous) == {"model.dropout": "upper"}


def test_the_refine_round_after_a_best_on_the_edge_looks_past_it_and_the_summary_says_so(
    storage_url: str,
) -> None:
    """The documented reaction (docs/RECIPE.md, "What the summary points out"): the coarse
    stage's best LR lies at the top of its range, so refine-1 searches past that edge, and the
    study's summary says what it did."""
    store = Store(storage_url)
    spec = tiny_study("edge", recipe={"refine": {"rounds": 1, "continue_top": 0}})
    machine, study_id = _coarse_done_with_best_on_the_edge(store, spec)
    item = machine.next_item(study_id)

    assert not isinstance(item, str)
    assert item.stage == "refine-1"
    refine = search_round(store.stage(study_id, "refine-1"))  # type: ignore[arg-type]
    assert refine is not None
    assert refine.extended == {"lr": "upper"}
    assert refine.ranges["lr"].high == pytest.approx(0.1 * 2.0**2)  # margin 2, squared
    assert refine.ranges["lr"].low > 1e-3  # narrowed to the top trials on the other side
    assert refine.ranges["weight_decay"].high <= WD["high"]  # not on an edge: narrowed only
    (note,) = [w for w in summary(machine, study_id).warnings if "refine-1 searched past" in w]
    assert "the best lr lay at the upper edge" in note
    assert "to 0.4" in note


def test_a_study_can_keep_every_round_inside_the_one_before(storage_url: str) -> None:
    store = Store(storage_url)
    spec = tiny_study(
        "inside", recipe={"refine": {"rounds": 1, "continue_top": 0, "extend_edges": False}}
    )
    machine, study_id = _coarse_done_with_best_on_the_edge(store, spec)
    machine.next_item(study_id)
    refine = search_round(store.stage(study_id, "refine-1"))  # type: ignore[arg-type]
    assert refine is not None
    assert refine.extended == {}
    assert refine.ranges["lr"].high == 0.1
    assert not [w for w in summary(machine, study_id).warnings if "searched past" in w]


def _coarse_done_with_best_on_the_edge(store: Store, spec: StudySpec) -> tuple[StageMachine, int]:
    """A study whose coarse stage is over, its best LR (0.099) at the top of [1e-3, 0.1]."""
    study = store.create_study(spec)
    machine = StageMachine(store)
    for position, stage in enumerate(("sanity", "range_test")):
        store.start_stage(study.id, stage, position, {"reason": "not part of this test"})
        store.update_stage(study.id, stage, status="skipped")
    coarse = SearchRound(
        ranges={"lr": SearchRange(low=1e-3, high=0.1), "weight_decay": SearchRange(**WD)},
        epochs=spec.recipe.coarse.epochs,
        trials=4,
    )
    store.start_stage(study.id, "coarse", 2, coarse.model_dump(mode="json"))
    ostudy = machine.rounds.stage_study(study, "coarse", coarse.epochs)
    dists = distributions(coarse.ranges)
    for lr, value in ((0.099, 0.9), (0.05, 0.8), (0.01, 0.6), (0.002, 0.3)):
        ostudy.add_trial(
            optuna.trial.create_trial(
                params={"lr": lr, "weight_decay": 1e-4}, distributions=dists, value=value
            )
        )
    store.update_stage(study.id, "coarse", status="completed")
    return machine, study.id
