"""Batched, on-device data augmentation.

Every op takes a whole batch ``(B, C, H, W)`` and draws its randomness from its own seeded
generator, so turning one op on or off never changes what another op draws. Per-sample randomness
is drawn on the batch's device (no host round trip); the one-number-per-batch draws of mixup and
cutmix come from a host-side numpy generator, which also needs no device sync.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hpsearch.spec import AugmentSpec


def shift_crop(padded: Tensor, top: Tensor, left: Tensor, height: int, width: int) -> Tensor:
    """Per-sample crop: ``out[b] = padded[b, :, top[b]:top[b]+height, left[b]:left[b]+width]``."""
    b, c = padded.shape[:2]
    rows = top.view(b, 1) + torch.arange(height, device=padded.device)  # (B, H)
    cols = left.view(b, 1) + torch.arange(width, device=padded.device)  # (B, W)
    return padded[
        torch.arange(b, device=padded.device).view(b, 1, 1, 1),
        torch.arange(c, device=padded.device).view(1, c, 1, 1),
        rows.view(b, 1, height, 1),
        cols.view(b, 1, 1, width),
    ]


def random_crop(x: Tensor, padding: int, g: torch.Generator) -> Tensor:
    """Reflect-pad by ``padding`` and take a random crop of the original size."""
    return _random_shift(x, padding, g, mode="reflect")


def random_translate(x: Tensor, pixels: int, g: torch.Generator) -> Tensor:
    """Shift each image by up to ``pixels`` in x and y, filling with zeros (the background)."""
    return _random_shift(x, pixels, g, mode="constant")


def _random_shift(x: Tensor, pad: int, g: torch.Generator, mode: str) -> Tensor:
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=g, device=x.device)
    return shift_crop(padded, offsets[0], offsets[1], h, w)


def random_flip(x: Tensor, g: torch.Generator) -> Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=g, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def color_jitter(x: Tensor, brightness: float, contrast: float, g: torch.Generator) -> Tensor:
    """Scale brightness by [1-b, 1+b] and contrast by [1-c, 1+c]; ``x`` is in [0, 1]."""
    b = x.shape[0]
    factors = 2 * torch.rand(2, b, 1, 1, 1, generator=g, device=x.device) - 1  # in [-1, 1)
    x = x * (1 + brightness * factors[0])
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + contrast * factors[1]) + mean
    return x.clamp(0.0, 1.0)


def cutout(x: Tensor, size: int, g: torch.Generator) -> Tensor:
    """Zero a ``size`` x ``size`` square at a random centre of each image (may overhang the edge).

    Applied to normalized images, zero is the mean pixel.
    """
    b, _, h, w = x.shape
    centre = torch.rand(2, b, generator=g, device=x.device)
    top = (centre[0] * h).long() - size // 2  # (B,)
    left = (centre[1] * w).long() - size // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1) - top.view(b, 1, 1)  # (B, H, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - left.view(b, 1, 1)  # (B, 1, W)
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)  # (B, H, W)
    return x.masked_fill(inside.unsqueeze(1), 0.0)


def mixup(
    x: Tensor, targets: Tensor, alpha: float, rng: np.random.Generator, g: torch.Generator
) -> tuple[Tensor, Tensor, float]:
    """Blend each image and its soft target with a random partner: ``lam*a + (1-lam)*b``."""
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=g, device=x.device)
    return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm], lam


def cutmix(
    x: Tensor, targets: Tensor, alpha: float, rng: np.random.Generator, g: torch.Generator
) -> tuple[Tensor, Tensor, float]:
    """Paste a random box of a partner image; targets mix by the box's exact share of the area."""
    _, _, h, w = x.shape
    lam = float(rng.beta(alpha, alpha))
    cut = math.sqrt(1.0 - lam)
    ch, cw = round(h * cut), round(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    top, bottom = max(cy - ch // 2, 0), min(cy - ch // 2 + ch, h)
    left, right = max(cx - cw // 2, 0), min(cx - cw // 2 + cw, w)
    lam = 1.0 - (bottom - top) * (right - left) / (h * w)  # exact, after clipping to the image
    perm = torch.randperm(x.shape[0], generator=g, device=x.device)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    return mixed, lam * targets + (1 - lam) * targets[perm], lam


class Augmenter:
    """The augmentations a spec turns on, each with its own generator derived from ``seed``."""

    def __init__(self, spec: AugmentSpec, num_classes: int, seed: int, device: torch.device):
        self.spec = spec
        self.num_classes = num_classes
        self.generators = {
            name: torch.Generator(device=device).manual_seed(seed * 101 + i)
            for i, name in enumerate(("crop", "translate", "flip", "jitter", "cutout", "mix"))
        }
        self._rng = np.random.default_rng(seed * 101 + 99)

    @property
    def numpy_state(self) -> dict[str, Any]:
        """The host-side generator's state (mixup's and cutmix's draws): a checkpoint's."""
        return dict(self._rng.bit_generator.state)

    @numpy_state.setter
    def numpy_state(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state

    @property
    def mixes(self) -> bool:
        return self.spec.mixup_alpha > 0 or self.spec.cutmix_alpha > 0

    def pixels(self, x: Tensor) -> Tensor:
        """Ops on raw [0, 1] images: colour jitter, crop, translation, flip."""
        s = self.spec
        if s.brightness > 0 or s.contrast > 0:
            x = color_jitter(x, s.brightness, s.contrast, self.generators["jitter"])
        if s.crop_padding > 0:
            x = random_crop(x, s.crop_padding, self.generators["crop"])
        if s.translate > 0:
            x = random_translate(x, s.translate, self.generators["translate"])
        if s.flip:
            x = random_flip(x, self.generators["flip"])
        return x

    def normalized(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor | None]:
        """Ops on normalized images: cutout, then mixup or cutmix (one per batch, 50/50 if both).

        Returns the images and soft targets ``(B, num_classes)``, or None when nothing mixed.
        """
        s = self.spec
        if s.cutout > 0:
            x = cutout(x, s.cutout, self.generators["cutout"])
        if not self.mixes:
            return x, None
        targets = F.one_hot(labels, self.num_classes).to(x.dtype)
        use_cutmix = s.cutmix_alpha > 0 and (s.mixup_alpha == 0 or self._rng.random() < 0.5)
        if use_cutmix:
            x, targets, _ = cutmix(x, targets, s.cutmix_alpha, self._rng, self.generators["mix"])
        else:
            x, targets, _ = mixup(x, targets, s.mixup_alpha, self._rng, self.generators["mix"])
        return x, targets
