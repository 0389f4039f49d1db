"""The weights of a run's best epochs: a snapshot ensemble's members (seed 003)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

if TYPE_CHECKING:
    from hpsearch.training._trainer import EpochMetrics


class Snapshots:
    """The weights (CPU copies) of the ``k`` best epochs by the objective, ties broken by the
    lower validation loss; none when ``k`` is 0."""

    def __init__(self, model: nn.Module, objective: str, k: int) -> None:
        self.model, self.objective, self.k = model, objective, k
        self._kept: list[tuple[float, float, int, dict[str, Tensor]]] = []

    def offer(self, m: EpochMetrics) -> None:
        value = m.value(self.objective)
        if self.k <= 0 or value is None:
            return
        rank = (value, -m.val_loss)
        if len(self._kept) == self.k and rank <= self._kept[-1][:2]:
            return
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self._kept.append((*rank, m.epoch, state))
        self._kept.sort(key=lambda kept: kept[:2], reverse=True)
        del self._kept[self.k :]

    def best(self) -> list[tuple[int, dict[str, Tensor]]]:
        return [(epoch, state) for _, _, epoch, state in self._kept]

    def state(self) -> list[dict[str, Any]]:
        """What a checkpoint keeps of the snapshots (:meth:`load_state` puts it back)."""
        return [{"value": v, "neg_loss": n, "epoch": e, "weights": w} for v, n, e, w in self._kept]

    def load_state(self, state: list[dict[str, Any]]) -> None:
        self._kept = [(s["value"], s["neg_loss"], s["epoch"], s["weights"]) for s in state]
