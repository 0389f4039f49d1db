"""Trainer throughput: our on-device batched pipeline against the usual per-sample pipeline.

One run, one model, one data set (generated ``shapes``, 3x32x32, >= 10,000 training images), one
augmentation recipe (random crop with 4 px padding, horizontal flip, 8x8 cutout):

- ours: ``Trainer.train_epoch`` (data on the device, batched augmentation, one sync per epoch);
- baseline: what a user would otherwise write: torchvision v2 transforms applied per sample in a
  ``Dataset``, batched by a ``torch.utils.data.DataLoader`` (best of ``num_workers`` 0 and 2);
- model only: forward + backward + step on pre-made, pre-augmented batches already on the device.

Both pipelines call the very same ``Trainer.step`` so only the data path differs. Prints images per
second, ``ratio: X`` (ours / best baseline) and ``efficiency: Y`` (model-only time / our epoch
time; 1.0 means data loading and augmentation cost nothing).

    python bench/trainer.py                       # CPU or GPU, whichever torch finds
    python bench/trainer.py --device cuda --train-images 40000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from hpsearch.data import DataBundle, load_data
from hpsearch.device import resolve_device
from hpsearch.spec import StudySpec, load_spec
from hpsearch.training import Trainer

PADDING, CUTOUT = 4, 8


class PerSampleShapes(Dataset[tuple[Tensor, Tensor]]):
    """The training split as a user's Dataset: CPU uint8 images, v2 transforms per sample."""

    def __init__(self, data: DataBundle) -> None:
        self.images = data.train.images.cpu()
        self.labels = data.train.labels.cpu()
        side = self.images.shape[-1]
        area = CUTOUT * CUTOUT / (side * side)
        self.transform = v2.Compose(
            [
                v2.RandomCrop(side, padding=PADDING, padding_mode="reflect"),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(data.mean.flatten().tolist(), data.std.flatten().tolist()),
                v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0.0),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.transform(self.images[i]), self.labels[i]


def build_spec(train_images: int, batch_size: int, widths: list[int]) -> StudySpec:
    size = int(train_images / (0.85 * 0.85)) + 20  # the val and test fractions come off first
    return load_spec(
        "shapes",
        [
            f"dataset.size={size}",
            f"train.batch_size={batch_size}",
            f"model.widths={widths}",
            f"augment.crop_padding={PADDING}",
            "augment.flip=true",
            f"augment.cutout={CUTOUT}",
            "augment.mixup_alpha=0",
            "augment.cutmix_alpha=0",
        ],
    )


def timed(device: torch.device, work: Callable[[], object]) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def steps_over(trainer: Trainer, batches: Iterable[tuple[Tensor, Tensor]], limit: int) -> None:
    """Train on up to ``limit`` batches from ``batches`` (CPU or device tensors)."""
    device = trainer.data.train.labels.device
    memory = torch.channels_last if trainer.cuda else torch.contiguous_format
    for i, (x, labels) in enumerate(batches):
        if i == limit:
            break
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory)
        trainer.step(x, labels.to(device, non_blocking=True), None)


def measure_ours(spec: StudySpec, data: DataBundle, device: torch.device, warmup: int) -> float:
    trainer = Trainer(spec, data, device)
    batches = ((x, y) for x, y, _ in trainer.batches.epoch())
    steps_over(trainer, batches, warmup)
    return timed(device, lambda: trainer.train_epoch(0, 1))


def measure_baseline(
    spec: StudySpec, data: DataBundle, device: torch.device, workers: int, warmup: int
) -> float:
    trainer = Trainer(spec, data, device)
    loader = DataLoader(
        PerSampleShapes(data),
        batch_size=trainer.batches.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    steps_over(trainer, loader, warmup)  # starts the workers, tunes cudnn
    trainer.model.train()
    return timed(device, lambda: steps_over(trainer, loader, len(loader)))


def measure_model_only(
    spec: StudySpec, data: DataBundle, device: torch.device, warmup: int
) -> float:
    trainer = Trainer(spec, data, device)
    made = [(x.clone(), y.clone()) for x, y, _ in trainer.batches.epoch()]
    steps_over(trainer, made, warmup)
    trainer.model.train()
    return timed(device, lambda: steps_over(trainer, made, len(made)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--widths", default="32,64,128", help="channels per stage")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each timing")
    args = parser.parse_args()

    device = resolve_device(args.device)
    spec = build_spec(args.train_images, args.batch_size, [int(w) for w in args.widths.split(",")])
    data = load_data(spec.dataset, spec.seed, device)
    images = (len(data.train) // spec.train.batch_size) * spec.train.batch_size
    print(f"device: {device} ({torch.get_num_threads()} CPU threads), torch {torch.__version__}")
    print(
        f"data: shapes, {len(data.train)} train images 3x32x32, batch {spec.train.batch_size}, "
        f"crop(pad {PADDING}) + flip + cutout({CUTOUT}); model widths {spec.model.widths}, "
        f"residual={spec.model.residual}, norm={spec.model.norm}"
    )

    ours = measure_ours(spec, data, device, args.warmup)
    print(f"ours:                          {images / ours:9.1f} img/s  ({ours:.2f} s/epoch)")
    baselines = {}
    for workers in (0, 2):
        seconds = measure_baseline(spec, data, device, workers, args.warmup)
        baselines[workers] = seconds
        print(
            f"baseline (DataLoader, workers={workers}): {images / seconds:9.1f} img/s  "
            f"({seconds:.2f} s/epoch)"
        )
    model_only = measure_model_only(spec, data, device, args.warmup)
    print(f"model only:                    {images / model_only:9.1f} img/s  ({model_only:.2f} s)")
    best = min(baselines.values())
    print(f"ratio: {best / ours:.2f}")
    print(f"efficiency: {model_only / ours:.2f}")
    record = {
        "device": str(device),
        "train_images": len(data.train),
        "ours_img_s": images / ours,
        "baseline_img_s": {str(w): images / s for w, s in baselines.items()},
        "model_only_img_s": images / model_only,
        "ratio": best / ours,
        "efficiency": model_only / ours,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
