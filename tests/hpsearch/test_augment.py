from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hpsearch.augment import (
    Augmenter,
    color_jitter,
    cutmix,
    cutout,
    mixup,
    random_crop,
    random_flip,
    random_translate,
)
from hpsearch.spec import AugmentSpec
from tests.conftest import CPU


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unique_images(b: int = 64, c: int = 3, side: int = 8) -> torch.Tensor:
    """Images whose every pixel value is distinct, so a crop's source window can be found."""
    return torch.arange(b * c * side * side, dtype=torch.float32).view(b, c, side, side) + 1


def test_random_crop_takes_a_window_of_the_reflect_padded_image() -> None:
    x = unique_images()
    out = random_crop(x, 2, gen())
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    offsets = set()
    for b in range(x.shape[0]):
        found = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if torch.equal(out[b], padded[b, :, i : i + 8, j : j + 8])
        ]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 10  # per-sample offsets, not one shift for the whole batch


def test_translation_shifts_and_fills_with_zeros() -> None:
    x = unique_images()
    out = random_translate(x, 2, gen())
    shifted = 0
    for b in range(x.shape[0]):
        kept = out[b][out[b] != 0]
        assert torch.isin(kept, x[b]).all()  # only the image's own pixels, or zero fill
        zeros = int((out[b] == 0).sum())
        shifted += zeros > 0
        assert zeros % 3 == 0  # whole pixels (all channels) are filled
    assert shifted > x.shape[0] // 2


def test_flip_mirrors_about_half_of_the_images() -> None:
    x = unique_images(b=400)
    out = random_flip(x, gen())
    flipped = [torch.equal(out[b], x[b].flip(2)) for b in range(400)]
    same = [torch.equal(out[b], x[b]) for b in range(400)]
    assert all(f or s for f, s in zip(flipped, same, strict=True))
    assert 150 < sum(flipped) < 250


def test_color_jitter_changes_brightness_and_contrast_within_range() -> None:
    x = torch.rand(256, 3, 8, 8, generator=gen(1)) * 0.5 + 0.25
    bright = color_jitter(x, 0.4, 0.0, gen())
    ratio = bright.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3))
    assert ratio.min() > 0.59
    assert ratio.max() < 1.41
    assert ratio.std() > 0.1
    contrast = color_jitter(x, 0.0, 0.4, gen())
    spread = contrast.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert spread.min() > 0.59
    assert spread.std() > 0.1
    assert torch.allclose(contrast.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-3)
    assert bright.min() >= 0
    assert bright.max() <= 1
    assert torch.equal(color_jitter(x, 0.0, 0.0, gen()), x)


def test_cutout_zeroes_one_square_and_nothing_else() -> None:
    x = torch.ones(200, 3, 16, 16)
    out = cutout(x, 4, gen())
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert zeros.max() == 16
    assert zeros.min() >= 4
    assert (zeros == 16).float().mean() > 0.5  # most squares fall fully inside
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # the same square in every channel
    for b in range(200):
        rows = (out[b, 0] == 0).any(1).nonzero()
        cols = (out[b, 0] == 0).any(0).nonzero()
        height = int(rows.max() - rows.min() + 1)
        width = int(cols.max() - cols.min() + 1)
        assert height * width == zeros[b]  # a rectangle: the square clipped by the border


def constant_batch(b: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i, so mixed images reveal their partners."""
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 3, 8, 8).clone()
    return x, torch.arange(b) % 10


def test_mixup_targets_sum_to_one_in_the_images_proportion() -> None:
    x, labels = constant_batch()
    targets = F.one_hot(labels, 10).float()
    mixed, mixed_targets, lam = mixup(x, targets, 0.4, np.random.default_rng(0), gen())
    assert 0 < lam < 1
    assert torch.allclose(mixed_targets.sum(1), torch.ones(32))
    partner = ((mixed[:, 0, 0, 0] - lam * x[:, 0, 0, 0]) / (1 - lam)).round().long()
    expected = lam * targets + (1 - lam) * targets[partner]
    assert torch.allclose(mixed_targets, expected, atol=1e-5)
    assert (partner != torch.arange(32)).any()


def test_cutmix_targets_follow_the_pasted_area() -> None:
    x, labels = constant_batch()
    targets = F.one_hot(labels, 10).float()
    for seed in range(5):
        mixed, mixed_targets, lam = cutmix(x, targets, 1.0, np.random.default_rng(seed), gen(seed))
        assert torch.allclose(mixed_targets.sum(1), torch.ones(32))
        own_share = (mixed[:, 0] == x[:, 0]).float().mean(dim=(1, 2))
        moved = own_share < 1  # samples whose partner is another image
        assert torch.allclose(own_share[moved], torch.full_like(own_share[moved], lam))
        for i in moved.nonzero().flatten().tolist():
            partner = int(mixed[i, 0][mixed[i, 0] != i][0])
            if labels[i] != labels[partner]:
                assert mixed_targets[i, labels[i]] == pytest.approx(lam)
                assert mixed_targets[i, labels[partner]] == pytest.approx(1 - lam)


def test_augmenter_is_seeded_and_each_op_has_its_own_generator() -> None:
    x = unique_images()
    crop = Augmenter(AugmentSpec(crop_padding=2), 10, seed=5, device=CPU)
    crop_again = Augmenter(AugmentSpec(crop_padding=2), 10, seed=5, device=CPU)
    crop_flip = Augmenter(AugmentSpec(crop_padding=2, flip=True), 10, seed=5, device=CPU)
    a, b, c = crop.pixels(x), crop_again.pixels(x), crop_flip.pixels(x)
    assert torch.equal(a, b)
    # adding flip does not change which crops were drawn: c is a, some images mirrored
    assert all(torch.equal(c[i], a[i]) or torch.equal(c[i], a[i].flip(2)) for i in range(64))
    assert not torch.equal(a, Augmenter(AugmentSpec(crop_padding=2), 10, 6, CPU).pixels(x))


def test_augmenter_returns_soft_targets_only_when_mixing() -> None:
    x, labels = constant_batch()
    plain = Augmenter(AugmentSpec(cutout=2), 10, 0, CPU)
    assert plain.normalized(x, labels)[1] is None
    both = Augmenter(AugmentSpec(mixup_alpha=0.2, cutmix_alpha=1.0), 10, 0, CPU)
    for _ in range(4):
        _, targets = both.normalized(x, labels)
        assert targets is not None
        assert targets.shape == (32, 10)
        assert torch.allclose(targets.sum(1), torch.ones(32))
