"""A whole search, every stage of the recipe, on the user's own folder of images and array file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hpsearch.local import run_search
from tests.conftest import tiny_study

NAMES = ["zero", "one", "two"]


def digits(per_class: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` 8x8 images of the digits 0, 1 and 2 (scikit-learn's, bundled),
    as (N, 8, 8) uint8 and their labels: real images that take a model some steps to learn."""
    from sklearn.datasets import load_digits

    bundled = load_digits()
    keep = np.concatenate([np.flatnonzero(bundled.target == d)[:per_class] for d in range(3)])
    images = (bundled.images[keep] * (255 / 16)).round().astype(np.uint8)
    return images, bundled.target[keep].astype(np.int64)


def small_folder(root: Path) -> Path:
    """3 classes x 30 PNGs of 8x8 (resized to 16x16 when loaded): seconds for the recipe."""
    images, labels = digits()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i}.png")
    return root


def small_npz(path: Path) -> Path:
    images, labels = digits()  # (N, H, W): grey, as Keras' mnist.npz stores them
    np.savez(path, x_train=images, y_train=labels, classes=np.array(NAMES))
    return path


@pytest.mark.parametrize("kind", ["folder", "arrays"])
def test_a_search_runs_every_stage_on_the_users_data(
    storage_url: str, tmp_path: Path, kind: str
) -> None:
    dataset: dict[str, Any] = (
        {"name": "folder", "path": str(small_folder(tmp_path / "pets")), "image_size": 16}
        if kind == "folder"
        else {"name": "arrays", "path": str(small_npz(tmp_path / "pets.npz"))}
    )
    spec = tiny_study(
        f"user-{kind}",
        dataset=dataset,
        train={"batch_size": 16},  # 63 training images: 3 steps an epoch
        recipe={
            "range_test": {"steps": 40, "check_iterations": 20},
            "coarse": {"trials": 3},
            "refine": {"trials": 2, "rounds": 1},
            "final": {"epochs": 5},
        },
    )
    result = run_search(spec, storage_url).json_data()
    assert result["state"] == "completed", result["message"]
    statuses = {s["name"]: s["status"] for s in result["stages"]}
    assert statuses.pop("targeted", "completed") in ("completed", "skipped")
    assert statuses == {
        "sanity": "passed",
        "range_test": "passed",
        "coarse": "completed",
        "refine-1": "completed",
        "final": "completed",
    }
    assert result["best"]["test_accuracy"] > 0.8
