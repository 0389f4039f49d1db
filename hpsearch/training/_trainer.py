"""The training loop: one model, one spec, per-epoch metrics, one host sync per epoch.

Losses and correct counts are summed on the device and read back together once an epoch (with the
validation numbers and the validation split's class probabilities, in one copy), so a GPU never
waits on Python between steps. Divergence is therefore noticed at the end of the epoch in which it
happened; the epoch is named in the error. The validation metrics beyond accuracy (balanced
accuracy, macro-F1, ROC-AUC: ``hpsearch.metrics``) are computed on the CPU from those probabilities;
``search.objective`` names the one early stopping and the search maximise.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hpsearch.augment import Augmenter
from hpsearch.data import DataBundle, Split, TrainBatches, eval_batches
from hpsearch.errors import DivergedError
from hpsearch.metrics import label_scores, scores
from hpsearch.models import build_model
from hpsearch.spec import StudySpec
from hpsearch.trained import Transfer, Tta, start_from, tta_probabilities
from hpsearch.training._cancel import raise_if_cancelled
from hpsearch.training._checkpoint import CheckpointSink, capture, restore
from hpsearch.training._optim import build_optimizer, decayed_parameters, explicit_penalty
from hpsearch.training._schedule import learning_rate
from hpsearch.training._snapshots import Snapshots
from hpsearch.training._tracker import BestTracker

DEFAULT_TTA_PADDING = 4  # crops TTA without training crops: CIFAR's usual padding
EPOCH_ROC_AUC_LIMIT = 250_000
"""Probabilities (examples x classes) of a validation split above which an epoch does not measure
ROC-AUC unless it is the objective: it sorts the split once per class (about 50 ms at the limit on
one CPU core, 0.2 s for 10,000 examples of 100 classes, over a minute for 50,000 of 1,000:
``python bench/metrics.py``); the test evaluation always has it."""

ReportFn = Callable[[int, dict[str, float]], bool]
"""``report(epoch, metrics)``: called after every epoch (1-based); returning True stops the run."""
StepFn = Callable[[int, int], None]
"""``on_step(step, steps)``: called after each optimizer step of an epoch; for progress bars."""


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    val_balanced_accuracy: float
    val_macro_f1: float
    # None: the validation split holds one class only, or it is too large to measure it every
    # epoch when it is not the objective (EPOCH_ROC_AUC_LIMIT)
    val_roc_auc: float | None

    def as_dict(self) -> dict[str, float]:
        """The metrics by name, without the epoch (and without a metric that is undefined)."""
        return {k: float(v) for k, v in asdict(self).items() if k != "epoch" and v is not None}

    def value(self, objective: str) -> float | None:
        """The validation value of ``objective`` (a ``search.objective``: ``macro_f1``...)."""
        value: float | None = getattr(self, f"val_{objective}")
        return value


@dataclass
class TrainResult:
    history: list[EpochMetrics]
    best_epoch: int  # epoch with the highest validation objective
    weights_epoch: int  # epoch whose weights the model holds (best_epoch when restored)
    stopped: str | None  # "early_stopping", "report", or None when every epoch ran
    seconds: float
    objective: str  # the spec's search.objective
    model: nn.Module = field(repr=False)
    # fit(snapshots=k): the weights of the k best epochs by the objective, best first
    snapshots: list[tuple[int, dict[str, Tensor]]] = field(default_factory=list, repr=False)
    resumed: int = 0  # epochs of the history that a checkpoint brought (not trained in this run)

    @property
    def trained_epochs(self) -> int:
        """Epochs trained by this run (a resumed run's restored ones not counted)."""
        return len(self.history) - self.resumed

    @property
    def val_accuracy(self) -> float:
        return self.history[self.weights_epoch - 1].val_accuracy

    @property
    def value(self) -> float:
        """The objective on validation, of the weights the model holds."""
        return _defined(self.history[self.weights_epoch - 1].value(self.objective))

    @property
    def best_value(self) -> float:
        """The highest objective on validation of any epoch: a trial's value."""
        return max(_defined(m.value(self.objective)) for m in self.history)

    @property
    def train_accuracy(self) -> float:
        return self.history[self.weights_epoch - 1].train_accuracy

    def summary(self) -> dict[str, object]:
        """JSON-ready summary: accuracies and objective of the kept weights, epochs run,
        seconds, history."""
        return {
            "val_accuracy": self.val_accuracy,
            "train_accuracy": self.train_accuracy,
            "objective": self.objective,
            "val_value": self.value,
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "weights_epoch": self.weights_epoch,
            "stopped": self.stopped,
            "seconds": self.seconds,
            "history": [asdict(m) for m in self.history],
        }


class Trainer:
    """Builds the model, optimizer and batches a spec describes, and trains them."""

    def __init__(
        self,
        spec: StudySpec,
        data: DataBundle,
        device: torch.device,
        model: nn.Module | None = None,
    ) -> None:
        """``model`` replaces the one the spec describes (the sanity checks probe broken ones)."""
        self.spec = spec
        self.data = data
        self.cuda = device.type == "cuda"
        torch.manual_seed(spec.seed)  # the model's initial weights and dropout masks
        self.transfer: Transfer | None = None  # model.init_from: what it started from
        if model is None:
            model = build_model(spec.model, data.info)
            if spec.model.init_from is not None:
                self.transfer = start_from(model, spec.model, data.info, len(data.train))
        model = model.to(device)
        if self.cuda:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward: Callable[[Tensor], Tensor] = (
            torch.compile(model) if spec.train.compile else model
        )
        self.optimizer = build_optimizer(model, spec.train)
        self.weights, _ = decayed_parameters(model)
        augmenter = Augmenter(spec.augment, data.info.num_classes, spec.seed, device)
        self.batches = TrainBatches(
            data, spec.train.batch_size, augmenter, spec.seed, channels_last=self.cuda
        )

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        return _autocast(self.cuda)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, x: Tensor, labels: Tensor, targets: Tensor | None) -> tuple[Tensor, Tensor]:
        """One optimizer step; returns the (detached) data loss and the logits."""
        raise_if_cancelled()
        t = self.spec.train
        with self.autocast():
            logits = self.forward(x)
        loss = F.cross_entropy(
            logits.float(),
            labels if targets is None else targets,
            label_smoothing=t.label_smoothing,
        )
        objective = loss
        penalty = explicit_penalty(self.weights, t.l1, t.l2)
        if penalty is not None:
            objective = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def train_epoch(self, epoch: int, total_epochs: int, on_step: StepFn | None = None) -> Tensor:
        """Train one epoch (0-based); returns device sums ``[loss * n, correct, n]``."""
        self.model.train()
        if self.transfer is not None:
            self.transfer.hold()
        steps = len(self.batches)
        totals = torch.zeros(3, device=self.data.train.labels.device)
        for i, (x, labels, targets) in enumerate(self.batches.epoch()):
            self.set_lr(learning_rate(self.spec.train, epoch + (i + 1) / steps, total_epochs))
            loss, logits = self.step(x, labels, targets)
            n = labels.shape[0]
            totals[0] += loss * n
            totals[1] += (logits.argmax(1) == labels).sum()
            totals[2] += n
            if on_step is not None:
                on_step(i + 1, steps)
        return totals

    def predict(self, split: Split, tta: Tta | bool = "none") -> Tensor:
        """Class probabilities ``(N, C)`` for ``split`` in eval mode, averaged over the views of
        ``tta`` (True: ``flip``; see ``hpsearch.trained.tta_probabilities``)."""
        self.model.eval()
        views: Tta = ("flip" if tta else "none") if isinstance(tta, bool) else tta
        return predict_split(self.forward, self.spec, self.data, split, views, self.cuda)

    def evaluate(self, split: Split, tta: Tta | bool = "none") -> Tensor:
        """Device sums ``[loss * n, correct]`` over ``split`` in eval mode (TTA optional)."""
        return probability_sums(self.predict(split, tta), split.labels)

    def fit(
        self,
        report: ReportFn | None = None,
        epochs: int | None = None,
        on_step: StepFn | None = None,
        snapshots: int = 0,
        resume: dict[str, Any] | None = None,
        checkpoint: CheckpointSink | None = None,
        keep_last: bool = False,
        extend: bool = False,
    ) -> TrainResult:
        """Train ``epochs`` (default: the spec's) with early stopping on the spec's objective
        and the report callback; keep the weights of the ``snapshots`` best epochs (a snapshot
        ensemble's members). ``resume``: a checkpoint (``read_checkpoint``) of this run to go on
        from (its epochs reported again: a retry is a new Optuna trial), or with ``extend`` of a
        shorter run of this model that this one continues. ``checkpoint``: where to save one
        after an epoch, at most once in its ``every_seconds``, and with ``keep_last`` after the
        last epoch of a run its report did not stop (a later round may continue it)."""
        t = self.spec.train
        total = epochs or t.epochs
        objective = self.spec.search.objective
        tracker = BestTracker(self.model, objective, t.early_stopping_patience, t.min_delta)
        kept = Snapshots(self.model, objective, snapshots)
        history = [] if resume is None else restore(self, resume, total, tracker, kept, extend)
        resumed = len(history)
        stopped = "report" if _replayed_to_a_stop(report, history) else None
        start = saved = time.perf_counter()
        for epoch in range(resumed, total if stopped is None else resumed):
            metrics = self.run_epoch(epoch, total, on_step)
            history.append(metrics)
            tracker.update(metrics)
            kept.offer(metrics)
            if report is not None and report(metrics.epoch, metrics.as_dict()):
                stopped = "report"
                break
            if tracker.exhausted:
                stopped = "early_stopping"
                break
            due = checkpoint is not None and time.perf_counter() - saved >= checkpoint.every_seconds
            if checkpoint is not None and due and epoch + 1 < total:
                checkpoint.save(capture(self, total, history, tracker, kept), epoch + 1)
                saved = time.perf_counter()
        if checkpoint is not None and keep_last and stopped != "report":
            checkpoint.save(capture(self, total, history, tracker, kept), len(history))
        weights_epoch = tracker.restore() or len(history)
        return TrainResult(
            history=history,
            best_epoch=tracker.best_epoch,
            weights_epoch=weights_epoch,
            stopped=stopped,
            seconds=time.perf_counter() - start,
            objective=objective,
            model=self.model,
            snapshots=kept.best(),
            resumed=resumed,
        )

    def run_epoch(self, epoch: int, total: int, on_step: StepFn | None = None) -> EpochMetrics:
        """Train one epoch (0-based) of ``total`` and measure it on the validation split."""
        t = self.spec.train
        began = time.perf_counter()
        lr = learning_rate(t, epoch + 1 / len(self.batches), total)
        train_sums = self.train_epoch(epoch, total, on_step)
        val = self.data.val
        probs = self.predict(val, t.tta_flip)  # (N, C)
        with_auc = self.spec.search.objective == "roc_auc" or probs.numel() <= EPOCH_ROC_AUC_LIMIT
        # the probabilities, or only the predicted classes (exact in float32 below 2**24)
        outputs = probs if with_auc else probs.argmax(1).float()
        sums = torch.cat([train_sums, probability_sums(probs, val.labels), outputs.flatten()])
        host = sums.cpu()  # the one host sync
        loss_sum, correct, n, val_loss_sum, val_correct = host[:5].tolist()
        train_loss, val_loss = loss_sum / n, val_loss_sum / len(val)
        classes = self.data.info.num_classes
        _check_diverged(epoch + 1, train_loss, val_loss, classes, t.divergence_factor, t.lr)
        if with_auc:
            measured = scores(host[5:].view(probs.shape).numpy(), self.val_labels)
        else:
            measured = {**label_scores(host[5:].long().numpy(), self.val_labels), "roc_auc": None}
        return EpochMetrics(
            epoch=epoch + 1,
            train_loss=train_loss,
            train_accuracy=correct / n,
            val_loss=val_loss,
            val_accuracy=val_correct / len(val),
            lr=lr,
            seconds=time.perf_counter() - began,
            val_balanced_accuracy=_defined(measured["balanced_accuracy"]),
            val_macro_f1=_defined(measured["macro_f1"]),
            val_roc_auc=measured["roc_auc"],
        )

    @functools.cached_property
    def val_labels(self) -> np.ndarray[Any, Any]:
        """The validation labels on the host, copied once (the metrics are computed there)."""
        return self.data.val.labels.cpu().numpy()


