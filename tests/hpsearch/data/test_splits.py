from __future__ import annotations

import torch

from hpsearch.augment import Augmenter
from hpsearch.data import DataBundle, TrainBatches, generate_shapes, load_data
from hpsearch.spec import AugmentSpec, DatasetSpec
from tests.conftest import CPU


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(img.flatten().tolist()) for img in images}


def test_digits_splits_are_disjoint_stratified_and_cover_the_set(digits_data: DataBundle) -> None:
    d = digits_data
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.train.images.dtype == torch.uint8
    assert d.train.images.shape[1:] == (1, 8, 8)
    assert not (_rows(d.test.images) & _rows(d.val.images))
    # every class is in the held-out splits in about its share (stratified)
    for split in (d.val, d.test):
        counts = torch.bincount(split.labels, minlength=10)
        assert counts.min() >= 0.7 * counts.float().mean()


def test_split_is_seeded(digits_data: DataBundle) -> None:
    again = load_data(DatasetSpec(name="digits"), seed=0, device=CPU)
    other = load_data(DatasetSpec(name="digits"), seed=1, device=CPU)
    assert torch.equal(again.val.labels, digits_data.val.labels)
    assert not torch.equal(other.val.labels, digits_data.val.labels)


def test_normalization_comes_from_the_train_split(digits_data: DataBundle) -> None:
    x = digits_data.normalize(digits_data.train.images)
    assert abs(x.mean().item()) < 1e-4
    assert abs(x.std().item() - 1) < 1e-2
    # the val split is normalized with the train statistics, not its own
    v = digits_data.normalize(digits_data.val.images)
    assert abs(v.mean().item()) < 0.2
    assert v.mean().item() != 0.0


def test_train_subset_caps_training_images_only() -> None:
    d = load_data(DatasetSpec(name="digits", train_subset=50), seed=0, device=CPU)
    assert len(d.train) == 50
    assert len(d.val) > 200


def test_shapes_has_the_asked_size_balanced_classes_and_fixed_pixels() -> None:
    images, labels = generate_shapes(500, seed=3)
    assert images.shape == (500, 3, 32, 32)
    assert images.dtype.name == "uint8"
    assert torch.bincount(torch.from_numpy(labels)).tolist() == [50] * 10
    again, _ = generate_shapes(500, seed=3)
    assert (images == again).all()
    # a shape is visible: foreground and background differ clearly in every image
    spread = images.reshape(500, -1).max(1) - images.reshape(500, -1).min(1)
    assert spread.min() > 80


def test_shapes_split_sizes_follow_the_fractions() -> None:
    d = load_data(DatasetSpec(name="shapes", size=1000), seed=0, device=CPU)
    assert (len(d.train), len(d.val), len(d.test)) == (720, 130, 150)  # 15 and 13 of each class
    assert d.train.images.shape[1:] == (3, 32, 32)


def _batches(data: DataBundle, batch_size: int) -> TrainBatches:
    aug = Augmenter(AugmentSpec(), 10, seed=0, device=CPU)
    return TrainBatches(data, batch_size, aug, seed=0)


def test_each_epoch_is_a_fresh_permutation_without_repeats(digits_data: DataBundle) -> None:
    batches = _batches(digits_data, 100)
    lookup = {bytes(img.flatten().tolist()): i for i, img in enumerate(digits_data.train.images)}

    def epoch_order() -> list[int]:
        order = []
        for x, _, targets in batches.epoch():
            assert targets is None
            assert x.dtype == torch.float32
            raw = (x * digits_data.std + digits_data.mean) / digits_data.scale
            order += [lookup[bytes(r.round().to(torch.uint8).flatten().tolist())] for r in raw]
        return order

    first, second = epoch_order(), epoch_order()
    assert len(first) == len(batches) * 100 == (len(digits_data.train) // 100) * 100
    assert len(set(first)) == len(first)  # no image twice in an epoch
    assert first != second  # reshuffled


def test_a_split_smaller_than_the_batch_is_one_batch(digits_data: DataBundle) -> None:
    small = load_data(DatasetSpec(name="digits", train_subset=30), seed=0, device=CPU)
    batches = _batches(small, 128)
    assert len(batches) == 1
    assert next(iter(batches.epoch()))[0].shape[0] == 30
