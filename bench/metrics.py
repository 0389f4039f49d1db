"""Per-epoch cost of the validation metrics beyond accuracy (``hpsearch.metrics``).

Every epoch the trainer copies the validation split's class probabilities to the host (with the
loss sums, in its one host sync) and computes balanced accuracy, macro-F1 and ROC-AUC there with
scikit-learn. Measured here:

- digits, a real ``Trainer``: the median epoch, and the median time of its metrics in it
  (``share: X``, metrics / epoch);
- validation splits of N examples and C classes, made-up probabilities: what an epoch adds, on
  the path the trainer takes at that size (ROC-AUC included up to ``EPOCH_ROC_AUC_LIMIT``
  probabilities, or when it is the objective: ``roc_auc`` column; above it, only the predicted
  classes come back: ``labels`` column).

    python bench/metrics.py
    python bench/metrics.py --threads 1 --epochs 8
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from unittest.mock import patch

import numpy as np
import torch

import hpsearch.training._trainer as trainer_module
from hpsearch.data import load_data
from hpsearch.metrics import label_scores, scores
from hpsearch.spec import load_spec, spec_with
from hpsearch.training import Trainer

SIZES = [(1_000, 10), (10_000, 10), (50_000, 10), (10_000, 100), (50_000, 100), (10_000, 1_000)]


def best_of(call: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds (the others met a busy CPU)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return min(times)


def digits_epochs(epochs: int) -> None:
    spec = spec_with(load_spec("digits"), {"train.epochs": epochs})
    data = load_data(spec.dataset, spec.seed, "cpu")
    spent: list[float] = []

    def timed(*args: Any) -> dict[str, float | None]:
        began = time.perf_counter()
        found = scores(*args)
        spent.append(time.perf_counter() - began)
        return found

    with patch.object(trainer_module, "scores", timed):
        history = Trainer(spec, data, torch.device("cpu")).fit().history
    epoch = statistics.median(m.seconds for m in history)
    metrics = statistics.median(spent)
    print(
        f"digits (val {len(data.val)} x {data.info.num_classes}): epoch {epoch * 1e3:.0f} ms, "
        f"metrics {metrics * 1e3:.1f} ms, share: {metrics / epoch:.3f}"
    )


def split_sizes(repeats: int) -> None:
    rng = np.random.default_rng(0)
    limit = trainer_module.EPOCH_ROC_AUC_LIMIT
    print(f"{'N':>7} {'C':>5}  {'roc_auc ms':>10}  {'labels ms':>9}  every epoch")
    for n, c in SIZES:
        labels = rng.integers(0, c, n)
        logits = rng.normal(size=(n, c)).astype(np.float32)
        logits[np.arange(n), labels] += 2.0
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        full = best_of(partial(scores, probs, labels), repeats) if n * c <= 1_000_000 else None
        cheap = best_of(partial(label_scores, probs.argmax(1), labels), repeats)
        path = "roc_auc" if n * c <= limit else "labels (roc_auc only as the objective)"
        shown = f"{full * 1e3:10.1f}" if full is not None else f"{'(skipped)':>10}"
        print(f"{n:7d} {c:5d}  {shown}  {cheap * 1e3:9.1f}  {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="digits epochs to time")
    parser.add_argument("--repeats", type=int, default=3, help="calls per size (best kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    digits_epochs(args.epochs)
    split_sizes(args.repeats)


if __name__ == "__main__":
    main()
