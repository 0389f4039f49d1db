"""The launch check refuses the user's data that could not be trained on, naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpsearch.errors import SpecError
from hpsearch.recipe import MemoryLimit
from hpsearch.spec import StudySpec
from hpsearch.stages import check_launch, estimate_memory
from tests.conftest import make_spec
from tests.hpsearch.data.conftest import colour_arrays, write_folder


def study(dataset: dict[str, Any], **sections: Any) -> StudySpec:
    return make_spec(dataset=dataset, **sections)


def refusal(spec: StudySpec, store: Path | None = None) -> dict[str, str]:
    """The problems ``check_launch`` names, by field."""
    with pytest.raises(SpecError) as raised:
        check_launch(spec, source="test", store=store)
    return dict(raised.value.problems)


def npz(path: Path, **arrays: Any) -> dict[str, Any]:
    np.savez(path, **arrays)
    return {"name": "arrays", "path": str(path)}


def test_good_user_data_passes_and_is_estimated_from_its_files(tmp_path: Path) -> None:
    folder = study(
        {"name": "folder", "path": str(write_folder(tmp_path / "pets")), "image_size": 16}
    )
    check_launch(folder)
    estimate = estimate_memory(folder)
    assert estimate.images == 31
    assert estimate.data == 31 * 3 * 16 * 16
    x, y = colour_arrays(50, side=10)
    arrays = study(npz(tmp_path / "a.npz", x_train=x[..., 0], y_train=y))  # (N, H, W): grey
    check_launch(arrays)
    assert estimate_memory(arrays).data == 50 * 1 * 10 * 10
    # when the data is what is too large, the field to change is its image size
    assert estimate.data_field == "dataset.image_size"
    with pytest.raises(SpecError, match="above the test limit"):
        check_launch(folder, MemoryLimit(bytes=1000, name="the test limit"))


def test_a_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    for dataset in (
        {"name": "folder", "path": str(tmp_path / "nowhere"), "image_size": 16},
        {"name": "arrays", "path": str(tmp_path / "nothing.npz")},
    ):
        assert "does not exist" in refusal(study(dataset))["dataset.path"]
    upload = {"name": "arrays", "path": "sha256:" + "0" * 64}
    problem = refusal(study(upload), store=tmp_path / "store")["dataset.path"]
    assert str(tmp_path / "store" / ("0" * 64)) in problem  # where it was looked for


def test_a_folder_of_one_class_or_no_images_is_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "pets")
    for name in ("dog", "fox"):
        for file in (root / name).iterdir():
            file.unlink()
    one = study({"name": "folder", "path": str(root), "image_size": 16})
    assert "one class (cat)" in refusal(one)["dataset.path"]
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    (empty / "cat" / "notes.txt").write_text("no image here")
    none = study({"name": "folder", "path": str(empty), "image_size": 16})
    assert "no images" in refusal(none)["dataset.path"]


Arrays = Callable[[np.ndarray, np.ndarray], dict[str, Any]]  # (images, labels) -> the file


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        (lambda x, y: {"x_test": x, "y_test": y}, "no x_train and y_train"),
        (lambda x, y: {"x_train": x, "y_train": y[:-1]}, "holds 30 images but y_train 29 labels"),
        (lambda x, y: {"x_train": x, "y_train": y, "classes": ["a", "b"]}, "outside 0..1"),
        (lambda x, y: {"x_train": x, "y_train": y - 1}, "outside 0..1 (e.g. -1)"),
        (lambda x, y: {"x_train": x, "y_train": y * 0}, "needs at least 2"),
        (lambda x, y: {"x_train": x, "y_train": y, "x_val": x}, "x_val but no y_val"),
        (lambda x, y: {"x_train": x[..., :2], "y_train": y}, "C = 1 (grey) or 3"),
        (lambda x, y: {"x_train": x.astype(np.int32), "y_train": y}, "int32; images must be"),
        (lambda x, y: {"x_train": x, "y_train": y / 2}, "labels must be integers"),
    ],
)
def test_bad_array_files_are_refused_naming_the_path(
    tmp_path: Path, arrays: Arrays, expected: str
) -> None:
    x, y = colour_arrays(30, side=8)
    problems = refusal(study(npz(tmp_path / "bad.npz", **arrays(x, y))))
    assert list(problems) == ["dataset.path"]
    assert expected in problems["dataset.path"]


def test_a_file_that_is_no_array_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.pt"
    path.write_text("hello")
    problem = refusal(study({"name": "arrays", "path": str(path)}))["dataset.path"]
    assert "neither an .npz nor a .pt" in problem


def test_image_sizes_that_cannot_work_are_refused_naming_the_field(tmp_path: Path) -> None:
    x, y = colour_arrays(30, side=8)
    tiny = study(npz(tmp_path / "tiny.npz", x_train=x[:, :3, :3], y_train=y))
    assert "under 4x4" in refusal(tiny)["dataset.image_size"]
    oblong = study(npz(tmp_path / "oblong.npz", x_train=x[:, :, :6], y_train=y))
    assert "not square" in refusal(oblong)["dataset.image_size"]
    # the file's size must hold the augmentation (and pass the spec's own size check)
    padded = study(npz(tmp_path / "ok.npz", x_train=x, y_train=y), augment={"crop_padding": 8})
    assert "8x8" in refusal(padded)["augment.crop_padding"]
    with pytest.raises(SpecError) as raised:  # the field itself refuses a size under 4
        make_spec(dataset={"name": "folder", "path": str(tmp_path), "image_size": 3})
    assert raised.value.problems[0][0] == "dataset.image_size"
