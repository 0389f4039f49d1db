"""``hpsearch run``: the whole coarse-to-fine search on this machine, resumable."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import optuna
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hpsearch.cli._main import EXIT_FAILED, main, run_reporting_errors
from hpsearch.recipe import Outcome, WorkItem, run_search
from hpsearch.spec import load_spec


@main.command()
@click.option("--spec", "spec_path", required=True, help="Study spec file, or a bundled name.")
@click.option(
    "--storage",
    default="sqlite:///hpsearch.db",
    show_default=True,
    help="Database URL: sqlite:///FILE or postgresql://USER@HOST/DB.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local processes for trials.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec field (repeatable).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result last.")
def run(
    spec_path: str,
    storage: str,
    workers: int,
    overrides: tuple[str, ...],
    device: str,
    as_json: bool,
) -> None:
    """Run the whole search for a spec; run it again to resume."""
    spec = run_reporting_errors(lambda: load_spec(spec_path, overrides), as_json)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if as_json:
        result = run_reporting_errors(
            lambda: run_search(spec, storage, workers=workers, device=device), as_json
        )
        click.echo(json.dumps(result))
    else:
        view = _SearchView()
        with view.live:
            result = run_reporting_errors(
                lambda: run_search(
                    spec, storage, workers=workers, device=device, on_progress=view.update
                ),
                as_json,
            )
        if not view.console.is_terminal:
            view.console.line()
        _print_result(view.console, result, storage)
    if result["state"] == "failed":
        click.echo(f"error: {result['message']}", err=True)
        sys.exit(EXIT_FAILED)


class _SearchView:
    """Stages with their trial counts, and the best trial so far, redrawn after every item."""

    def __init__(self) -> None:
        self.console = Console()
        self.live = Live(Text("starting..."), console=self.console, refresh_per_second=4)

    def update(
        self, summary: dict[str, Any], item: WorkItem | None, outcome: Outcome | None
    ) -> None:
        table = Table("stage", "status", "done", "pruned", "failed", "best val", "epochs", "s")
        for stage in summary["stages"]:
            counts = stage.get("counts") or {}
            best = stage.get("best") or {}
            value = best.get("value") if isinstance(best, dict) else None
            if stage["name"] == "final" and "val_accuracy" in stage:
                value = stage["val_accuracy"]
            table.add_row(
                stage["name"],
                stage["status"],
                str(counts.get("complete", "")),
                str(counts.get("pruned", "")),
                str(counts.get("failed", "")),
                f"{value:.4f}" if value is not None else "",
                f"{stage.get('trial_epochs', 0):.1f}" if "trial_epochs" in stage else "",
                f"{stage.get('seconds', 0):.1f}" if "seconds" in stage else "",
            )
        best = summary["best"]
        line = "best so far: none yet"
        if best["val_accuracy"] is not None:
            line = f"best so far: val {best['val_accuracy']:.4f}  " + _params(best["params"])
        last = ""
        if item is not None and outcome is not None:
            number = f" #{item.trial_number}" if item.trial_number is not None else ""
            value = f" {outcome.value:.4f}" if outcome.value is not None else ""
            last = f"\nlast: {item.stage}{number} {outcome.state}{value}"
        self.live.update(Group(table, Text(line + last)))


def _params(params: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.3g}" for k, v in params.items())


def _print_result(console: Console, result: dict[str, Any], storage: str) -> None:
    best = result["best"]
    if result["state"] != "completed":
        console.print(f"study [bold]{result['study']}[/] is {result['state']}: {result['message']}")
        return
    console.print(
        f"[bold]{result['study']}[/] completed. Best configuration: {_params(best['params'])}"
    )
    val, test = best["val_accuracy"], best["test_accuracy"]
    console.print(f"  validation accuracy {val:.4f}, test accuracy {test:.4f}")
    diagnosis = result["diagnosis"]
    console.print(
        f"  diagnosis: {diagnosis['verdict']} (train-val gap {diagnosis['gap']:.3f}): "
        f"{diagnosis['advice']}"
    )
    spent = ", ".join(
        f"{name} {c['trial_epochs']:.0f} ep / {c['seconds']:.0f}s"
        for name, c in result["compute"].items()
    )
    console.print(f"  compute: {spent}")
    console.print(f"  stored in {storage} (Optuna studies '{result['study']}:coarse', ...)")
