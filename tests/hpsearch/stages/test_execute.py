"""Doing a work item: given up part-way when told, and its outcome always valid JSON."""

from __future__ import annotations

import json

import pytest
import torch

from hpsearch.errors import CancelledError
from hpsearch.recipe import finite, first_non_finite
from hpsearch.results import WorkItem
from hpsearch.stages import execute
from tests.conftest import tiny_study

CPU = torch.device("cpu")


def item(kind: str, **sections: object) -> WorkItem:
    spec = tiny_study(**sections).model_dump(mode="json")  # type: ignore[arg-type]
    configs = [{"train.lr": 0.1, "train.weight_decay": 5e-4}] if kind == "final" else []
    return WorkItem.model_validate(
        {
            "study_id": 1,
            "study": "tiny",
            "stage": kind,
            "kind": kind,
            "spec": spec,
            "configs": configs,
        }
    )


@pytest.mark.parametrize("kind", ["sanity", "range_test", "final"])
def test_a_stage_is_given_up_at_the_next_step_once_cancelled(kind: str) -> None:
    steps = 0

    def cancelled() -> bool:
        nonlocal steps
        steps += 1
        return steps > 5  # a few steps in, the study is stopped

    with pytest.raises(CancelledError, match="given up part-way"):
        execute(item(kind), CPU, None, cancelled)
    assert steps == 6  # asked before every step, and not one step more


def test_a_final_training_told_to_stop_is_given_up_not_recorded_short() -> None:
    with pytest.raises(CancelledError, match="its study was stopped"):
        execute(item("final"), CPU, lambda epoch, metrics: epoch >= 2)


def test_an_outcome_holds_only_finite_numbers() -> None:
    blown = {"curve": {"loss": [2.3, float("nan"), float("inf")]}, "best": -float("inf"), "n": 3}
    assert first_non_finite(blown) == ".curve.loss[1]"
    clean = finite(blown)
    assert clean == {"curve": {"loss": [2.3, None, None]}, "best": None, "n": 3}
    assert first_non_finite(clean) is None
    json.dumps(clean, allow_nan=False)  # valid JSON for every database
