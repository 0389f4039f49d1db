"""Batches as index slices of a per-epoch permutation of on-device splits.

No per-sample Python: one ``randperm`` per epoch, then each batch is a gather, a float conversion,
the batched augmentations and a normalization, all on the device that holds the data.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from hpsearch.augment import Augmenter
from hpsearch.data._splits import DataBundle, Split

Batch = tuple[Tensor, Tensor, Tensor | None]  # images, labels, soft targets (None: use labels)


class TrainBatches:
    """Shuffled, augmented training batches; a fresh permutation every epoch."""

    def __init__(
        self,
        data: DataBundle,
        batch_size: int,
        augmenter: Augmenter,
        seed: int,
        channels_last: bool = False,
    ) -> None:
        self.data = data
        self.batch_size = min(batch_size, len(data.train))
        self.augmenter = augmenter
        self.channels_last = channels_last
        device = data.train.images.device
        self.generator = torch.Generator(device=device).manual_seed(seed)  # the epochs' orders

    def __len__(self) -> int:
        # The ragged last batch is dropped: a batch of one breaks batch norm, and a fixed shape
        # keeps cudnn.benchmark and torch.compile from re-tuning every epoch.
        return len(self.data.train) // self.batch_size

    def epoch(self) -> Iterator[Batch]:
        split = self.data.train
        perm = torch.randperm(len(split), generator=self.generator, device=split.labels.device)
        for i in range(len(self)):
            idx = perm[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.make_batch(split.images[idx], split.labels[idx])

    def make_batch(self, raw: Tensor, labels: Tensor) -> Batch:
        x = raw.float().mul_(self.data.scale)  # (B, C, H, W) in [0, 1]
        x = self.augmenter.pixels(x)
        x = (x - self.data.mean) / self.data.std
        x, targets = self.augmenter.normalized(x, labels)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels, targets


def eval_batches(
    data: DataBundle, split: Split, batch_size: int, channels_last: bool = False
) -> Iterator[tuple[Tensor, Tensor]]:
    """Normalized, unaugmented batches of ``split`` in order."""
    for start in range(0, len(split), batch_size):
        x = data.normalize(split.images[start : start + batch_size])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, split.labels[start : start + batch_size]
