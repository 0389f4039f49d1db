"""``hpsearch train``: one training run of a spec, with a live view or a JSON result."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click

from hpsearch.cli._main import main, run_reporting_errors

if TYPE_CHECKING:  # pydantic, PyTorch and rich load when a command runs, not for hpsearch --help
    import torch

    from hpsearch.spec import StudySpec
    from hpsearch.training import EpochMetrics, TrainResult


@main.command()
@click.option(
    "--spec",
    "spec_path",
    required=True,
    help="Study spec file (YAML or JSON), or a bundled name such as digits.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec field, e.g. train.lr=0.05 (repeatable).",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result last.")
def train(
    spec_path: str, overrides: tuple[str, ...], epochs: int | None, device: str, as_json: bool
) -> None:
    """Train the spec's CNN once and report per-epoch metrics."""
    from hpsearch.spec import load_spec

    started = time.perf_counter()
    extra = [*overrides, *([f"train.epochs={epochs}"] if epochs else [])]
    spec = run_reporting_errors(lambda: load_spec(spec_path, extra), as_json)
    result, used = run_reporting_errors(lambda: _train(spec, device, as_json), as_json)
    summary = {"spec": spec.name, "device": str(used), **result.summary()}
    summary["wall_seconds"] = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(summary))
    else:
        _print_summary(result)


def _train(spec: StudySpec, device_name: str, quiet: bool) -> tuple[TrainResult, torch.device]:
    from hpsearch.data import load_data
    from hpsearch.device import resolve_device
    from hpsearch.models import own_model_allowed
    from hpsearch.training import Trainer

    device = resolve_device(device_name)
    data = load_data(spec.dataset, spec.seed, device)
    with own_model_allowed(spec.model):  # the user's own spec, on their own machine
        trainer = Trainer(spec, data, device)
    if quiet:
        return trainer.fit(), device
    view = _LiveView(spec, len(data.train), len(data.val), str(device))
    with view.live:
        result = trainer.fit(report=view.epoch_done, on_step=view.step_done)
        view.live.update(view.table)  # the finished run keeps its table, not a full progress bar
    if not view.console.is_terminal:
        view.console.line()  # off a terminal, Live leaves its last line open
    return result, device


class _LiveView:
    """A progress bar over the run's steps above a table that gains a row every epoch."""

    def __init__(self, spec: StudySpec, n_train: int, n_val: int, device: str) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Table

        self.total_epochs = spec.train.epochs
        self.console = Console()
        self.console.print(
            f"[bold]{spec.name}[/]: {spec.dataset.name}, {n_train} train / {n_val} val images, "
            f"{spec.train.optimizer} lr={spec.train.lr:g}, {self.total_epochs} epochs on {device}"
        )
        self.table = Table("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "s")
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task("train", total=None, epoch=1, epochs=self.total_epochs)
        self.epoch = 1
        self.live = Live(
            Group(self.table, self.progress), console=self.console, refresh_per_second=8
        )

    def step_done(self, step: int, steps: int) -> None:
        self.progress.update(self.task, completed=step, total=steps, epoch=self.epoch)

    def epoch_done(self, epoch: int, m: dict[str, float]) -> bool:
        self.table.add_row(
            str(epoch),
            f"{m['train_loss']:.4f}",
            f"{m['train_accuracy']:.4f}",
            f"{m['val_loss']:.4f}",
            f"{m['val_accuracy']:.4f}",
            f"{m['lr']:.3g}",
            f"{m['seconds']:.2f}",
        )
        self.epoch = epoch + 1
        return False


def _print_summary(result: TrainResult) -> None:
    best: EpochMetrics = result.history[result.weights_epoch - 1]
    why = {"early_stopping": "early stopping", "report": "stopped by the caller"}
    ended = why.get(result.stopped or "", "all epochs run")
    click.echo(
        f"val accuracy {best.val_accuracy:.4f} (train {best.train_accuracy:.4f}) with the weights "
        f"of epoch {result.weights_epoch}; {len(result.history)} epoch"
        f"{'' if len(result.history) == 1 else 's'} ({ended}) in "
        f"{result.seconds:.1f}s"
    )