def _replayed_to_a_stop(report: ReportFn | None, history: list[EpochMetrics]) -> bool:
    """Report a resumed run's restored epochs again, in order; True once the report says stop."""
    return report is not None and any(report(m.epoch, m.as_dict()) for m in history)


def _autocast(cuda: bool) -> contextlib.AbstractContextManager[object]:
    return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()


@torch.no_grad()
def predict_split(
    forward: Callable[[Tensor], Tensor],
    spec: StudySpec,
    data: DataBundle,
    split: Split,
    tta: Tta = "none",
    cuda: bool = False,
) -> Tensor:
    """Class probabilities ``(N, C)`` of a model in eval mode (``forward``) on ``split``,
    averaged over the views of ``tta``: mirrored ones only for flip-invariant classes, crops
    padded as the spec's training crops."""
    padding = spec.augment.crop_padding or DEFAULT_TTA_PADDING
    flips = data.info.flip_invariant
    chunks = []
    for x, _ in eval_batches(data, split, spec.train.eval_batch_size, channels_last=cuda):
        with _autocast(cuda):
            chunks.append(tta_probabilities(forward, x, tta, flips=flips, padding=padding))
    return torch.cat(chunks)


def probability_sums(probs: Tensor, labels: Tensor) -> Tensor:
    """Device sums ``[negative log-likelihood, correct]`` of class probabilities ``(N, C)``."""
    nll = F.nll_loss(probs.clamp_min(1e-12).log(), labels, reduction="sum")
    return torch.stack([nll, (probs.argmax(1) == labels).sum().float()])


def _check_diverged(
    epoch: int, train_loss: float, val_loss: float, num_classes: int, factor: float, lr: float
) -> None:
    """Raise if a loss is NaN/inf, or the training loss is ``factor`` times that of a uniform guess.

    With batch norm a far too high learning rate often gives huge but finite losses (1e20 and
    more), so finiteness alone would let such a run spend its whole budget. Checked before the
    validation metrics are computed: scikit-learn refuses NaN probabilities.
    """
    limit = factor * math.log(num_classes)
    for name, value in (("training loss", train_loss), ("validation loss", val_loss)):
        if not math.isfinite(value):
            raise DivergedError(epoch, f"the {name} is {value}", lr)
    if train_loss > limit:
        raise DivergedError(
            epoch,
            f"the training loss {train_loss:.3g} is above {factor:g} x ln({num_classes})",
            lr,
        )


def _defined(value: float | None) -> float:
    # only ROC-AUC may be undefined, and fit raises ObjectiveUndefinedError when the objective is
    assert value is not None
    return value
