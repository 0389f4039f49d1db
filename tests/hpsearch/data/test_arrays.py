"""An array file of the user's (.npz, .pt): read in any usual layout, split like a built-in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.data import describe_dataset, load_data
from hpsearch.errors import SpecError
from hpsearch.spec import DatasetSpec
from tests.hpsearch.data.conftest import colour_arrays


def arrays_spec(path: Path, **fields: object) -> DatasetSpec:
    return DatasetSpec.model_validate({"name": "arrays", "path": str(path), **fields})


@pytest.mark.parametrize(
    ("layout", "channels"), [("NHWC uint8", 3), ("NHW uint8", 1), ("NCHW float", 3)]
)
def test_an_npz_loads_in_each_layout(tmp_path: Path, layout: str, channels: int) -> None:
    images, labels = colour_arrays(100, side=10)  # (100, 10, 10, 3)
    stored: np.ndarray = {
        "NHWC uint8": images,
        "NHW uint8": images[..., 1],  # (N, H, W), as Keras' mnist.npz
        "NCHW float": images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0,
    }[layout]
    path = tmp_path / "data.npz"
    np.savez(path, x_train=stored, y_train=labels)
    spec = arrays_spec(path)
    info = describe_dataset(spec)
    assert info.classes == ("0", "1", "2")  # no names in the file: the label values
    assert (info.channels, info.image_size, info.images) == (channels, 10, 100)
    assert not info.official_test_split
    data = load_data(spec, seed=0)
    assert data.info == info
    assert (len(data.train), len(data.val), len(data.test)) == (73, 12, 15)
    assert data.train.images.shape[1:] == (channels, 10, 10)
    assert data.train.images.dtype == torch.uint8
    # the pixels are the stored ones, back in (N, C, H, W) uint8
    everything = torch.cat([data.train.images, data.val.images, data.test.images])
    expected = torch.from_numpy(images.transpose(0, 3, 1, 2))
    expected = expected[:, 1:2] if channels == 1 else expected
    assert sorted(map(bytes, everything.flatten(1).numpy())) == sorted(
        map(bytes, expected.flatten(1).numpy())
    )


def test_the_splits_and_class_names_a_file_brings_are_kept(tmp_path: Path) -> None:
    x, y = colour_arrays(90, side=8)
    path = tmp_path / "data.npz"
    names = np.array(["cat", "dog", "fox"])
    np.savez(path, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:], classes=names)
    info = describe_dataset(arrays_spec(path))
    assert info.classes == ("cat", "dog", "fox")
    assert info.official_test_split
    assert info.images == 90
    data = load_data(arrays_spec(path), seed=0)
    assert len(data.test) == 30
    assert torch.equal(data.test.labels, torch.from_numpy(y[60:]))  # in the file's order
    assert (len(data.train), len(data.val)) == (51, 9)  # validation carved out of train

    with_val = tmp_path / "with_val.npz"
    np.savez(with_val, x_train=x[:60], y_train=y[:60, None], x_val=x[60:], y_val=y[60:])
    data = load_data(arrays_spec(with_val), seed=0)  # labels (N, 1), as Keras' CIFAR
    assert (len(data.train), len(data.val), len(data.test)) == (51, 30, 9)


def test_a_pt_file_of_tensors_or_arrays_loads_like_the_npz(tmp_path: Path) -> None:
    x, y = colour_arrays(60, side=8)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y)
    torch.save({"x_train": torch.from_numpy(x), "y_train": torch.from_numpy(y)}, tmp_path / "t.pt")
    torch.save({"x_train": x, "y_train": y, "classes": ["cat", "dog", "fox"]}, tmp_path / "a.pt")
    reference = load_data(arrays_spec(tmp_path / "data.npz"), seed=0)
    for name in ("t.pt", "a.pt"):
        data = load_data(arrays_spec(tmp_path / name), seed=0)
        assert torch.equal(data.train.images, reference.train.images)
        assert torch.equal(data.val.labels, reference.val.labels)
    assert describe_dataset(arrays_spec(tmp_path / "a.pt")).classes == ("cat", "dog", "fox")


def test_image_size_and_channels_convert_the_stored_images(tmp_path: Path) -> None:
    x, y = colour_arrays(30, side=12)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x, y_train=y)
    spec = arrays_spec(path, image_size=6, channels=1)
    assert (describe_dataset(spec).channels, describe_dataset(spec).image_size) == (1, 6)
    data = load_data(spec, seed=0)
    assert data.train.images.shape[1:] == (1, 6, 6)


def test_floats_outside_0_1_are_refused_naming_the_path(tmp_path: Path) -> None:
    x, y = colour_arrays(30, side=8)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x.astype(np.float32), y_train=y)  # 0..255 as floats
    with pytest.raises(SpecError, match=r"floats from 0 to 2\d\d") as raised:
        load_data(arrays_spec(path), seed=0)
    assert raised.value.problems[0][0] == "dataset.path"
