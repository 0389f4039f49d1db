"""Transfer learning (seed 001's table): a model trained by one study, used with
``model.init_from`` on a small subset of another data set, against the same training from
scratch at equal epochs.

Offline, both data sets come from the generated ``shapes``: the source is five of its classes
(disc, square, triangle, ring, plus), the target the five others (cross, hbar, vbar, diamond,
frame), drawn with another seed: other classes of the same kind of images, the table's "very
similar dataset". Each is written as an array file (``dataset.name: arrays``) as a user's would
be. The source model trains on ``--source-images`` images and is saved as ``hpsearch model
download`` gives a study's model. On the target only ``--train`` training images are kept
(``dataset.train_subset``: "very little data"); validation and test are the target's other
images, the same for every arm.

Arms, each trained ``--epochs`` epochs with each LR of ``--lrs`` (the one with the best
validation accuracy kept: the same small search on every side), for ``--seeds`` seeds:

- scratch: the same spec, no ``init_from``;
- fine-tune: ``init_from``, ``freeze: none``;
- linear: ``init_from``, ``freeze: features`` (a linear classifier on top);
- auto: ``transfer: auto`` (which of the two the table picks for this many images per class).

Prints each arm's test accuracy (mean and a 95 % interval over seeds), ``ratio: X``, the
fine-tuned arm's mean test accuracy over scratch's, and the same ratio for the auto arm.

    python bench/transfer.py                      # about four minutes on a 2-core CPU
    python bench/transfer.py --train 500 --seeds 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpsearch.catalog import DATASETS
from hpsearch.data import generate_shapes, load_data
from hpsearch.spec import StudySpec, parse_spec, spec_with
from hpsearch.trained import card_for, save_model
from hpsearch.training import Trainer

CPU = torch.device("cpu")
CLASSES = list(DATASETS["shapes"].classes)
MODEL = {"widths": [16, 32, 64], "norm": "batch"}
T95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def write_classes(path: Path, images: int, seed: int, wanted: list[int]) -> None:
    """``images`` generated shapes of the classes ``wanted`` (relabelled 0..k-1) as an .npz."""
    x, y = generate_shapes(2 * images, seed)
    keep = np.isin(y, wanted)
    x, y = x[keep][:images], y[keep][:images]
    relabel = np.array([wanted.index(int(label)) for label in y], dtype=np.int64)
    names = np.array([CLASSES[i] for i in wanted])
    np.savez(path, x_train=x, y_train=relabel, classes=names)


def spec_for(data: Path, name: str, epochs: int, lr: float, seed: int, **extra: Any) -> StudySpec:
    dataset = {"name": "arrays", "path": str(data), "flip_invariant": True} | extra.pop(
        "dataset", {}
    )
    return parse_spec(
        {
            "name": name,
            "seed": seed,
            "dataset": dataset,
            "model": MODEL | extra.pop("model", {}),
            "augment": {"crop_padding": 2, "flip": True},
            "train": {"epochs": epochs, "batch_size": 32, "lr": lr, "warmup_epochs": 0},
        }
    )


def train_source(folder: Path, images: int, epochs: int) -> Path:
    data_file = folder / "source.npz"
    write_classes(data_file, images, seed=1, wanted=[0, 1, 2, 3, 4])
    spec = spec_for(data_file, "source", epochs, lr=0.1, seed=0)
    spec = spec_with(spec, {"train.batch_size": 128})
    data = load_data(spec.dataset, spec.seed, CPU)
    began = time.perf_counter()
    result = Trainer(spec, data, CPU).fit()
    print(
        f"source: {len(data.train)} images of {', '.join(data.info.classes)}, {epochs} epochs "
        f"in {time.perf_counter() - began:.0f} s: val accuracy {result.val_accuracy:.3f}"
    )
    card = card_for(spec, data, "final", [{"train.lr": 0.1}], "none", {})
    _, path = save_model(folder, "source.pt", card, [result.model])
    return path


def run_arm(spec: StudySpec) -> tuple[float, float, str]:
    """(validation, test accuracy, what the transfer chose) of one training run."""
    data = load_data(spec.dataset, spec.seed, CPU)
    trainer = Trainer(spec, data, CPU)
    result = trainer.fit()
    correct = (trainer.predict(data.test).argmax(1) == data.test.labels).float().mean()
    chose = trainer.transfer.describe() if trainer.transfer is not None else "from scratch"
    return result.val_accuracy, float(correct), chose


def interval(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = T95.get(len(values), 2.0) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-images", type=int, default=4000)
    parser.add_argument("--source-epochs", type=int, default=12)
    parser.add_argument("--target-images", type=int, default=3000)
    parser.add_argument("--train", type=int, default=100, help="target training images kept")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="hpsearch-transfer-") as scratch:
        folder = Path(scratch)
        source = train_source(folder, args.source_images, args.source_epochs)
        target = folder / "target.npz"
        write_classes(target, args.target_images, seed=2, wanted=[5, 6, 7, 8, 9])
        arms: dict[str, dict[str, Any]] = {
            "scratch": {},
            "fine-tune": {"model": {"init_from": str(source)}},
            "linear": {"model": {"init_from": str(source), "freeze": "features"}},
            "auto": {"model": {"init_from": str(source), "transfer": "auto"}},
        }
        tests: dict[str, list[float]] = {arm: [] for arm in arms}
        chose = ""
        print(
            f"target: {args.train} training images of {', '.join(CLASSES[5:])}, "
            f"{args.epochs} epochs, LR from {args.lrs} by validation, {args.seeds} seeds"
        )
        for seed in range(args.seeds):
            for arm, extra in arms.items():
                runs = []
                for lr in args.lrs:
                    spec = spec_for(
                        target,
                        arm,
                        args.epochs,
                        lr,
                        seed,
                        dataset={"train_subset": args.train},
                        **{k: dict(v) for k, v in extra.items()},
                    )
                    runs.append(run_arm(spec))
                _, test, said = max(runs, key=lambda run: run[0])
                tests[arm].append(test)
                chose = said if arm == "auto" else chose
        for arm, values in tests.items():
            print(f"{arm:>10}: test accuracy {interval(values)}")
        print(f"auto chose: {chose}")
        base = statistics.fmean(tests["scratch"])
        print(f"ratio: {statistics.fmean(tests['fine-tune']) / base:.2f} (fine-tune / scratch)")
        print(f"auto / scratch: {statistics.fmean(tests['auto']) / base:.2f}")


if __name__ == "__main__":
    main()
