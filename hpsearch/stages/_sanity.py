"""Stage 1, the sanity checks: initial loss against ln(C), and overfitting a small sample.

Both run with every regularizer and augmentation off. Verdicts (``verdict`` of each check):

- initial loss: ``passed``, ``head mismatch`` (the model's outputs are not one per class),
  ``initial loss off`` (further than the tolerance from ln(C));
- overfit: ``passed``, ``diverged`` (loss NaN/inf or exploding: LR too high or bad init),
  ``not learning`` (loss not going down: LR too low or bad init), ``labels look random`` (the sample
  is learnt but validation stays at chance: shuffled or misaligned labels), ``not memorizing``
  (loss falls but the sample is not fitted within the step budget, and falls by less than
  ``recipe.sanity.overfit_trend_drop``: a network whose loss falls by that much passes, with a
  note, since it learns and only needs more steps than the check gives it).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hpsearch.data import DataBundle, Split, eval_batches
from hpsearch.recipe import up_front_spec, without_regularization
from hpsearch.results import InitialLossCheck, OverfitCheck, SanityResult
from hpsearch.spec import StudySpec
from hpsearch.training import Trainer


def check_initial_loss(
    spec: StudySpec, data: DataBundle, device: torch.device, model: nn.Module | None = None
) -> InitialLossCheck:
    """Mean cross-entropy of a fresh model over a few batches, against ln(C)."""
    cfg = spec.recipe.sanity
    trainer = Trainer(without_regularization(spec), data, device, model)
    classes = data.info.num_classes
    expected = math.log(classes)
    result: dict[str, Any] = {"check": "initial_loss", "expected": expected, "classes": classes}
    losses = []
    trainer.model.train()
    with torch.no_grad():
        for i, (x, labels, _) in enumerate(trainer.batches.epoch()):
            if i == cfg.initial_loss_batches:
                break
            with trainer.autocast():
                logits = trainer.forward(x).float()
            if logits.shape[1] != classes:
                return InitialLossCheck(
                    **result,
                    **_verdict(
                        "head mismatch",
                        f"the model has {logits.shape[1]} outputs but {data.info.name} has "
                        f"{classes} classes: the head must have one output per class",
                    ),
                )
            losses.append(F.cross_entropy(logits, labels).item())
    measured = sum(losses) / len(losses)
    off = abs(measured - expected) / expected
    result |= {"measured": measured, "relative_error": off, "tolerance": cfg.initial_loss_tolerance}
    if trainer.transfer is not None:  # trained weights: ln(C) is what an untrained model gives
        said = f"{trainer.transfer.describe()}; its initial loss is not held to ln(C)"
        return InitialLossCheck(**result, **_verdict("passed", said))
    if off <= cfg.initial_loss_tolerance:
        return InitialLossCheck(**result, **_verdict("passed", ""))
    why = (
        "too high: the outputs are confident at initialization (head init too large) "
        "or the labels do not match the outputs"
        if measured > expected
        else "below chance before any training: labels may leak into the inputs"
    )
    return InitialLossCheck(
        **result,
        **_verdict(
            "initial loss off",
            f"initial loss {measured:.3f} vs ln({classes}) = {expected:.3f} is {why}",
        ),
    )


def check_overfit(
    spec: StudySpec, data: DataBundle, device: torch.device, model: nn.Module | None = None
) -> OverfitCheck:
    """Train on a fixed small sample until it is fitted, then see whether anything generalizes."""
    cfg = spec.recipe.sanity
    quiet = without_regularization(spec)
    trainer = Trainer(quiet, data, device, model)
    lr = quiet.train.lr
    sample = _sample_batches(trainer, cfg.overfit_batches, cfg.overfit_images)
    n_images = sum(len(y) for _, y in sample)
    limit = quiet.train.divergence_factor * math.log(data.info.num_classes)
    losses, accuracy, diverged = _fit_sample(trainer, sample, spec, limit)
    result: dict[str, Any] = {
        "check": "overfit",
        "lr": lr,
        "images": n_images,
        "steps": len(losses),
        "curve": [loss if math.isfinite(loss) else None for loss in losses],
        "train_accuracy": accuracy,
        "pass_accuracy": cfg.overfit_pass_accuracy,
    }
    if diverged:
        return _overfit(
            result,
            "diverged",
            f"the loss blew up at step {len(losses)}: the learning rate (train.lr = {lr:g}) is "
            "too high, or the initialization is bad",
        )
    window = len(sample)
    first, last = _mean(losses[:window]), _mean(losses[-window:])
    result |= {"first_loss": first, "last_loss": last}
    # a sample fitted within the first pass has no drop to measure: it is learning, plainly
    if accuracy < cfg.overfit_pass_accuracy and last > (1 - cfg.overfit_min_drop) * first:
        return _overfit(result, "not learning", _not_learning(first, last, lr))
    size = trainer.spec.train.eval_batch_size
    _settle_batch_norm(trainer, sample)
    val_accuracy = _accuracy(trainer, list(eval_batches(data, data.val, size, trainer.cuda)))
    chance = 1 / data.info.num_classes
    z = (val_accuracy - chance) / math.sqrt(chance * (1 - chance) / len(data.val))
    result |= {"val_accuracy": val_accuracy, "chance": chance, "val_z": z}
    if z < cfg.chance_z:
        return _overfit(
            result,
            "labels look random",
            f"the sample is learnt (train accuracy {accuracy:.2f}) but validation stays "
            f"at chance ({val_accuracy:.3f} vs {chance:.3f}): the labels look unrelated to "
            "the images (shuffled or misaligned?)",
        )
    if accuracy < cfg.overfit_pass_accuracy and _learning(cfg.overfit_trend_drop, first, last):
        return _overfit(
            result,
            "passed",
            f"{n_images} images were not all fitted in {len(losses)} steps (train accuracy "
            f"{accuracy:.3f}), but their loss fell from {first:.3f} to {last:.3f}: the "
            "network learns (recipe.sanity.overfit_trend_drop)",
        )
    if accuracy < cfg.overfit_pass_accuracy:
        return _overfit(
            result,
            "not memorizing",
            f"{n_images} images were not fitted in {len(losses)} steps (train accuracy "
            f"{accuracy:.3f} < {cfg.overfit_pass_accuracy}): the model is too small, the "
            "learning rate is off, or the data pipeline is broken",
        )
    return _overfit(result, "passed", "")


def _learning(trend_drop: float | None, first: float, last: float) -> bool:
    """Whether a loss that went from ``first`` to ``last`` fell by ``trend_drop`` of itself."""
    return trend_drop is not None and last <= (1 - trend_drop) * first


def _not_learning(first: float, last: float, lr: float) -> str:
    if last <= first:
        return (
            f"the loss went from {first:.3f} to only {last:.3f}: the learning rate "
            f"(train.lr = {lr:g}) is too low, or the initialization is bad"
        )
    return (
        f"the loss rose from {first:.3f} to {last:.3f} without diverging: the "
        f"learning rate (train.lr = {lr:g}) or the initialization is off"
    )


def _fit_sample(
    trainer: Trainer, sample: list[tuple[Tensor, Tensor]], spec: StudySpec, limit: float
) -> tuple[list[float], float, bool]:
    """Train on ``sample`` until it is fitted (or the step budget is spent, or the loss passes
    ``limit``): the loss of every step, the last training accuracy, and whether it diverged."""
    cfg = spec.recipe.sanity
    losses: list[float] = []
    accuracy = 0.0
    correct = 0
    trainer.model.train()
    for step in range(cfg.overfit_steps):
        x, labels = sample[step % len(sample)]
        loss, logits = trainer.step(x, labels, None)
        losses.append(loss.item())  # a sync per step: the check needs it
        if not math.isfinite(losses[-1]) or losses[-1] > limit:
            return losses, accuracy, True
        # the pass's accuracy in training mode, as each batch was seen: an eval-mode pass would
        # use batch norm's running statistics, which lag far behind a few hundred fast steps
        correct += int((logits.argmax(1) == labels).sum())
        if (step + 1) % len(sample) == 0:
            accuracy, correct = correct / sum(len(y) for _, y in sample), 0
            if accuracy >= cfg.overfit_pass_accuracy:
                break
    return losses, accuracy, False


def run_sanity(
    spec: StudySpec, data: DataBundle, device: torch.device, model: nn.Module | None = None
) -> tuple[SanityResult, float]:
    """Both checks, and the trial-epochs they took. ``passed`` is True only if both pass;
    ``verdict`` is the first failure's."""
    steps_per_epoch = train_steps_per_epoch(spec, data)
    spec = up_front_spec(spec, steps_per_epoch)  # within budget.up_front_share of the budget
    checks: list[InitialLossCheck | OverfitCheck] = [check_initial_loss(spec, data, device, model)]
    if checks[0].verdict != "head mismatch":  # a wrong head cannot be trained at all
        checks.append(check_overfit(spec, data, device, model))
    failed = [c for c in checks if c.verdict != "passed"]
    steps = sum(c.steps for c in checks if isinstance(c, OverfitCheck))
    result = SanityResult(
        passed=not failed,
        verdict=failed[0].verdict if failed else "passed",
        advice=failed[0].advice if failed else "",
        checks=checks,
    )
    return result, steps / steps_per_epoch


