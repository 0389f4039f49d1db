"""Loading a dataset into seeded train/val/test splits that live on the training device.

Images stay uint8 on the device (4x less memory than float32, and the copy to float is fused into
the batch pipeline). Per-channel mean/std come from the training split only, so nothing about the
validation or test images leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hpsearch.catalog import DATASETS, DatasetInfo
from hpsearch.data import _files
from hpsearch.data._shapes import generate_shapes
from hpsearch.data._user import Loaded, load_user_data
from hpsearch.errors import DatasetNotFoundError
from hpsearch.spec import USER_DATA, DatasetSpec

SHAPES_SEED = 20_261_122  # one fixed "shapes" set for a given size, whatever the study seed


@dataclass(frozen=True)
class Split:
    """One split on the device: ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DataBundle:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    scale: float  # raw pixel value -> [0, 1]
    mean: Tensor  # (1, C, 1, 1) of the [0, 1] training images
    std: Tensor  # (1, C, 1, 1)
    skipped: tuple[str, ...] = ()  # a folder's files that could not be decoded (left out)

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 images -> float32 ``(x * scale - mean) / std``."""
        return (images.float() * self.scale - self.mean) / self.std


def load_data(
    spec: DatasetSpec, seed: int, device: torch.device | str = "cpu", store: Path | None = None
) -> DataBundle:
    """Load ``spec``'s dataset, split it with ``seed``, and move every split to ``device``.

    The user's own data (``folder``, ``arrays``; ``store``: where uploads are kept, see
    ``resolve_path``) is split like a built-in: the splits it brings are kept, the missing
    ones carved out, seeded and stratified; ``info`` is what ``describe_dataset`` says of it."""
    loaded = _read(spec, store)
    (images, labels), test, scale = loaded.pool, loaded.test, loaded.scale
    rng = np.random.default_rng(seed)
    if test is None:
        rest, test_idx = _stratified_split(labels, spec.test_fraction, rng)
        test = (images[test_idx], labels[test_idx])
        images, labels = images[rest], labels[rest]
    if loaded.val is None:
        train_idx, val_idx = _stratified_split(labels, spec.val_fraction, rng)
        val = (images[val_idx], labels[val_idx])
    else:
        train_idx, val = rng.permutation(len(labels)), loaded.val
    if spec.train_subset is not None:
        train_idx = train_idx[: spec.train_subset]
    dev = torch.device(device)

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(x)).to(dev), torch.from_numpy(y).to(dev))

    train = to_split(images[train_idx], labels[train_idx])
    pixels = train.images.float().mul_(scale)  # (N, C, H, W) in [0, 1]
    mean = pixels.mean(dim=(0, 2, 3), keepdim=True)
    std = pixels.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    del pixels
    return DataBundle(
        info=loaded.info,
        train=train,
        val=to_split(*val),
        test=to_split(*test),
        scale=scale,
        mean=mean,
        std=std,
        skipped=loaded.skipped,
    )


def _read(spec: DatasetSpec, store: Path | None) -> Loaded:
    if spec.name in USER_DATA:
        return load_user_data(spec, store)
    images, labels, test, scale = _load_arrays(spec)
    return Loaded(DATASETS[spec.name], (images, labels), None, test, scale=scale)


def _load_arrays(
    spec: DatasetSpec,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, float]:
    """(images, labels, official test split or None, scale to [0, 1]) as numpy arrays."""
    if spec.name == "digits":
        from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

        digits = load_digits()
        images = digits.images.astype(np.uint8)[:, None, :, :]  # (1797, 1, 8, 8) in 0..16
        return images, digits.target.astype(np.int64), None, 1.0 / 16.0
    if spec.name == "shapes":
        images, labels = generate_shapes(spec.size, SHAPES_SEED)
        return images, labels, None, 1.0 / 255.0
    root = Path(spec.data_dir).expanduser()
    train, test = _read_file_dataset(root, spec.name, spec.download)
    return train[0], train[1], test, 1.0 / 255.0


def _read_file_dataset(
    root: Path, name: str, download: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def read() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        if name == "cifar10":
            return _files.read_cifar_split(root, "train"), _files.read_cifar_split(root, "test")
        return _files.read_idx_split(root, name, "train"), _files.read_idx_split(root, name, "test")

    try:
        return read()
    except DatasetNotFoundError:
        if not download:
            raise
    _files.download(root, name)
    return read()


def _stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices (kept, held out) with ``fraction`` of every class held out."""
    kept, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_held = round(fraction * len(idx))
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(held))
