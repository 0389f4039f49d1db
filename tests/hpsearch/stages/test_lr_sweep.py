from __future__ import annotations

import numpy as np

from hpsearch.data import DataBundle
from hpsearch.spec import load_spec, spec_with
from hpsearch.stages import check_lr, run_range_test
from tests.conftest import CPU

DIGITS = load_spec("digits")


def test_suggested_lr_lowers_the_training_loss_within_100_iterations(
    digits_data: DataBundle,
) -> None:
    result, _ = run_range_test(DIGITS, digits_data, CPU)
    check = check_lr(DIGITS, digits_data, CPU, result.suggested_lr)  # fresh model, 100 iterations
    assert check.iterations == 100
    assert check.passed
    assert check.loss_after is not None
    assert check.loss_before is not None
    assert check.loss_after < 0.8 * check.loss_before
    assert result.check.passed


def test_curve_suggestion_and_range_are_consistent(digits_data: DataBundle) -> None:
    result, epochs = run_range_test(DIGITS, digits_data, CPU)
    curve = result.curve
    lrs = np.asarray(curve.lr)
    assert len(lrs) == len(curve.loss) == len(curve.smoothed) > 20
    assert (np.diff(lrs) > 0).all()
    assert lrs[0] == DIGITS.recipe.range_test.min_lr
    low, high = result.range.low, result.range.high
    assert DIGITS.search.lr.low <= low < result.suggested_lr <= high <= DIGITS.search.lr.high
    assert result.lr_steepest <= result.lr_min_loss
    # the smoothed loss falls from the start to the suggestion
    at = int(np.searchsorted(lrs, result.suggested_lr))
    assert curve.smoothed[at] < curve.smoothed[0]
    assert epochs > 0  # the sweep and the check, in epochs of the training split


def test_the_sweep_can_set_the_upper_end_at_the_lr_of_its_minimum_loss(
    digits_data: DataBundle,
) -> None:
    """``upper: min_loss``: the coarse range reaches the largest LR at which the loss still
    fell (within the spec's outer bounds), the lower end as before; the sweep is the same."""
    spec = spec_with(DIGITS, {"search.lr": {"low": 1e-6, "high": 10.0}})
    steepest, _ = run_range_test(spec, digits_data, CPU)
    wide = spec_with(spec, {"recipe.range_test.upper": "min_loss"})
    result, _ = run_range_test(wide, digits_data, CPU)
    assert result.curve == steepest.curve
    assert result.range.low == steepest.range.low
    assert result.lr_min_loss > steepest.range.high  # on digits the loss falls well beyond it
    assert result.range.high == result.lr_min_loss
