"""Learning-rate schedules as one pure function of training progress (in epochs)."""

from __future__ import annotations

import math

from hpsearch.spec import TrainSpec


def learning_rate(spec: TrainSpec, progress: float, total_epochs: int | None = None) -> float:
    """The LR after ``progress`` epochs of a run of ``total_epochs`` (default ``spec.epochs``).

    Linear warmup from 0 over ``warmup_epochs``, then: constant; step (x ``step_gamma`` every
    ``step_size`` epochs, counted from the start); cosine or linear from ``lr`` down to
    ``lr * min_lr_ratio`` at the end of the run.
    """
    total = spec.epochs if total_epochs is None else total_epochs
    base, warm = spec.lr, spec.warmup_epochs
    if warm > 0 and progress < warm:
        return base * progress / warm
    if spec.schedule == "constant":
        return base
    if spec.schedule == "step":
        return base * spec.step_gamma ** math.floor(progress / spec.step_size + 1e-9)
    low = base * spec.min_lr_ratio
    done = min(max((progress - warm) / max(total - warm, 1e-9), 0.0), 1.0)
    if spec.schedule == "cosine":
        return low + (base - low) * 0.5 * (1.0 + math.cos(math.pi * done))
    return base - (base - low) * done
