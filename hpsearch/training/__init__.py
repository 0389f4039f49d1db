"""Training a spec's CNN: optimizers, schedules, the loop with early stopping and reporting."""

from __future__ import annotations

from hpsearch.data import load_data
from hpsearch.device import resolve_device
from hpsearch.spec import StudySpec
from hpsearch.training._cancel import cancellable
from hpsearch.training._checkpoint import (
    CheckpointError,
    CheckpointSink,
    read_checkpoint,
    write_checkpoint,
)
from hpsearch.training._optim import build_optimizer, decayed_parameters, explicit_penalty
from hpsearch.training._schedule import learning_rate
from hpsearch.training._trainer import (
    EpochMetrics,
    ReportFn,
    StepFn,
    Trainer,
    TrainResult,
    predict_split,
    probability_sums,
)


def train(
    spec: StudySpec,
    *,
    device: str = "auto",
    report: ReportFn | None = None,
    epochs: int | None = None,
    on_step: StepFn | None = None,
) -> TrainResult:
    """Load ``spec``'s data onto ``device`` and train its model; see :class:`Trainer`."""
    dev = resolve_device(device)
    data = load_data(spec.dataset, spec.seed, dev)
    return Trainer(spec, data, dev).fit(report=report, epochs=epochs, on_step=on_step)


__all__ = [
    "CheckpointError",
    "CheckpointSink",
    "EpochMetrics",
    "ReportFn",
    "StepFn",
    "TrainResult",
    "Trainer",
    "build_optimizer",
    "cancellable",
    "decayed_parameters",
    "explicit_penalty",
    "learning_rate",
    "predict_split",
    "probability_sums",
    "read_checkpoint",
    "train",
    "write_checkpoint",
]
