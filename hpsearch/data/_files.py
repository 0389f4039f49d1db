"""Readers for the on-disk formats of MNIST, Fashion-MNIST (IDX) and CIFAR-10 (python pickles).

The directory layout is torchvision's, so a data directory filled by torchvision (or by hand from
the official archives) is read as is. torchvision is used only to download; reading is ours so it
is fast (no per-image PIL objects) and works on any well-formed file, not only ones with the
official checksums.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hpsearch.errors import DatasetFormatError, DatasetNotFoundError

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

_IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_SOURCES = {
    "mnist": "https://yann.lecun.com/exdb/mnist/",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist",
}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)
_CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


def idx_dir(root: Path, dataset: str) -> Path:
    return root / _IDX_FOLDERS[dataset] / "raw"


def read_idx_split(root: Path, dataset: str, part: str) -> tuple[U8, I64]:
    """Images ``(N, 1, 28, 28)`` uint8 and labels ``(N,)`` of MNIST-style ``part`` (train/test)."""
    folder = idx_dir(root, dataset)
    image_name, label_name = _IDX_FILES[part]
    images = _read_idx(_find(folder, image_name, dataset), _IDX_IMAGES_MAGIC)
    labels = _read_idx(_find(folder, label_name, dataset), _IDX_LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetFormatError(
            folder / image_name,
            f"images {images.shape} and labels {labels.shape} do not form one split",
        )
    return images[:, None, :, :].copy(), labels.astype(np.int64)


def read_cifar_split(root: Path, part: str) -> tuple[U8, I64]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` of CIFAR-10 ``part`` (train/test)."""
    folder = root / CIFAR_FOLDER
    names = CIFAR_TRAIN if part == "train" else CIFAR_TEST
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise _not_found("cifar10", folder, missing)
    images, labels = [], []
    for name in names:
        path = folder / name
        try:
            with path.open("rb") as f:
                batch = pickle.load(f, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            targets = np.asarray(batch["labels"], dtype=np.int64)
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
            raise DatasetFormatError(path, f"not a CIFAR-10 python batch ({exc})") from None
        if len(data) != len(targets):
            raise DatasetFormatError(path, f"{len(data)} images but {len(targets)} labels")
        images.append(data)
        labels.append(targets)
    return np.concatenate(images), np.concatenate(labels)


def download(root: Path, dataset: str) -> None:
    """Fetch a dataset into ``root`` through torchvision (needs network access)."""
    import torchvision.datasets as tvd  # heavy import, only needed here

    classes = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}
    try:
        for train in (True, False):
            classes[dataset](str(root), train=train, download=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; torchvision raises both
        folder = root / CIFAR_FOLDER if dataset == "cifar10" else idx_dir(root, dataset)
        raise DatasetNotFoundError(
            dataset,
            folder,
            ["its files"],
            f"Downloading failed ({exc}); put the files from {_source(dataset)} there by hand.",
        ) from None


def _find(folder: Path, name: str, dataset: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise _not_found(dataset, folder, [name])


def _not_found(dataset: str, folder: Path, missing: list[str]) -> DatasetNotFoundError:
    source = _source(dataset)
    how = (
        "Set dataset.download: true (needs network) to fetch it through torchvision, "
        f"or put the files from {source} in that folder."
    )
    return DatasetNotFoundError(dataset, folder, missing, how)


def _source(dataset: str) -> str:
    return _CIFAR_SOURCE if dataset == "cifar10" else _IDX_SOURCES[dataset]


def _read_idx(path: Path, magic: int) -> U8:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise DatasetFormatError(path, "too short for an IDX header")
    found = int.from_bytes(raw[0:4], "big")
    if found != magic:
        raise DatasetFormatError(path, f"IDX magic number {found}, expected {magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise DatasetFormatError(path, f"header says {shape} but holds {body.size} bytes")
    return body.reshape(shape)
