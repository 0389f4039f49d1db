"""Reading the learning curves (docs/RECIPE.md, stage 5; the notes' "look at the loss curves").

Verdicts, first match wins:

- ``overfitting``: train - val accuracy gap above ``overfit_gap``, or validation loss rising while
  training loss falls -> "increase regularization / get more data";
- ``still improving``: validation accuracy still rising over the last epochs -> "train longer";
- ``underfitting``: small gap and low training accuracy -> "train longer / bigger model";
- ``good fit`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ADVICE = {
    "overfitting": "increase regularization (weight decay, dropout, augmentation) or get more data",
    "still improving": "train longer",
    "underfitting": "train longer or use a bigger model",
    "good fit": "nothing to change",
}


def diagnose(
    history: Sequence[Mapping[str, float]],
    *,
    overfit_gap: float,
    underfit_train_accuracy: float,
    improving_gain: float,
) -> dict[str, Any]:
    """The verdict on per-epoch metrics (dicts of train/val loss and accuracy) and its numbers."""
    tail = max(1, min(3, len(history) // 3 or 1))  # average the last epochs against noise
    train_acc = _mean([m["train_accuracy"] for m in history[-tail:]])
    val_acc = _mean([m["val_accuracy"] for m in history[-tail:]])
    gap = train_acc - val_acc
    val_losses = [m["val_loss"] for m in history]
    best_loss_epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
    val_loss_rising = (
        len(history) >= 4
        and best_loss_epoch < len(history) - 2
        and val_losses[-1] > 1.1 * val_losses[best_loss_epoch]
        and history[-1]["train_loss"] < history[best_loss_epoch]["train_loss"]
    )
    window = max(2, len(history) // 4)
    earlier = [m["val_accuracy"] for m in history[-2 * window : -window]] or [0.0]
    recent_gain = _mean([m["val_accuracy"] for m in history[-window:]]) - _mean(earlier)
    if gap > overfit_gap or val_loss_rising:
        verdict = "overfitting"
    elif recent_gain > improving_gain:
        verdict = "still improving"
    elif train_acc < underfit_train_accuracy:
        verdict = "underfitting"
    else:
        verdict = "good fit"
    return {
        "verdict": verdict,
        "advice": ADVICE[verdict],
        "gap": gap,
        "train_accuracy": train_acc,
        "val_accuracy": val_acc,
        "val_loss_rising": val_loss_rising,
        "recent_gain": recent_gain,
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
