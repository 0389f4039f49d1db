"""A folder of the user's images: decoded once into cached splits, like a built-in dataset."""

from __future__ import annotations

import hashlib
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hpsearch.data import _decode, describe_dataset, load_data, resolve_path
from hpsearch.data._paths import unpacked
from hpsearch.errors import DatasetFormatError, SpecError
from hpsearch.spec import DatasetSpec
from hpsearch.uploads import pack
from tests.conftest import CPU
from tests.hpsearch.data.conftest import write_folder


def folder_spec(path: Path | str, **fields: object) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"name": "folder", "path": str(path), "image_size": 12, **fields}
    )


def test_a_folder_loads_into_stratified_splits_of_its_classes(tmp_path: Path) -> None:
    spec = folder_spec(write_folder(tmp_path / "pets", per_class=20))
    data = load_data(spec, seed=0, device=CPU)
    assert data.info == describe_dataset(spec)
    assert data.info.classes == ("cat", "dog", "fox")  # the subfolders, sorted
    assert (data.info.channels, data.info.image_size, data.info.images) == (3, 12, 61)
    assert not data.info.official_test_split
    # the corrupt file is left out, and said so
    assert data.skipped == ("cat/broken.png",)
    assert len(data.train) + len(data.val) + len(data.test) == 60
    for split in (data.train, data.val, data.test):
        assert split.images.dtype == torch.uint8
        assert split.images.shape[1:] == (3, 12, 12)
        assert set(split.labels.tolist()) == {0, 1, 2}
    assert (len(data.val), len(data.test)) == (9, 9)  # 15 % of each class, as for built-ins
    assert data.scale == 1 / 255
    # each class is its colour: red, green, blue dominate in cats, dogs and foxes
    for label in range(3):
        mean = data.train.images[data.train.labels == label].float().mean(dim=(0, 2, 3))
        assert int(mean.argmax()) == label


def test_splits_are_seeded(tmp_path: Path) -> None:
    spec = folder_spec(write_folder(tmp_path / "pets"))
    first, again = load_data(spec, seed=0), load_data(spec, seed=0)
    other = load_data(spec, seed=1)
    assert torch.equal(first.val.images, again.val.images)
    assert not torch.equal(first.val.images, other.val.images)


def test_a_folder_split_already_keeps_its_splits(tmp_path: Path) -> None:
    spec = folder_spec(write_folder(tmp_path / "pets", per_class=10, split=True))
    info = describe_dataset(spec)
    assert info.classes == ("cat", "dog", "fox")
    assert info.official_test_split
    assert info.images == 3 * (10 + 4 + 3) + 1
    data = load_data(spec, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 12, 9)


def test_grey_and_colour_mix_and_sizes_fit_by_shorter_side_then_centre_crop(
    tmp_path: Path,
) -> None:
    wide = np.zeros((8, 24, 3), np.uint8)
    wide[:, :8, 0], wide[:, 8:16, 1], wide[:, 16:, 2] = 255, 255, 255  # red | green | blue
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(np.full((30, 10), 77, np.uint8), mode="L").save(tmp_path / "grey.png")
    Image.fromarray(wide).save(tmp_path / "wide.bmp")  # torchvision cannot: Pillow does
    centre = _decode.decode_file(tmp_path / "wide.png", channels=3, size=8)
    assert centre.shape == (3, 8, 8)
    assert centre[1].min() == 255  # green, the middle third
    assert centre[0].max() == centre[2].max() == 0
    assert torch.equal(_decode.decode_file(tmp_path / "wide.bmp", channels=3, size=8), centre)
    grey = _decode.decode_file(tmp_path / "grey.png", channels=3, size=4)
    assert grey.shape == (3, 4, 4)
    assert (grey == 77).all()  # grey copied into the three channels
    luminance = _decode.decode_file(tmp_path / "wide.png", channels=1, size=8)
    assert luminance.shape == (1, 8, 8)
    assert 140 < luminance.float().mean() < 160  # green's luminance (0.587 x 255)
    every_grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(every_grey, mode="L").save(tmp_path / "levels.png")
    kept = _decode.decode_file(tmp_path / "levels.png", channels=1, size=16)
    assert torch.equal(kept[0], torch.from_numpy(every_grey))  # a grey image's pixels, exactly