def train_steps_per_epoch(spec: StudySpec, data: DataBundle) -> int:
    """The optimizer steps of one epoch over the training split: a trial-epoch, in steps."""
    return max(1, len(data.train) // min(spec.train.batch_size, len(data.train)))


def _overfit(result: dict[str, Any], verdict: str, advice: str) -> OverfitCheck:
    return OverfitCheck(**result, **_verdict(verdict, advice))


def _verdict(verdict: str, advice: str) -> dict[str, Any]:
    return {"verdict": verdict, "passed": verdict == "passed", "advice": advice}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _sample_batches(
    trainer: Trainer, count: int, images: int | None
) -> list[tuple[Tensor, Tensor]]:
    """The first ``count`` batches of the (already shuffled) training split, unaugmented; or,
    with ``images``, its first ``images`` in batches of at most the batch size."""
    data, size = trainer.data, trainer.batches.batch_size
    n = min(count, max(1, len(data.train) // size)) * size
    if images is not None:
        n = min(images, len(data.train))
        size = min(size, n)
    sample = Split(data.train.images[:n], data.train.labels[:n])
    return list(eval_batches(data, sample, size, trainer.cuda))


@torch.no_grad()
def _settle_batch_norm(trainer: Trainer, sample: list[tuple[Tensor, Tensor]]) -> None:
    """Set batch norm's running statistics to the sample's own (their mean over its batches):
    after the few dozen steps a fitted sample may take, the running averages still lag far
    behind the weights, and an eval-mode pass would score the model at chance."""
    norms = [m for m in trainer.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the passes below
    trainer.model.train()
    for x, _ in sample:
        with trainer.autocast():
            trainer.forward(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def _accuracy(trainer: Trainer, batches: list[tuple[Tensor, Tensor]]) -> float:
    trainer.model.eval()
    correct, total = 0, 0
    for x, labels in batches:
        with trainer.autocast():
            correct += int((trainer.forward(x).argmax(1) == labels).sum())
        total += len(labels)
    return correct / total
