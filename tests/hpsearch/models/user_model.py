"""A user's own model, as a spec names it: ``python:tests.hpsearch.models.user_model:small_cnn``."""

from __future__ import annotations

from typing import Any

from torch import nn

CALLS: list[dict[str, Any]] = []  # the keyword arguments of every call, for the tests to read


def small_cnn(*, num_classes: int, in_channels: int, image_size: int, width: int = 16) -> nn.Module:
    """conv3x3 -> batch norm -> ReLU -> global average pool -> linear, ``width`` channels wide."""
    CALLS.append(
        {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "image_size": image_size,
            "width": width,
        }
    )
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False),  # (B, width, H, W)
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),  # (B, width, 1, 1)
        nn.Flatten(),
        nn.Linear(width, num_classes),  # (B, num_classes)
    )


def not_a_model(**sizes: int) -> list[int]:
    """A builder that returns something other than a module."""
    return list(sizes.values())


def pools_everything_away(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Pools 8x8 images below 1px: cannot take the digits."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3),
        nn.MaxPool2d(4),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.LazyLinear(num_classes),
    )


class _Hungry(nn.Module):
    def forward(self, x: Any) -> Any:
        raise MemoryError  # what a model too large for the machine raises on its first image


def too_hungry(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """A model whose first forward runs out of memory."""
    return nn.Sequential(nn.Conv2d(in_channels, 2, 1), _Hungry())
