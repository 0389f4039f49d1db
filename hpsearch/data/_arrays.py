"""An array file: an ``.npz``, or a ``.pt`` holding a dict of tensors or arrays.

Keys: ``x_train`` and ``y_train``; optionally ``x_val``/``y_val``, ``x_test``/``y_test`` (splits
carved out, seeded, where they are missing) and ``classes`` (the class names; else "0".."C-1").
Images are ``(N, H, W, C)``, ``(N, C, H, W)`` with C 1 or 3, or ``(N, H, W)`` for grey (as
Keras' ``mnist.npz`` stores them); uint8, or floats in [0, 1]. Labels are integers ``(N,)`` (or
``(N, 1)``, as Keras' CIFAR stores them) in 0..C-1.

Describing a file reads its arrays' headers and its labels, never its images; torch is loaded
only for a ``.pt`` file. Never unpickled: ``allow_pickle=False``, ``weights_only=True``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from hpsearch.catalog import DatasetInfo
from hpsearch.errors import SpecError
from hpsearch.spec import DatasetSpec

SPLITS = ("train", "val", "test")
Pair = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,) int64
Header = tuple[tuple[int, ...], np.dtype[Any]]  # shape, dtype


def _problem(message: str, field: str = "dataset.path") -> SpecError:
    return SpecError([(field, message)])


class _Npz:
    """An .npz: headers from the zip's members, arrays loaded one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.members = set(archive.namelist())

    def header(self, key: str) -> Header | None:
        if f"{key}.npy" not in self.members:
            return None
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(f"{key}.npy") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise _problem(f"{key} in {self.path} is not a readable array ({exc})") from None
        return tuple(shape), dtype

    def read(self, key: str) -> np.ndarray:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                return np.asarray(data[key])
        except ValueError as exc:  # an object array (it would need unpickling)
            raise _problem(
                f"{key} in {self.path} cannot be read without unpickling ({exc})"
            ) from None


class _Pt:
    """A torch.save'd dict of tensors, arrays (and ``classes`` as a list of strings)."""

    def __init__(self, path: Path) -> None:
        import torch

        # numpy arrays pickle through these; nothing else is allowed to be unpickled
        reconstruct = cast("Callable[..., Any]", np.zeros(1).__reduce__()[0])
        dtypes = [type(np.dtype(t)) for t in ("u1", "i1", "i2", "i4", "i8", "u2", "u4", "u8")]
        dtypes += [type(np.dtype(t)) for t in ("f2", "f4", "f8", "U", "S", "b1")]
        allowed: list[Callable[..., Any] | tuple[Callable[..., Any], str]]
        allowed = [reconstruct, np.ndarray, np.dtype, *dtypes]
        try:
            with torch.serialization.safe_globals(allowed):
                try:
                    data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError:  # the legacy format cannot be memory-mapped
                    data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # untrusted bytes: whatever unpickling refuses is the file's
            why = str(exc).splitlines()[0][:200]
            raise _problem(f"{path} is neither an .npz nor a .pt dict of arrays ({why})") from None
        if not isinstance(data, dict):
            raise _problem(f"{path} holds a {type(data).__name__}, not a dict of arrays")
        self.path, self.data = path, data

    def header(self, key: str) -> Header | None:
        if key not in self.data:
            return None
        value = self.read(key)
        return tuple(value.shape), value.dtype

    def read(self, key: str) -> np.ndarray:
        import torch

        value = self.data[key]
        if isinstance(value, torch.Tensor):
            if value.dtype == torch.bfloat16:
                value = value.float()
            return value.numpy()
        return np.asarray(value)


