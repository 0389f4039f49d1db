"""The user's own data (``folder``, ``arrays``) read into numpy splits, like a built-in's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hpsearch.catalog import DatasetInfo
from hpsearch.data._arrays import inspect_arrays, read_arrays
from hpsearch.data._decode import convert_channels, decode_folder, fit_images
from hpsearch.data._folder import folder_info, index_folder
from hpsearch.data._sources import user_source
from hpsearch.errors import DatasetFormatError
from hpsearch.spec import DatasetSpec

Pair = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,) int64


@dataclass(frozen=True)
class Loaded:
    """A dataset as read, before its seeded splits: the splits it brings (None: carved out of
    ``pool``, seeded)."""

    info: DatasetInfo
    pool: Pair  # the training images, and the validation ones where ``val`` is None
    val: Pair | None
    test: Pair | None
    skipped: tuple[str, ...] = ()  # files that could not be decoded, left out (folder)
    scale: float = 1.0 / 255.0  # raw pixel value -> [0, 1]


def load_user_data(spec: DatasetSpec, store: Path | None = None) -> Loaded:
    """Read ``spec``'s folder or array file (``store``: where uploads are kept). What cannot
    be used is refused as :func:`describe_dataset` refuses it, naming the field."""
    source = user_source(spec, store)
    if spec.name == "folder":
        return _load_folder(spec, source)
    contents = inspect_arrays(spec, source)
    info = contents.info
    splits = {
        name: (_fit(images, info), labels)
        for name, (images, labels) in read_arrays(contents).items()
    }
    return Loaded(info, splits["train"], splits.get("val"), splits.get("test"))


def _load_folder(spec: DatasetSpec, source: Path) -> Loaded:
    index = index_folder(source)
    info = folder_info(spec, index)
    decoded = decode_folder(index, info.image_size, info.channels, spec.bad_files == "fail")
    images = decoded.images.numpy()
    labels = np.asarray(index.labels, dtype=np.int64)[decoded.kept]
    splits = np.asarray(index.splits)[decoded.kept]

    def part(*names: str) -> Pair | None:
        mask = np.isin(splits, names)
        return (images[mask], labels[mask]) if mask.any() else None

    pool = part("", "train")
    if pool is None:
        raise DatasetFormatError(index.root, "none of its training images could be decoded")
    return Loaded(info, pool, part("val"), part("test"), decoded.skipped)


def _fit(images: np.ndarray, info: DatasetInfo) -> np.ndarray:
    """Stored images at the described size and channels, converted a slice at a time."""
    if images.shape[1:] == (info.channels, info.image_size, info.image_size):
        return images
    out = np.empty((len(images), info.channels, info.image_size, info.image_size), np.uint8)
    for start in range(0, len(images), 4096):
        chunk = torch.from_numpy(images[start : start + 4096])
        chunk = fit_images(convert_channels(chunk, info.channels), info.image_size)
        out[start : start + 4096] = chunk.numpy()
    return out
