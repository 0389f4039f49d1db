"""What the search commands show people: a live table of the stages, and the final summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hpsearch.recipe import Outcome, WorkItem


class SearchView:
    """Stages with their trial counts, and the best trial so far, redrawn after every item."""

    def __init__(self) -> None:
        self.console = Console()
        self.live = Live(Text("starting..."), console=self.console, refresh_per_second=4)

    def update(
        self,
        summary: dict[str, Any],
        item: WorkItem | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        self.live.update(self.render(summary, item, outcome))

    @staticmethod
    def render(
        summary: dict[str, Any], item: WorkItem | None = None, outcome: Outcome | None = None
    ) -> Group:
        """The stages table, the best trial so far, and the last finished item."""
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
        return Group(table, Text(line + last))


def _params(params: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.3g}" for k, v in params.items())


def print_result(console: Console, result: dict[str, Any], where: str) -> None:
    """The final summary of a study for people: best configuration, accuracies, diagnosis."""
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
    console.print(f"  {where} (Optuna studies '{result['study']}:coarse', ...)")
