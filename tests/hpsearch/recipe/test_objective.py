"""``search.objective: macro_f1`` on a 90/10 imbalanced set: the search maximises macro-F1."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState


def _trials(url: str) -> list[FrozenTrial]:
    """The complete trials of the study's search rounds."""
    return [
        t
        for stage in ("coarse", "refine-1")
        for t in optuna.load_study(study_name=f"eights:{stage}", storage=url).trials
        if t.state == TrialState.COMPLETE
    ]


def _best(trial: FrozenTrial, key: str) -> float:
    return max(float(e[key]) for e in trial.user_attrs["history"])


def test_trial_values_are_macro_f1_and_the_best_trial_is_the_best_by_it(
    imbalanced_study: tuple[str, dict[str, Any]],
) -> None:
    url, result = imbalanced_study
    assert result["state"] == "completed"
    trials = _trials(url)
    assert len(trials) >= 6
    for trial in trials:  # the value and every intermediate value (what pruning read): macro-F1
        history = trial.user_attrs["history"]
        assert trial.value == pytest.approx(_best(trial, "val_macro_f1"))
        assert trial.intermediate_values == {
            e["epoch"]: pytest.approx(e["val_macro_f1"]) for e in history
        }
    # on 90/10 data macro-F1 is not accuracy: predicting "other" alone is 90 % accurate
    assert any(t.value != pytest.approx(_best(t, "val_accuracy")) for t in trials)

    # the final training is of the best trial by macro-F1 (or of one tied with it)
    top = max(_best(t, "val_macro_f1") for t in trials)
    tied = [t.params for t in trials if _best(t, "val_macro_f1") == top]
    final = next(s["result"] for s in result["stages"] if s["name"] == "final")
    assert {
        "lr": final["params"]["train.lr"],
        "weight_decay": final["params"]["train.weight_decay"],
    } in tied
    assert result["best"]["objective"] == "macro_f1"
    kept = final["history"][final["weights_epoch"] - 1]
    assert final["objective"] == "macro_f1"
    assert final["val_value"] == pytest.approx(kept["val_macro_f1"])
    assert result["best"]["value"] == pytest.approx(final["val_value"])


def test_the_final_result_keeps_the_test_splits_metrics(
    imbalanced_study: tuple[str, dict[str, Any]],
) -> None:
    _, result = imbalanced_study
    final = next(s["result"] for s in result["stages"] if s["name"] == "final")
    test = final["test_metrics"]
    assert [c["name"] for c in test["classes"]] == ["other", "eight"]
    supports = [c["support"] for c in test["classes"]]
    assert [sum(row) for row in test["confusion"]] == supports  # rows: the true class
    assert 0.05 < supports[1] / sum(supports) < 0.15  # 90/10
    correct = test["confusion"][0][0] + test["confusion"][1][1]
    assert test["accuracy"] == pytest.approx(correct / sum(supports))
    assert test["accuracy"] == pytest.approx(final["test_accuracy"])
    recalls = [c["recall"] for c in test["classes"]]
    assert test["balanced_accuracy"] == pytest.approx(sum(recalls) / 2)
    assert 0.5 <= test["roc_auc"] <= 1.0