def test_bad_files_fail_names_the_file(tmp_path: Path) -> None:
    spec = folder_spec(write_folder(tmp_path / "pets"), bad_files="fail")
    with pytest.raises(DatasetFormatError, match=r"broken\.png") as raised:
        load_data(spec, seed=0)
    assert raised.value.path == tmp_path / "pets" / "cat" / "broken.png"
    assert "dataset.bad_files" in str(raised.value)


def test_a_second_load_decodes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[Path] = []
    real = _decode.decode_file

    def counting(path: Path, channels: int, size: int) -> torch.Tensor:
        decoded.append(path)
        return real(path, channels, size)

    monkeypatch.setattr(_decode, "decode_file", counting)
    root = write_folder(tmp_path / "pets")
    spec = folder_spec(root)
    first = load_data(spec, seed=0)
    assert len(decoded) == 31  # every image, the corrupt one included
    again = load_data(spec, seed=0)
    assert len(decoded) == 31  # read from the cache
    assert torch.equal(first.train.images, again.train.images)
    assert again.skipped == ("cat/broken.png",)
    # a cached skip still fails a spec that wants bad files to fail
    with pytest.raises(DatasetFormatError, match=r"broken\.png"):
        load_data(folder_spec(root, bad_files="fail"), seed=0)
    # another size, or a changed folder, is decoded anew
    load_data(folder_spec(root, image_size=8), seed=0)
    assert len(decoded) == 62
    (root / "cat" / "broken.png").unlink()
    load_data(spec, seed=0)
    assert len(decoded) == 92


def test_a_tar_of_the_folder_loads_like_the_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "pets")
    folder = load_data(folder_spec(root), seed=0)
    # as uploaded: the folder packed into one file named by its sha256 in the store
    store = tmp_path / "store"
    store.mkdir()
    archive, kind = pack(root, tmp_path)
    assert kind == "folder"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    archive.rename(store / digest)
    uploaded = folder_spec(f"sha256:{digest}")
    described = replace(describe_dataset(folder_spec(root)), path=f"sha256:{digest}")
    assert describe_dataset(uploaded, store) == described  # from its members, not unpacked
    assert not (store / f"{digest}.d").exists()
    data = load_data(uploaded, seed=0, store=store)
    assert (store / f"{digest}.d").is_dir()  # unpacked once, beside it
    assert data.info == described
    assert torch.equal(data.train.images, folder.train.images)
    assert torch.equal(data.test.labels, folder.test.labels)
    # a tar made by hand, with the folder's name in front of every member
    by_hand = tmp_path / "pets.tar"
    with tarfile.open(by_hand, "w") as tar:
        tar.add(root, arcname="pets")
    again = load_data(folder_spec(by_hand), seed=0)
    assert torch.equal(again.train.images, folder.train.images)


def test_a_tar_that_would_write_outside_its_folder_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    payload = tmp_path / "payload.png"
    payload.write_bytes(b"x")
    with tarfile.open(evil, "w") as tar:
        tar.add(payload, arcname="cat/1.png")
        tar.add(payload, arcname="dog/1.png")
        tar.add(payload, arcname="../escaped.png")
    with pytest.raises(SpecError) as raised:
        load_data(folder_spec(evil), seed=0)
    assert raised.value.problems[0][0] == "dataset.path"
    assert not (tmp_path / "escaped.png").exists()
    assert not (tmp_path / "evil.tar.d").exists()


def test_unpacking_at_once_in_two_threads_gives_one_whole_folder(tmp_path: Path) -> None:
    archive, _ = pack(write_folder(tmp_path / "pets", per_class=30), tmp_path)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(unpacked(archive))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [archive.with_name("pets.tar.d")] * 2
    assert len(list((tmp_path / "pets.tar.d" / "dog").iterdir())) == 30
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_resolve_path_reads_the_store_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = "ab" * 32
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path("~/pets") == tmp_path / "pets"
    monkeypatch.setenv("HPSEARCH_DATASETS", str(tmp_path / "uploads"))
    assert resolve_path(f"sha256:{digest}") == tmp_path / "uploads" / digest
    assert resolve_path(f"sha256:{digest}", tmp_path / "server") == tmp_path / "server" / digest
    with pytest.raises(SpecError, match="64 lowercase hex") as raised:
        resolve_path("sha256:abc")
    assert raised.value.problems[0][0] == "dataset.path"
