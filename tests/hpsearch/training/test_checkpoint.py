"""A run continued from a checkpoint is the run that never stopped, epoch for epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from hpsearch.data import DataBundle
from hpsearch.training import (
    CheckpointError,
    Trainer,
    read_checkpoint,
    write_checkpoint,
)
from tests.conftest import CPU, make_spec

# every source of randomness a run draws from: the batches' order, crops, mixup, dropout
SPEC = make_spec(
    model={"widths": [8, 16], "norm": "batch", "dropout": 0.3},
    augment={"crop_padding": 2, "mixup_alpha": 0.4, "cutout": 2},
    train={"epochs": 5, "batch_size": 64, "lr": 0.05, "early_stopping_patience": 4},
)


class Killed(Exception):
    pass


class KeepAll:
    """A sink that keeps every checkpoint, written and read back as a worker's would be."""

    every_seconds = 0.0

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: dict[int, Path] = {}

    def save(self, state: dict[str, Any], epoch: int) -> None:
        self.saved[epoch] = self.folder / f"{epoch}.pt"
        write_checkpoint(state, self.saved[epoch])


def kill_at(epoch: int) -> Any:
    def report(at: int, metrics: dict[str, float]) -> bool:
        if at == epoch:
            raise Killed
        return False

    return report


def test_a_run_resumed_from_epoch_k_is_the_run_that_never_stopped(
    digits_data: DataBundle, tmp_path: Path
) -> None:
    whole = Trainer(SPEC, digits_data, CPU).fit(snapshots=2)
    sink = KeepAll(tmp_path)
    with pytest.raises(Killed):  # killed while reporting epoch 3: epochs 1 and 2 are saved
        Trainer(SPEC, digits_data, CPU).fit(report=kill_at(3), checkpoint=sink, snapshots=2)
    assert sorted(sink.saved) == [1, 2]
    reported: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reported.append(epoch)
        return False

    state = read_checkpoint(sink.saved[2])
    resumed = Trainer(SPEC, digits_data, CPU).fit(report=report, resume=state, snapshots=2)
    assert reported == [1, 2, 3, 4, 5]  # each epoch once: 1-2 from the checkpoint, 3-5 trained
    assert resumed.resumed == 2
    assert resumed.trained_epochs == 3
    assert [m.as_dict() | {"seconds": 0} for m in resumed.history[:2]] == [
        m.as_dict() | {"seconds": 0} for m in whole.history[:2]
    ]
    for a, b in zip(resumed.history, whole.history, strict=True):
        assert (a.epoch, a.train_loss, a.val_loss, a.val_accuracy, a.lr) == (
            b.epoch,
            b.train_loss,
            b.val_loss,
            b.val_accuracy,
            b.lr,
        )
    for name, weight in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], weight), name
    assert [e for e, _ in resumed.snapshots] == [e for e, _ in whole.snapshots]
    assert resumed.weights_epoch == whole.weights_epoch


def test_a_checkpoint_of_another_configuration_or_a_broken_file_is_refused(
    digits_data: DataBundle, tmp_path: Path
) -> None:
    sink = KeepAll(tmp_path)
    with pytest.raises(Killed):
        Trainer(SPEC, digits_data, CPU).fit(report=kill_at(2), checkpoint=sink)
    state = read_checkpoint(sink.saved[1])
    other = SPEC.model_copy(update={"train": SPEC.train.model_copy(update={"lr": 0.01})})
    with pytest.raises(CheckpointError, match="another spec"):
        Trainer(other, digits_data, CPU).fit(resume=state)
    with pytest.raises(CheckpointError, match="not of a run of 9 epochs"):
        Trainer(SPEC, digits_data, CPU).fit(resume=state, epochs=9)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(sink.saved[1].read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(broken)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an hpsearch checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")
