from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hpsearch.data import DataBundle
from hpsearch.models import RegularizedCNN
from hpsearch.results import InitialLossCheck, OverfitCheck
from hpsearch.spec import load_spec, spec_with
from hpsearch.stages import check_initial_loss, check_overfit, run_sanity
from tests.conftest import CPU

DIGITS = load_spec("digits")


def test_a_sound_setup_passes_both_checks(digits_data: DataBundle) -> None:
    result, epochs = run_sanity(DIGITS, digits_data, CPU)
    assert result.passed
    initial, overfit = result.checks
    assert isinstance(initial, InitialLossCheck)
    assert isinstance(overfit, OverfitCheck)
    assert initial.measured == pytest.approx(math.log(10), rel=0.05)
    assert overfit.train_accuracy >= 0.99
    assert overfit.curve[-1] is not None
    assert overfit.curve[0] is not None
    assert overfit.curve[-1] < overfit.curve[0] / 2
    assert epochs > 0


def test_shuffled_labels_are_caught(digits_data: DataBundle) -> None:
    g = torch.Generator().manual_seed(0)
    shuffled = digits_data.train.labels[torch.randperm(len(digits_data.train), generator=g)]
    broken = dataclasses.replace(
        digits_data, train=dataclasses.replace(digits_data.train, labels=shuffled)
    )
    result, _ = run_sanity(DIGITS, broken, CPU)
    assert not result.passed
    assert result.verdict == "labels look random"
    assert "shuffled" in result.advice
    overfit = result.checks[1]
    assert isinstance(overfit, OverfitCheck)
    assert overfit.val_accuracy is not None
    assert overfit.val_accuracy < 0.2


@pytest.mark.parametrize("outputs", [5, 20])
def test_a_head_with_the_wrong_number_of_classes_is_caught(
    digits_data: DataBundle, outputs: int
) -> None:
    model = RegularizedCNN(DIGITS.model, in_channels=1, num_classes=outputs)
    result, _ = run_sanity(DIGITS, digits_data, CPU, model=model)
    assert result.verdict == "head mismatch"
    assert f"{outputs} outputs but digits has 10 classes" in result.advice


def test_an_overconfident_head_fails_the_initial_loss(digits_data: DataBundle) -> None:
    model = RegularizedCNN(DIGITS.model, in_channels=1, num_classes=10)
    torch.nn.init.normal_(model.head.weight, std=3.0)
    result = check_initial_loss(DIGITS, digits_data, CPU, model=model)
    assert result.verdict == "initial loss off"
    assert result.measured is not None
    assert result.measured > 1.15 * math.log(10)


def test_far_too_high_lr_fails_the_overfit_check_as_diverged(digits_data: DataBundle) -> None:
    result = check_overfit(spec_with(DIGITS, {"train.lr": 1000.0}), digits_data, CPU)
    assert result.verdict == "diverged"
    assert "too high" in result.advice


def test_far_too_low_lr_is_not_learning(digits_data: DataBundle) -> None:
    result = check_overfit(spec_with(DIGITS, {"train.lr": 1e-6}), digits_data, CPU)
    assert result.verdict == "not learning"
    assert "too low" in result.advice
