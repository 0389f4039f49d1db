from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from hpsearch.data import DataBundle, load_data
from hpsearch.models import RegularizedCNN
from hpsearch.results import InitialLossCheck, OverfitCheck
from hpsearch.spec import load_spec, spec_with
from hpsearch.stages import check_initial_loss, check_overfit, run_sanity
from hpsearch.stages._sanity import _learning
from tests.conftest import CPU, make_spec

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


def with_shuffled_labels(data: DataBundle) -> DataBundle:
    """``data`` with its training labels shuffled (seeded): labels unrelated to the images."""
    g = torch.Generator().manual_seed(0)
    shuffled = data.train.labels[torch.randperm(len(data.train), generator=g)]
    return dataclasses.replace(data, train=dataclasses.replace(data.train, labels=shuffled))


def test_shuffled_labels_are_caught(digits_data: DataBundle) -> None:
    result, _ = run_sanity(DIGITS, with_shuffled_labels(digits_data), CPU)
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


def mnist_sized(path: Path, shuffle: bool = False) -> Path:
    """A few hundred MNIST-sized images (28x28 grey): scikit-learn's digits, scaled up, noisy."""
    digits = load_digits()
    x = torch.tensor(digits.images[:600], dtype=torch.float32)[:, None] / 16.0
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    labels = digits.target[:600]
    if shuffle:
        labels = np.random.default_rng(0).permutation(labels)
    np.savez(path, x_train=(x[:, 0] * 255).round().to(torch.uint8).numpy(), y_train=labels)
    return path


def overfit_of(path: Path, **sanity: object) -> OverfitCheck:
    """The overfit check of a small CNN (widths [16, 32], nesterov at the spec's lr 0.05, batches
    of 64) on the images at ``path``."""
    spec = make_spec(
        dataset={"name": "arrays", "path": str(path)},
        model={"widths": [16, 32], "norm": "batch"},
        train={"epochs": 3, "batch_size": 64, "lr": 0.05, "warmup_epochs": 0},
        recipe={"sanity": sanity},
    )
    return check_overfit(spec, load_data(spec.dataset, spec.seed), CPU)


def test_a_healthy_small_cnn_that_fits_slowly_passes_on_its_trend(tmp_path: Path) -> None:
    judged = overfit_of(mnist_sized(tmp_path / "mnist-sized.npz"))
    # not every one of the 320 images fitted in 300 steps, the loss falling and validation
    # above chance: the check before the trend counted stopped the study here ("not memorizing")
    assert judged.train_accuracy < judged.pass_accuracy
    assert judged.val_z is not None
    assert judged.val_z > 3.0
    assert judged.passed
    assert judged.last_loss is not None
    assert judged.first_loss is not None
    assert judged.last_loss < 0.25 * judged.first_loss
    assert "the network learns" in judged.advice


def test_the_trend_can_be_turned_off_and_then_only_a_fitted_sample_passes() -> None:
    spec = make_spec(recipe={"sanity": {"overfit_trend_drop": None}})
    assert spec.recipe.sanity.overfit_trend_drop is None
    assert make_spec().recipe.sanity.overfit_trend_drop == 0.5
    assert _learning(0.75, first=2.3, last=0.5)  # fell by 78 %
    assert not _learning(0.75, first=2.3, last=1.0)  # by 57 %: not memorizing, as before
    assert not _learning(None, first=2.3, last=0.01)  # off: only a fitted sample passes


def test_shuffled_labels_still_fail_the_trend_judged_check(tmp_path: Path) -> None:
    result = overfit_of(mnist_sized(tmp_path / "shuffled.npz", shuffle=True))
    assert not result.passed
    assert result.verdict in ("not learning", "labels look random")
