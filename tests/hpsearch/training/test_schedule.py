from __future__ import annotations

import pytest

from hpsearch.spec import TrainSpec
from hpsearch.training import learning_rate


def lr(progress: float, **fields: object) -> float:
    spec = TrainSpec.model_validate({"lr": 0.1, "epochs": 20, **fields})
    return learning_rate(spec, progress)


def test_constant() -> None:
    assert [lr(e, schedule="constant") for e in (0, 7, 20)] == [0.1, 0.1, 0.1]


def test_step_decays_by_gamma_every_step_size_epochs() -> None:
    fields = {"schedule": "step", "step_size": 5, "step_gamma": 0.5}
    assert lr(0, **fields) == pytest.approx(0.1)
    assert lr(4.99, **fields) == pytest.approx(0.1)
    assert lr(5, **fields) == pytest.approx(0.05)
    assert lr(12, **fields) == pytest.approx(0.025)


def test_cosine_runs_from_lr_to_the_floor() -> None:
    fields = {"schedule": "cosine", "min_lr_ratio": 0.1}
    assert lr(0, **fields) == pytest.approx(0.1)
    assert lr(10, **fields) == pytest.approx(0.055)  # halfway: the mean of 0.1 and 0.01
    assert lr(5, **fields) == pytest.approx(0.01 + 0.09 * 0.5 * (1 + 0.7071067811865476))
    assert lr(20, **fields) == pytest.approx(0.01)


def test_linear_decays_evenly_to_zero() -> None:
    assert [lr(e, schedule="linear") for e in (0, 5, 10, 20)] == pytest.approx(
        [0.1, 0.075, 0.05, 0.0]
    )


def test_warmup_ramps_up_then_the_schedule_spans_the_rest() -> None:
    fields = {"schedule": "cosine", "warmup_epochs": 4}
    assert lr(1, **fields) == pytest.approx(0.025)
    assert lr(2, **fields) == pytest.approx(0.05)
    assert lr(4, **fields) == pytest.approx(0.1)
    assert lr(12, **fields) == pytest.approx(0.05)  # the middle of the 16 cosine epochs
    assert lr(2, schedule="step", warmup_epochs=4) == pytest.approx(0.05)
