"""The up-front stages on a budget: the sanity checks and the range test together take at most
budget.up_front_share of budget.trial_epochs, their steps scaled down, and still judge."""

from __future__ import annotations

from hpsearch.data import DataBundle
from hpsearch.recipe import up_front_spec
from hpsearch.results import OverfitCheck
from hpsearch.spec import load_spec, spec_with
from hpsearch.stages import run_range_test, run_sanity
from tests.conftest import CPU, make_spec
from tests.hpsearch.stages.test_sanity import with_shuffled_labels


def test_scaled_steps_share_the_budget_and_keep_their_floors() -> None:
    spec = make_spec(budget={"trial_epochs": 60})  # 5 % of 60 epochs of 47 steps: 141 steps
    scaled = up_front_spec(spec, 47)
    assert scaled.recipe.sanity.overfit_steps == 56
    assert scaled.recipe.sanity.overfit_images == 28  # an image for every two of its steps
    assert scaled.recipe.range_test.steps == 56
    assert scaled.recipe.range_test.check_iterations == 28
    floors = up_front_spec(make_spec(budget={"trial_epochs": 5}), 10)
    assert floors.recipe.sanity.overfit_steps == 40
    assert floors.recipe.range_test.steps == 20
    assert floors.recipe.range_test.check_iterations == 20
    # no budget, the share off, or a budget large enough: the spec's own step counts
    for unscaled in (
        make_spec(),
        spec_with(spec, {"budget.up_front_share": None}),
        make_spec(budget={"trial_epochs": 100_000}),
    ):
        assert up_front_spec(unscaled, 47) == unscaled


def test_on_a_budget_the_checks_and_the_range_test_take_at_most_five_percent(
    digits_data: DataBundle,
) -> None:
    spec = spec_with(load_spec("digits"), {"budget.trial_epochs": 200})
    sanity, sanity_epochs = run_sanity(spec, digits_data, CPU)
    ranged, range_epochs = run_range_test(spec, digits_data, CPU)
    assert sanity.passed, sanity.advice
    assert ranged.passed, ranged.verdict
    assert sanity_epochs + range_epochs <= 0.05 * 200
    overfit = sanity.checks[1]
    assert isinstance(overfit, OverfitCheck)
    assert overfit.steps < spec.recipe.sanity.overfit_steps  # scaled down, and stored so
    assert len(ranged.curve.lr) < spec.recipe.range_test.steps
    assert ranged.range.low < ranged.suggested_lr < ranged.range.high

    # the scaled check still catches shuffled labels
    result, _ = run_sanity(spec, with_shuffled_labels(digits_data), CPU)
    assert not result.passed
    assert result.verdict in ("labels look random", "not learning")
