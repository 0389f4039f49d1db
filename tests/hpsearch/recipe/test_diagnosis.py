from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hpsearch.data import DataBundle, load_data
from hpsearch.metrics import evaluate
from hpsearch.recipe import diagnose
from hpsearch.recipe._common import without_regularization
from hpsearch.recipe._diagnosis import ADVICE, weak_classes, with_weak_classes
from hpsearch.results import Diagnosis
from hpsearch.spec import load_spec, spec_with
from hpsearch.training import Trainer
from tests.conftest import CPU

THRESHOLDS: dict[str, Any] = {
    "overfit_gap": 0.10,
    "underfit_train_accuracy": 0.9,
    "improving_gain": 0.005,
}


def curves(spec_updates: dict[str, Any], data: DataBundle | None = None) -> list[dict[str, float]]:
    spec = spec_with(load_spec("digits"), spec_updates)
    data = data or load_data(spec.dataset, spec.seed, CPU)
    return [m.as_dict() for m in Trainer(spec, data, CPU).fit().history]


def test_tiny_training_set_without_regularization_is_overfitting() -> None:
    spec = without_regularization(spec_with(load_spec("digits"), {"dataset.train_subset": 40}))
    data = load_data(spec.dataset, spec.seed, CPU)
    history = [
        m.as_dict() for m in Trainer(spec_with(spec, {"train.epochs": 40}), data, CPU).fit().history
    ]
    result = diagnose(history, **THRESHOLDS)
    assert result["verdict"] == "overfitting"
    assert result["gap"] > 0.1
    assert "regularization" in result["advice"]


def test_a_run_cut_far_too_short_is_not_called_a_good_fit(digits_data: DataBundle) -> None:
    history = curves({"train.epochs": 2, "train.lr": 0.01, "train.warmup_epochs": 0}, digits_data)
    result = diagnose(history, **THRESHOLDS)
    assert result["verdict"] in ("still improving", "underfitting")
    assert "train longer" in result["advice"]


def test_a_finished_run_is_a_good_fit(digits_data: DataBundle) -> None:
    spec_updates = {"train.epochs": 25, "train.early_stopping_patience": 6}
    result = diagnose(curves(spec_updates, digits_data), **THRESHOLDS)
    assert result["verdict"] == "good fit"


def epoch(train_acc: float, val_acc: float, train_loss: float, val_loss: float) -> dict[str, float]:
    return {
        "train_accuracy": train_acc,
        "val_accuracy": val_acc,
        "train_loss": train_loss,
        "val_loss": val_loss,
    }


@pytest.mark.parametrize(
    ("history", "verdict"),
    [
        # validation loss turning up while training loss keeps falling, small accuracy gap
        (
            [epoch(0.9, 0.88, 1.0 - i * 0.1, 0.5 + abs(i - 2) * 0.15) for i in range(8)],
            "overfitting",
        ),
        # low training accuracy, flat, no gap
        ([epoch(0.6, 0.6, 1.2, 1.2) for _ in range(8)], "underfitting"),
        # validation accuracy climbing at the end
        ([epoch(0.5 + i * 0.05, 0.5 + i * 0.05, 1.0, 1.0) for i in range(8)], "still improving"),
    ],
)
def test_verdicts_on_constructed_curves(history: list[dict[str, float]], verdict: str) -> None:
    assert diagnose(history, **THRESHOLDS)["verdict"] == verdict


def test_classes_far_below_the_average_recall_on_test_are_named_in_the_advice() -> None:
    probs = np.zeros((30, 3))
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10)
    predicted = labels.copy()
    predicted[20:29] = 0  # class "c": 1 of 10 found (recall 0.1, the average (1 + 1 + 0.1) / 3)
    probs[np.arange(30), predicted] = 1.0
    test = evaluate(probs, labels, ("a", "b", "c"))
    assert weak_classes(test) == ["c"]
    good = Diagnosis(verdict="good fit", advice=ADVICE["good fit"], gap=0.0)
    named = with_weak_classes(good, test, "accuracy")
    assert named.weak_classes == ["c"]
    assert named.advice.startswith("nothing to change; on test, class recall of 'c' (0.10)")
    assert "search.objective: balanced_accuracy or macro_f1" in named.advice
    assert "search.objective" not in with_weak_classes(good, test, "macro_f1").advice
    # a class at more than half the average recall is not called weak
    predicted[20:29] = 2
    predicted[20:25] = 0  # recall 0.5: the average is 0.83, half of it 0.42
    probs = np.eye(3)[predicted]
    assert with_weak_classes(good, evaluate(probs, labels, ("a", "b", "c")), "accuracy") == good
