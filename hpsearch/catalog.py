"""What each dataset is: image shape, classes, and whether a horizontal flip keeps its labels.

Kept free of torch so that validating a spec (in the CLI or the API) stays cheap. The user's own
data (``folder``, ``arrays``) is described from its files by ``hpsearch.data.describe_dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset as the model and the recipe see it: a built-in's catalog entry, or what
    ``hpsearch.data.describe_dataset`` learnt from the user's files."""

    name: str
    channels: int
    image_size: int
    classes: tuple[str, ...]
    flip_invariant: bool  # is a mirrored image still of the same class?
    official_test_split: bool  # False: the test split is carved out of the data, seeded
    images: int = 0  # in all splits together (0: set by the spec, as for shapes' dataset.size)
    path: str | None = None  # your own data: dataset.path as the spec gives it

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_DIGITS = tuple(str(d) for d in range(10))
_FASHION = (
    *("t-shirt", "trouser", "pullover", "dress", "coat"),
    *("sandal", "shirt", "sneaker", "bag", "ankle-boot"),
)
_CIFAR = (
    *("airplane", "automobile", "bird", "cat", "deer"),
    *("dog", "frog", "horse", "ship", "truck"),
)

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", 1, 8, _DIGITS, False, False, images=1797),
    "shapes": DatasetInfo(
        "shapes",
        3,
        32,
        ("disc", "square", "triangle", "ring", "plus", "cross", "hbar", "vbar", "diamond", "frame"),
        True,
        False,
    ),
    "mnist": DatasetInfo("mnist", 1, 28, _DIGITS, False, True, images=70_000),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        1,
        28,
        _FASHION,
        True,
        True,
        images=70_000,
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        3,
        32,
        _CIFAR,
        True,
        True,
        images=60_000,
    ),
}
