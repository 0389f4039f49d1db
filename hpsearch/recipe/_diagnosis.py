"""Reading the learning curves (docs/RECIPE.md, stage 5; the notes' "look at the loss curves").

Verdicts, first match wins:

- ``overfitting``: train - val accuracy gap above ``overfit_gap``, or validation loss rising while
  training loss falls -> "increase regularization / get more data";
- ``still improving``: validation accuracy still rising over the last epochs -> "train longer";
- ``underfitting``: small gap and low training accuracy -> "train longer / bigger model";
- ``good fit`` otherwise.

The curves are read on accuracy, whatever ``search.objective`` is. Then the test evaluation
names the **weak classes**: those in the test split whose recall is below
``WEAK_RECALL_FRACTION`` (half) of the macro-average recall (the balanced accuracy), say, a
minority class the model mostly misses while accuracy looks fine; the advice says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hpsearch.results import Diagnosis, SplitMetrics

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


WEAK_RECALL_FRACTION = 0.5


def weak_classes(test: SplitMetrics) -> list[str]:
    """The classes of the test split (support > 0) whose recall is below
    ``WEAK_RECALL_FRACTION`` of the macro-average recall, weakest first."""
    limit = WEAK_RECALL_FRACTION * test.balanced_accuracy
    weak = [c for c in test.classes if c.support > 0 and c.recall < limit]
    return [c.name for c in sorted(weak, key=lambda c: c.recall)]


def with_weak_classes(diagnosis: Diagnosis, test: SplitMetrics, objective: str) -> Diagnosis:
    """``diagnosis`` with the test split's weak classes named, and advice for them added."""
    names = weak_classes(test)
    if not names:
        return diagnosis
    recall = {c.name: c.recall for c in test.classes}
    listed = ", ".join(f"{name!r} ({recall[name]:.2f})" for name in names[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    advice = (
        f"{diagnosis.advice}; on test, class recall of {listed}{more} is below half the average "
        f"({test.balanced_accuracy:.2f}): get more examples of them"
    )
    if objective == "accuracy":
        advice += ", or search on search.objective: balanced_accuracy or macro_f1"
    return diagnosis.model_copy(update={"advice": advice, "weak_classes": names})


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
