"""Checkpoints of a training run: everything needed to continue it at the next epoch as if it
had never stopped.

A checkpoint holds the weights, the optimizer's state (momentum, Adam's moments), the epochs run
with their metrics, the early-stopping tracker (its best weights too), the snapshot ensemble's
kept weights, and the state of every random generator the run draws from (the batches' order,
each augmentation's, dropout's). A run continued from one on the same device gives the same
weights and metrics, epoch for epoch, as the run that was never stopped (a test holds the two to
that). The spec it was made under is in it too: a checkpoint of another configuration is refused.

Files are written with ``torch.save`` and read with ``weights_only=True``: a checkpoint comes
from another machine, and reading it must not run code.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from hpsearch.errors import HPSearchError

if TYPE_CHECKING:
    from hpsearch.training._snapshots import Snapshots
    from hpsearch.training._tracker import BestTracker
    from hpsearch.training._trainer import EpochMetrics, Trainer

FORMAT = "hpsearch-checkpoint"
VERSION = 1


class CheckpointError(HPSearchError):
    """A checkpoint that cannot be continued from: unreadable, or of another run."""


class CheckpointSink(Protocol):
    """Where a run's checkpoints go (a worker uploads them, the local runner keeps them)."""

    every_seconds: float  # the least time between two checkpoints (0: after every epoch)

    def save(self, state: dict[str, Any], epoch: int) -> None:
        """Keep ``state``, taken after ``epoch`` (1-based) epochs."""


def capture(
    trainer: Trainer,
    total: int,
    history: list[EpochMetrics],
    tracker: BestTracker,
    kept: Snapshots,
) -> dict[str, Any]:
    """The state of ``trainer``'s run of ``total`` epochs after ``history``."""
    augmenter = trainer.batches.augmenter
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "batches": trainer.batches.generator.get_state(),
        "augment": {name: g.get_state() for name, g in augmenter.generators.items()},
        "numpy": augmenter.numpy_state,
    }
    if trainer.cuda:
        rng["cuda"] = torch.cuda.get_rng_state(trainer.data.train.labels.device)
    return {
        "format": FORMAT,
        "version": VERSION,
        "spec": trainer.spec.model_dump(mode="json"),
        "total": total,
        "epoch": len(history),
        "history": [asdict(m) for m in history],
        "model": _cpu(trainer.model.state_dict()),
        "optimizer": trainer.optimizer.state_dict(),
        "tracker": tracker.state(),
        "snapshots": kept.state(),
        "rng": rng,
    }


def restore(
    trainer: Trainer,
    state: dict[str, Any],
    total: int,
    tracker: BestTracker,
    kept: Snapshots,
    extend: bool = False,
) -> list[EpochMetrics]:
    """Put ``trainer``'s run back where ``state`` left it; its history so far.
    :class:`CheckpointError` when ``state`` is of another configuration or length; with
    ``extend``, ``state`` is of a shorter run of the same model that this run continues."""
    from hpsearch.training._trainer import EpochMetrics

    spec = trainer.spec.model_dump(mode="json")
    if extend:
        if state.get("spec", {}).get("model") != spec["model"]:
            raise CheckpointError("the checkpoint was made with another model section")
        if not 0 < int(state.get("epoch", 0)) < total:
            raise CheckpointError(f"the checkpoint holds {state.get('epoch')} epochs of {total}")
    elif state.get("spec") != spec:
        raise CheckpointError("the checkpoint was made under another spec")
    elif state.get("total") != total or not 0 < int(state.get("epoch", 0)) < total:
        raise CheckpointError(
            f"the checkpoint is of epoch {state.get('epoch')} of {state.get('total')}, "
            f"not of a run of {total} epochs"
        )
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    tracker.load_state(state["tracker"])
    kept.load_state(state["snapshots"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    trainer.batches.generator.set_state(rng["batches"])
    for name, g in trainer.batches.augmenter.generators.items():
        g.set_state(rng["augment"][name])
    trainer.batches.augmenter.numpy_state = rng["numpy"]
    if trainer.cuda and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], trainer.data.train.labels.device)
    return [EpochMetrics(**m) for m in state["history"]]


def write_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    torch.save(state, temp)
    os.replace(temp, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint in ``path``; :class:`CheckpointError` naming it when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: pickle, zip and torch errors
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an hpsearch checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} is a checkpoint of version {state.get('version')}")
    return state


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}