def open_arrays(path: Path) -> _Npz | _Pt:
    """The array file at ``path`` (told apart by content: an upload's name has no suffix)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return _Npz(path)
    return _Pt(path)


@dataclass(frozen=True)
class ArrayContents:
    """What describing an array file learnt: its info, image shape and labels by split."""

    info: DatasetInfo
    file: _Npz | _Pt
    shape: tuple[int, int, int]  # (C, H, W) as stored
    labels: dict[str, np.ndarray]  # by split present in the file, (N,) int64


def inspect_arrays(spec: DatasetSpec, source: Path) -> ArrayContents:
    """Check an array file's keys, shapes, dtypes and labels (not its pixels) against what a
    dataset needs, each fault a :class:`SpecError` naming the field to fix."""
    file = open_arrays(source)
    shape: tuple[int, int, int] | None = None
    labels: dict[str, np.ndarray] = {}
    for split in SPLITS:
        found = _split_shape(file, split)
        if found is None:
            continue
        if shape is not None and found[1:] != shape:
            raise _problem(f"x_{split} holds {found[1:]} images (C, H, W), x_train {shape}")
        shape = shape or found[1:]
        labels[split] = _labels(file, split, found[0])
    assert shape is not None  # x_train is required
    classes = _classes(file, labels)
    channels, height, width = shape
    info = DatasetInfo(
        name=spec.name,
        channels=spec.channels or channels,
        image_size=_side(spec, height, width),
        classes=classes,
        flip_invariant=spec.flip_invariant,
        official_test_split="test" in labels,
        images=sum(len(y) for y in labels.values()),
        path=spec.path,
    )
    return ArrayContents(info, file, shape, labels)


def describe_arrays(spec: DatasetSpec, source: Path) -> DatasetInfo:
    """What an array file holds, from its headers and labels (no image is read)."""
    return inspect_arrays(spec, source).info


def read_arrays(contents: ArrayContents) -> dict[str, Pair]:
    """Each split the file holds: images ``(N, C, H, W)`` uint8 as stored (not yet resized or
    converted to the spec's channels), labels ``(N,)`` int64."""
    out = {}
    for split, labels in contents.labels.items():
        key = f"x_{split}"
        images = contents.file.read(key)
        images = images[:, None] if images.ndim == 3 else images
        if images.shape[1:] != contents.shape:  # (N, H, W, C)
            images = images.transpose(0, 3, 1, 2)
        out[split] = (np.ascontiguousarray(_as_uint8(images, key)), labels)
    return out


def _split_shape(file: _Npz | _Pt, split: str) -> tuple[int, int, int, int] | None:
    """(N, C, H, W) of ``x_<split>`` after checking it has its labels; None if absent."""
    x, y = file.header(f"x_{split}"), file.header(f"y_{split}")
    if x is None and y is None:
        if split == "train":
            raise _problem(f"{file.path} has no x_train and y_train (images and labels)")
        return None
    if x is None or y is None:
        have, lacks = ("x", "y") if y is None else ("y", "x")
        raise _problem(f"{file.path} has {have}_{split} but no {lacks}_{split}")
    (shape, dtype), (labels_shape, _) = x, y
    if dtype != np.uint8 and dtype.kind != "f":
        raise _problem(f"x_{split} is {dtype}; images must be uint8, or floats in [0, 1]")
    c_h_w = _image_shape(shape, split)
    if split == "train" and shape[0] == 0:
        raise _problem("x_train holds no images")
    n_labels = labels_shape[0] if labels_shape else 0
    if n_labels != shape[0]:
        raise _problem(f"x_{split} holds {shape[0]} images but y_{split} {n_labels} labels")
    return (shape[0], *c_h_w)


def _image_shape(shape: tuple[int, ...], split: str) -> tuple[int, int, int]:
    """(C, H, W) of images stored NHW, NCHW or NHWC (NCHW where both would fit)."""
    if len(shape) == 3:
        return 1, shape[1], shape[2]
    if len(shape) == 4 and shape[1] in (1, 3):
        return shape[1], shape[2], shape[3]
    if len(shape) == 4 and shape[3] in (1, 3):
        return shape[3], shape[1], shape[2]
    raise _problem(
        f"x_{split} has shape {shape}; images must be (N, H, W), (N, H, W, C) or "
        "(N, C, H, W) with C = 1 (grey) or 3 (colour)"
    )


def _labels(file: _Npz | _Pt, split: str, n: int) -> np.ndarray:
    y = file.read(f"y_{split}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise _problem(f"y_{split} is {y.dtype} {y.shape}; labels must be integers, shape ({n},)")
    return y.astype(np.int64)


def _classes(file: _Npz | _Pt, labels: dict[str, np.ndarray]) -> tuple[str, ...]:
    if file.header("classes") is not None:
        names = file.read("classes")
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise _problem(f"classes is {names.dtype} {names.shape}; it must be a list of names")
        classes = tuple(str(n.decode() if isinstance(n, bytes) else n) for n in names)
        if len(set(classes)) != len(classes):
            raise _problem("classes names a class twice")
    else:
        highest = max(int(y.max()) for y in labels.values() if len(y))
        classes = tuple(str(c) for c in range(highest + 1))
    for split, y in labels.items():
        bad = y[(y < 0) | (y >= len(classes))]
        if len(bad):
            raise _problem(
                f"y_{split} holds labels outside 0..{len(classes) - 1} (e.g. {int(bad[0])}); "
                f"there are {len(classes)} classes"
            )
    if len(classes) < 2:
        raise _problem(f"the labels name {len(classes)} class; a classifier needs at least 2")
    return classes


def _side(spec: DatasetSpec, height: int, width: int) -> int:
    if spec.image_size is not None:
        return spec.image_size
    resize = "set dataset.image_size to resize them (shorter side, then centre crop)"
    if height != width:
        raise _problem(
            f"the images are {height}x{width}, not square: {resize}", "dataset.image_size"
        )
    if height < 4:
        raise _problem(
            f"the images are {height}x{width}, under 4x4: {resize}", "dataset.image_size"
        )
    return height


def _as_uint8(images: np.ndarray, key: str) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    low, high = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high) and low >= 0.0 and high <= 1.0):
        raise _problem(
            f"{key} holds floats from {low:g} to {high:g}; float images must lie in [0, 1] "
            "(or store uint8 0..255)"
        )
    return np.rint(images * 255.0).astype(np.uint8)
