"""Generated benchmark problems that separate search methods: small (16x16, a few thousand
images, so ten seeds of every method fit in about an hour on two cores) and hard enough that no
method saturates them, with a validation split of 2,000 images (a point is 20 images).

Each is written once as an ``.npz`` array file (``x_train``/``y_train``, ``x_val``/``y_val``,
``x_test``/``y_test``, ``classes``: the format a user's own arrays take, ``dataset.name:
arrays``) from a fixed data seed; the search seeds vary what each method samples and how each
network initialises, never the images.

- **clutter**: the ten shapes of ``hpsearch.data.generate_shapes`` (drawn at 32x32, averaged
  down to 16x16), each image with two distractor blobs of random colour, an occluding grey
  rectangle over a quarter of it, a random brightness and strong pixel noise. Clean labels.
- **noisy-labels**: the same shapes with lighter noise and no clutter, 30 % of the training and
  validation labels replaced by another class drawn uniformly (symmetric label noise; the test
  labels are clean): weight decay, dropout and label smoothing decide, and a network that
  memorises the noise loses.
- **textures**: ten classes of colour texture: sinusoidal gratings at four orientations and two
  frequencies, a checkerboard and a dot lattice, each with a random phase, orientation jitter
  (+-12 degrees), frequency jitter (+-15 %), two random colours and pixel noise. Searched over
  the ranges of a user who does not know the scale (LR 1e-6 to 10, weight decay 1e-8 to 1e-1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hpsearch.data import generate_shapes

SIDE = 16
SIZES = {"train": 3000, "val": 2000, "test": 2000}
DATA_SEED = 20261208  # the images; the search seeds never change them
LABEL_NOISE = 0.3


def _shapes16(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``generate_shapes`` at 32x32, averaged 2x2 down to 16x16: float images in [0, 1]."""
    pixels, labels = generate_shapes(n, seed)
    images = torch.from_numpy(pixels).float() / 255.0
    small = torch.nn.functional.avg_pool2d(images, 2)
    return small.numpy(), labels


def _clutter(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _shapes16(n, int(rng.integers(2**31)))
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    for _ in range(1):  # a distractor blob: discs of random colour, size and place
        cy, cx = rng.uniform(0, SIDE, (2, n, 1, 1))
        r = rng.uniform(1.5, 3.5, (n, 1, 1))
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2)[:, None]
        colour = rng.uniform(0, 1, (n, 3, 1, 1))
        images = np.where(mask, colour, images)
    # an occluding grey rectangle over about a quarter of the image
    h, w = rng.integers(4, 8, (2, n))
    top, left = rng.integers(0, SIDE - 5, (2, n))
    occlude = (
        (yy >= top[:, None, None])
        & (yy < (top + h)[:, None, None])
        & (xx >= left[:, None, None])
        & (xx < (left + w)[:, None, None])
    )[:, None]
    images = np.where(occlude, rng.uniform(0.3, 0.7, (n, 1, 1, 1)), images)
    images = images * rng.uniform(0.6, 1.4, (n, 1, 1, 1)) + rng.normal(0, 0.12, images.shape)
    return images, labels


def _noisy_labels(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _shapes16(n, int(rng.integers(2**31)))
    return images + rng.normal(0, 0.12, images.shape), labels


def _textures(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n) % 10)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    angle = np.deg2rad(45.0 * (labels % 4) + rng.uniform(-12, 12, n))
    freq = np.where(labels % 8 < 4, 0.12, 0.25) * rng.uniform(0.85, 1.15, n)  # cycles/pixel
    phase = rng.uniform(0, 2 * np.pi, n)
    a, f, p = angle[:, None, None], freq[:, None, None], phase[:, None, None]
    along = np.cos(a) * xx + np.sin(a) * yy
    pattern = np.sin(2 * np.pi * f * along + p)
    checks = np.sin(2 * np.pi * f * xx + p) * np.sin(2 * np.pi * f * yy + p)
    dots = np.cos(2 * np.pi * f * xx + p) + np.cos(2 * np.pi * f * yy + p) - 1.0
    pattern = np.where((labels == 8)[:, None, None], checks, pattern)
    pattern = np.where((labels == 9)[:, None, None], np.clip(dots, -1, 1), pattern)
    mix = (0.5 + 0.5 * pattern)[:, None]  # (n, 1, H, W) in [0, 1]
    one, two = rng.uniform(0, 1, (2, n, 3, 1, 1))
    images = mix * one + (1 - mix) * two
    return images + rng.normal(0, 0.3, images.shape), labels


GENERATORS = {"clutter": _clutter, "noisy-labels": _noisy_labels, "textures": _textures}
TINT = 0.25  # each class's colour cast: a weak cue a network picks up in its first steps


def _tinted(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mix each image with its class's colour (one per class, drawn from ``rng``), as natural
    images' colours lean by class (sky, grass): without such a cue the colour-randomised shapes
    and textures give a fresh network no gradient for its first few hundred steps (the loss
    stays at ln 10), and the range test and the sanity checks would measure nothing."""
    colours = rng.uniform(0, 1, (10, 3, 1, 1))
    tinted: np.ndarray = (1 - TINT) * images + TINT * colours[labels]
    return tinted


def write_problem(name: str, folder: Path) -> Path:
    """The problem's array file in ``folder`` (written once; the same bytes every time)."""
    path = folder / f"{name}.npz"
    if path.exists():
        return path
    rng = np.random.default_rng([DATA_SEED, list(GENERATORS).index(name)])
    total = sum(SIZES.values())
    images, labels = GENERATORS[name](total, rng)
    images = _tinted(images, labels, rng)
    pixels = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    arrays: dict[str, np.ndarray] = {}
    start = 0
    for split, size in SIZES.items():
        x, y = pixels[start : start + size], labels[start : start + size].astype(np.int64)
        if name == "noisy-labels" and split != "test":  # the test labels stay clean
            flip = rng.random(size) < LABEL_NOISE
            y = np.where(flip, (y + rng.integers(1, 10, size)) % 10, y)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        start += size
    arrays["classes"] = np.array([f"class-{i}" for i in range(10)])
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, allow_pickle=False, **arrays)
    partial.replace(path)
    return path
