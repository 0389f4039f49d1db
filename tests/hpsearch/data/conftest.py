"""The user's own data, written by the tests: small image folders and array files whose classes
differ by colour (so a model learns them in a few steps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

COLOURS = {"cat": (220, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 220)}
SIZES = [(12, 12), (16, 24), (24, 16), (20, 20), (10, 14)]  # (height, width)


@pytest.fixture(autouse=True)
def decoded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Decoded images are cached in the test's own folder, never in the user's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HPSEARCH_CACHE", str(cache))
    return cache


def pixels(label: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(height, width, 3) uint8 of the class ``label``'s colour, with noise."""
    colour = np.array(list(COLOURS.values())[label], dtype=np.float64)
    noise = rng.normal(0.0, 25.0, (height, width, 3))
    return np.clip(colour + noise, 0, 255).astype(np.uint8)


def write_images(folder: Path, label: int, count: int, rng: np.random.Generator) -> None:
    """``count`` images of class ``label`` in ``folder``: PNGs and JPEGs of several sizes, the
    second of them grey."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = pixels(label, *SIZES[i % len(SIZES)], rng)
        if i == 1:
            Image.fromarray(image.mean(axis=2).astype(np.uint8), mode="L").save(folder / "1.png")
        elif i % 3 == 2:
            Image.fromarray(image).save(folder / f"{i}.jpg", quality=95)
        else:
            Image.fromarray(image).save(folder / f"{i}.png")


def write_folder(root: Path, per_class: int = 10, split: bool = False, seed: int = 0) -> Path:
    """An ImageFolder ``root/<class>/<image>`` of 3 classes (cat, dog, fox) and one corrupt
    ``cat/broken.png``; with ``split``, ``root/train|val|test/<class>/<image>`` instead (4
    validation and 3 test images a class)."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(COLOURS):
        if split:
            write_images(root / "train" / name, label, per_class, rng)
            write_images(root / "val" / name, label, 4, rng)
            write_images(root / "test" / name, label, 3, rng)
        else:
            write_images(root / name, label, per_class, rng)
    (root / ("train/cat" if split else "cat") / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "README.txt").write_text("not an image, not a class")
    return root


def colour_arrays(count: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(count, side, side, 3) uint8 images of the 3 colour classes, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    images = np.stack([pixels(int(y), side, side, rng) for y in labels])
    return images, labels.astype(np.int64)
