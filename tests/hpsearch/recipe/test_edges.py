"""A best configuration on the edge of the searched range is pointed out, with what to widen."""

from __future__ import annotations

from typing import Any

import pytest

from hpsearch.recipe import StageMachine
from hpsearch.recipe._edges import edge_warnings
from hpsearch.results import Diagnosis, FinalResult
from hpsearch.storage import Store
from hpsearch.views import summary
from tests.conftest import tiny_study

SEARCHED = {
    "lr": {"low": 1e-4, "high": 1.0, "log": True},
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
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
    searched = SEARCHED | {"lr": {"low": 0.01, "high": 0.3, "log": True}}
    (warning,) = edge_warnings(tiny_study(), searched, {"lr": 0.29, "weight_decay": 1e-4})
    assert "raise recipe.range_test.decades_above" in warning


def test_the_summary_of_a_study_says_its_best_lr_is_on_the_edge(storage_url: str) -> None:
    store = Store(storage_url)
    study = store.create_study(tiny_study("edgy", recipe={"refine": {"rounds": 0}}))
    setup: dict[str, Any] = {"ranges": SEARCHED, "epochs": 2, "trials": 1}
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
