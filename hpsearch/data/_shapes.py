"""A procedurally generated, CIFAR-shaped (3x32x32, 10 classes) image set.

Each image is one coloured shape (class) at a random place and size on a random background with
pixel noise. Generation is vectorized and seeded, so any size is available offline in a second or
two and two runs with one seed see the same pixels. All ten shapes are mirror-symmetric, so a
horizontal flip preserves labels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hpsearch.catalog import DATASETS

SIDE = 32


def generate_shapes(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` images ``(N, 3, 32, 32)`` uint8 with balanced labels ``(N,)`` int64."""
    g = torch.Generator().manual_seed(seed)
    num_classes = DATASETS["shapes"].num_classes
    labels = torch.arange(size) % num_classes
    labels = labels[torch.randperm(size, generator=g)]

    centre = 10 + 12 * torch.rand(size, 2, generator=g)  # (N, 2) in pixels
    radius = 5 + 6 * torch.rand(size, generator=g)  # (N,)
    grid = torch.arange(SIDE, dtype=torch.float32)
    dy = grid.view(1, SIDE, 1) - centre[:, 1].view(-1, 1, 1)  # (N, H, 1)
    dx = grid.view(1, 1, SIDE) - centre[:, 0].view(-1, 1, 1)  # (N, 1, W)
    mask = torch.zeros(size, SIDE, SIDE, dtype=torch.bool)
    for c in range(num_classes):
        rows = labels == c
        mask[rows] = _shape_mask(c, dx[rows], dy[rows], radius[rows].view(-1, 1, 1))

    # Light shape on dark ground or the reverse, so colour alone never gives the class away.
    dark = 0.45 * torch.rand(size, 3, 1, 1, generator=g)
    light = 0.55 + 0.45 * torch.rand(size, 3, 1, 1, generator=g)
    swap = torch.rand(size, 1, 1, 1, generator=g) < 0.5
    fg, bg = torch.where(swap, dark, light), torch.where(swap, light, dark)
    images = torch.where(mask.unsqueeze(1), fg, bg)  # (N, 3, H, W)
    images = images + 0.06 * torch.randn(images.shape, generator=g)
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels.numpy(), labels.numpy().astype(np.int64)


def _shape_mask(c: int, dx: Tensor, dy: Tensor, r: Tensor) -> Tensor:
    """Boolean mask ``(n, H, W)`` of shape class ``c`` of radius ``r`` around the origin."""
    ax, ay = dx.abs(), dy.abs()
    t = (0.25 * r).clamp(min=1.0)  # stroke half-width
    box = torch.maximum(ax, ay)
    masks = (
        lambda: dx**2 + dy**2 <= r**2,  # disc
        lambda: box <= 0.8 * r,  # square
        lambda: (ay <= 0.8 * r) & (ax <= (dy + 0.8 * r) * 0.6),  # triangle, apex up
        lambda: (dx**2 + dy**2 <= r**2) & (dx**2 + dy**2 >= (0.55 * r) ** 2),  # ring
        lambda: ((ax <= t) & (ay <= r)) | ((ay <= t) & (ax <= r)),  # plus
        lambda: ((ax - ay).abs() <= t) & (box <= r),  # cross (x)
        lambda: (ay <= t) & (ax <= r),  # horizontal bar
        lambda: (ax <= t) & (ay <= r),  # vertical bar
        lambda: ax + ay <= r,  # diamond
        lambda: (box <= r) & (box >= r - 1.5 * t),  # square frame
    )
    return masks[c]().expand(-1, SIDE, SIDE)
