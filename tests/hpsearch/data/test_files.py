"""The file-based loaders, on tiny files written in the real on-disk formats."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from hpsearch.data import _files, load_data
from hpsearch.errors import DatasetFormatError, DatasetNotFoundError
from hpsearch.spec import DatasetSpec
from tests.conftest import CPU


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """An IDX file: magic (0, 0, type 0x08 = ubyte, ndim), big-endian dims, raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_mnist(root: Path, folder: str, n_train: int, n_test: int, gz: bool = False) -> None:
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        images[:, 0, 0] = labels * 20  # a marker tying each image to its label
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)


def write_cifar(root: Path, per_batch: int) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        labels = [i % 10 for i in range(per_batch)]
        data = np.zeros((per_batch, 3072), dtype=np.uint8)
        data[:, 0] = 10  # red channel, pixel (0, 0)
        data[:, 1024] = 20  # green channel, pixel (0, 0)
        data[:, 2048 + 33] = np.array(labels) * 25  # blue channel, pixel (1, 1)
        with (folder / name).open("wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)


@pytest.mark.parametrize(
    ("name", "folder", "gz"), [("mnist", "MNIST", False), ("fashion_mnist", "FashionMNIST", True)]
)
def test_idx_datasets_load_with_the_official_test_split(
    tmp_path: Path, name: str, folder: str, gz: bool
) -> None:
    write_mnist(tmp_path, folder, n_train=60, n_test=20, gz=gz)
    d = load_data(DatasetSpec(name=name, data_dir=str(tmp_path), val_fraction=0.2), 0, CPU)
    assert len(d.test) == 20
    assert len(d.train) + len(d.val) == 60
    assert d.train.images.shape[1:] == (1, 28, 28)
    assert (d.train.images[:, 0, 0, 0] == d.train.labels * 20).all()
    assert (d.test.images[:, 0, 0, 0] == d.test.labels * 20).all()


def test_cifar10_loads_channels_in_order(tmp_path: Path) -> None:
    write_cifar(tmp_path, per_batch=10)
    d = load_data(DatasetSpec(name="cifar10", data_dir=str(tmp_path), val_fraction=0.2), 0, CPU)
    assert len(d.test) == 10
    assert len(d.train) + len(d.val) == 50
    assert d.train.images.shape[1:] == (3, 32, 32)
    assert (d.train.images[:, 0, 0, 0] == 10).all()
    assert (d.train.images[:, 1, 0, 0] == 20).all()
    assert (d.train.images[:, 2, 1, 1] == d.train.labels * 25).all()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_data(DatasetSpec(name=name, data_dir=str(tmp_path)), 0, CPU)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "dataset.download: true" in message
    assert "http" in message


def test_download_is_used_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_download(root: Path, dataset: str) -> None:
        calls.append(dataset)
        write_mnist(root, "MNIST", 30, 10)

    monkeypatch.setattr(_files, "download", fake_download)
    spec = DatasetSpec(name="mnist", data_dir=str(tmp_path), download=True)
    assert len(load_data(spec, 0, CPU).test) == 10
    assert calls == ["mnist"]


def test_failed_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    spec = DatasetSpec(name="cifar10", data_dir=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match=r"Downloading failed.*unreachable"):
        load_data(spec, 0, CPU)


def test_corrupt_idx_file_names_the_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST", 20, 10)
    bad = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)
    with pytest.raises(DatasetFormatError, match=r"t10k-labels-idx1-ubyte.*magic"):
        load_data(DatasetSpec(name="mnist", data_dir=str(tmp_path)), 0, CPU)


def test_truncated_cifar_batch_names_the_file(tmp_path: Path) -> None:
    write_cifar(tmp_path, per_batch=10)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04trunc")
    with pytest.raises(DatasetFormatError, match="data_batch_3"):
        load_data(DatasetSpec(name="cifar10", data_dir=str(tmp_path)), 0, CPU)
