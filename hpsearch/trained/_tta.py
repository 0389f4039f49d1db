"""Test-time augmentation: the class probabilities of a batch, averaged over fixed views of it.

- ``none``: the images as they are;
- ``flip``: the images and their mirrors (only where a mirrored image keeps its class);
- ``crops``: the four corners and the centre of each image reflect-padded by ``padding`` pixels
  (the padding of the training crops), each with its mirror when flips are allowed: ten views,
  or five.

The same function scores a model in the final stage and in the file it is saved to, so a saved
model reproduces the stored test metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

Tta = Literal["none", "flip", "crops"]


def crop_views(x: Tensor, padding: int) -> list[Tensor]:
    """The five crops of ``x`` (N, C, H, W) reflect-padded by ``padding``, each of x's size:
    top-left, top-right, bottom-left, bottom-right, centre (the centre is ``x`` itself)."""
    if padding <= 0:
        return [x]
    h, w = x.shape[-2:]
    padded = F.pad(x, (padding, padding, padding, padding), mode="reflect")
    far_row, far_col = 2 * padding, 2 * padding
    corners = [(0, 0), (0, far_col), (far_row, 0), (far_row, far_col)]
    return [padded[..., r : r + h, c : c + w] for r, c in corners] + [x]


def tta_probabilities(
    forward: Callable[[Tensor], Tensor],
    x: Tensor,
    tta: Tta = "none",
    *,
    flips: bool = True,
    padding: int = 4,
) -> Tensor:
    """Softmax probabilities (N, classes) of ``forward`` on the normalized batch ``x``, averaged
    over the views ``tta`` names (``flips``: whether mirrored views are among them)."""
    if tta == "crops":
        views = crop_views(x, padding)
        total: Tensor | None = None
        for view in views:
            for image in (view, view.flip(3)) if flips else (view,):
                probs = forward(image.contiguous()).float().softmax(1)
                total = probs if total is None else total + probs
        assert total is not None
        return total / (len(views) * (2 if flips else 1))
    probs = forward(x).float().softmax(1)
    if tta == "flip":
        return (probs + forward(x.flip(3)).float().softmax(1)) / 2
    return probs
