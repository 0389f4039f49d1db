"""The best epoch of a run by the validation objective, and early stopping on it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from hpsearch.errors import ObjectiveUndefinedError

if TYPE_CHECKING:
    from hpsearch.training._trainer import EpochMetrics


class BestTracker:
    """Remembers the best epoch by the validation objective; with a patience, keeps its weights
    too.

    An epoch with the same objective but a lower validation loss also counts as better: on a
    small validation set accuracy plateaus while the model still improves, and without the
    tie-break early stopping would restore an early, high-learning-rate epoch.
    """

    def __init__(
        self, model: nn.Module, objective: str, patience: int | None, min_delta: float
    ) -> None:
        self.model = model
        self.objective = objective
        self.patience = patience
        self.min_delta = min_delta
        self.best_value = -math.inf
        self.best_loss = math.inf
        self.best_epoch = 0
        self.waited = 0
        self._state: dict[str, Tensor] | None = None

    def update(self, m: EpochMetrics) -> None:
        value = m.value(self.objective)
        if value is None:
            raise ObjectiveUndefinedError(
                self.objective, "the validation split holds examples of one class only"
            )
        better = value > self.best_value + self.min_delta
        tied = value >= self.best_value and m.val_loss < self.best_loss
        if better or tied:
            self.best_value, self.best_loss = value, m.val_loss
            self.best_epoch, self.waited = m.epoch, 0
            if self.patience is not None:
                self._state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.waited += 1

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the tracker (:meth:`load_state` puts it back)."""
        kept = self._state
        return {
            "best_value": self.best_value,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "waited": self.waited,
            "weights": None if kept is None else {k: v.to("cpu") for k, v in kept.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.best_value, self.best_loss = state["best_value"], state["best_loss"]
        self.best_epoch, self.waited = state["best_epoch"], state["waited"]
        self._state = state["weights"]

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.waited >= self.patience

    def restore(self) -> int | None:
        """Load the best weights if they were kept; returns their epoch."""
        if self._state is None:
            return None
        self.model.load_state_dict(self._state)
        return self.best_epoch
