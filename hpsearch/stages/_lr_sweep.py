"""Stage 2, the learning-rate range test (Smith, 2017; the notes' "find a learning rate that makes
the loss go down").

All training data, a small weight decay, the LR raised exponentially from ``min_lr`` to ``max_lr``.
The loss is smoothed (EMA with bias correction) and the sweep stops once it exceeds
``stop_factor`` times its minimum or goes NaN. The LR of steepest descent (most negative slope of
the smoothed loss against log LR, before its minimum) is the suggestion; the coarse stage searches
one decade below it to half a decade above it (``upper: steepest``) or, where that is higher, to
the LR of the minimum loss (``upper: min_loss``). A check then trains a fresh model at the
suggested LR for ``check_iterations`` steps and asks that the loss fall clearly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from hpsearch.data import DataBundle
from hpsearch.recipe import range_test_spec, up_front_spec
from hpsearch.results import LrCheck, LrCurve, LrRange, RangeTestResult
from hpsearch.spec import StudySpec
from hpsearch.stages._sanity import train_steps_per_epoch
from hpsearch.training import Trainer

Batch = tuple[Tensor, Tensor, Tensor | None]


def run_range_test(
    spec: StudySpec, data: DataBundle, device: torch.device
) -> tuple[RangeTestResult, float]:
    """The sweep, its analysis, the suggested range and the loss-drop check at the suggestion;
    and the trial-epochs they took."""
    spec = up_front_spec(spec, train_steps_per_epoch(spec, data))  # budget.up_front_share
    cfg = spec.recipe.range_test
    trainer = Trainer(range_test_spec(spec), data, device)
    lrs = np.geomspace(cfg.min_lr, cfg.max_lr, cfg.steps)
    raw, smoothed = [], []
    average, best = 0.0, math.inf
    stop = "end of sweep"
    batches = _endless(trainer)
    trainer.model.train()
    for i, lr in enumerate(lrs):
        trainer.set_lr(float(lr))
        loss = trainer.step(*next(batches))[0].item()  # one sync per step: the sweep needs it
        if not math.isfinite(loss):
            stop = "loss not finite"
            break
        average = cfg.smoothing * average + (1 - cfg.smoothing) * loss
        value = average / (1 - cfg.smoothing ** (i + 1))
        raw.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if value > cfg.stop_factor * best:
            stop = f"smoothed loss above {cfg.stop_factor:g}x its minimum"
            break
    swept = lrs[: len(smoothed)]
    steepest, lowest = _suggestions(swept, np.asarray(smoothed))
    low = max(steepest / 10**cfg.decades_below, cfg.min_lr, spec.search.lr.low)
    top = steepest * 10**cfg.decades_above
    if cfg.upper == "min_loss":
        top = max(top, lowest)
    high = min(top, float(swept[-1]), spec.search.lr.high)
    if not low < high:  # the sweep and the spec's outer bounds barely overlap
        low, high = spec.search.lr.low, spec.search.lr.high
    check = check_lr(spec, data, device, steepest)
    result = RangeTestResult(
        passed=check.passed,
        verdict="passed" if check.passed else "loss does not fall at the suggested LR",
        curve=LrCurve(lr=[float(x) for x in swept], loss=raw, smoothed=smoothed),
        stopped=stop,
        lr_steepest=steepest,
        lr_min_loss=lowest,
        suggested_lr=steepest,
        range=LrRange(low=low, high=high),
        check=check,
    )
    return result, (len(smoothed) + check.iterations) / len(trainer.batches)


def check_lr(spec: StudySpec, data: DataBundle, device: torch.device, lr: float) -> LrCheck:
    """Train a fresh model at constant ``lr``; pass if the loss falls by ``check_drop``."""
    cfg = spec.recipe.range_test
    trainer = Trainer(range_test_spec(spec, lr), data, device)
    batches = _endless(trainer)
    trainer.model.train()
    losses = torch.stack([trainer.step(*next(batches))[0] for _ in range(cfg.check_iterations)])
    curve = losses.tolist()  # one sync for the whole check
    window = max(5, cfg.check_iterations // 10)
    before, after = float(np.mean(curve[:window])), float(np.mean(curve[-window:]))
    finite = math.isfinite(before) and math.isfinite(after)
    return LrCheck(
        lr=lr,
        iterations=cfg.check_iterations,
        loss_before=before if finite else None,
        loss_after=after if finite else None,
        required_drop=cfg.check_drop,
        passed=finite and after < (1 - cfg.check_drop) * before,
        curve=[x if math.isfinite(x) else None for x in curve],
    )


def _suggestions(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """(LR of steepest descent before the minimum, LR of the minimum smoothed loss)."""
    lowest = int(np.argmin(smoothed))
    if lowest < 2:
        return float(lrs[lowest]), float(lrs[lowest])
    slope = np.gradient(smoothed[: lowest + 1], np.log10(lrs[: lowest + 1]))
    return float(lrs[int(np.argmin(slope))]), float(lrs[lowest])


def _endless(trainer: Trainer) -> Iterator[Batch]:
    while True:
        yield from trainer.batches.epoch()
