"""What the search commands show people: the stages as they progress, and the final summary.

At a terminal, a live table redrawn after every item. Anywhere else (a log file, a pipe), where
a live view would print nothing until the end, one plain line per change of a stage's status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hpsearch.cli._main import fail

if TYPE_CHECKING:
    from hpsearch.results import Outcome, WorkItem


class SearchView:
    """Follows a study through its summaries: at a terminal, the stages with their trial counts
    and the best trial so far, redrawn; elsewhere, a line whenever a stage changes status."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live: Live | None = None
        if self.console.is_terminal:
            self.live = Live(Text("starting..."), console=self.console, refresh_per_second=4)
        else:
            self.console.soft_wrap = True  # a log's lines are not cut at 80 columns
        self._statuses: dict[str, str] = {}

    def __enter__(self) -> SearchView:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(
        self,
        summary: dict[str, Any],
        item: WorkItem | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        if self.live is not None:
            self.live.update(self.render(summary, item, outcome))
            return
        for stage in summary["stages"]:
            before = self._statuses.get(stage["name"], "pending")
            self._statuses[stage["name"]] = stage["status"]
            if stage["status"] not in (before, "pending"):
                line = f"hpsearch: {stage['name']} {stage['status']}{_stage_detail(stage)}"
                self.console.print(line, markup=False, highlight=False)

    @staticmethod
    def render(
        summary: dict[str, Any], item: WorkItem | None = None, outcome: Outcome | None = None
    ) -> Group:
        """The stages table, the best trial so far, and the last finished item."""
        table = Table("stage", "status", "done", "pruned", "failed", "best val", "epochs", "s")
        for stage in summary["stages"]:
            counts = stage.get("counts") or {}
            table.add_row(
                stage["name"],
                stage["status"],
                str(counts.get("complete", "")),
                str(counts.get("pruned", "")),
                str(counts.get("failed", "")),
                f"{value:.4f}" if (value := _best_value(stage)) is not None else "",
                f"{stage['trial_epochs']:.1f}" if stage.get("trial_epochs") else "",
                f"{stage['seconds']:.1f}" if stage.get("seconds") else "",
            )
        best = summary["best"]
        line = "best so far: none yet"
        value = best.get("value", best["val_accuracy"])
        if value is not None:
            name = best.get("objective", "accuracy")
            line = f"best so far: val {name} {value:.4f}  " + _params(best["params"])
        last = ""
        if item is not None and outcome is not None:
            number = f" #{item.trial_number}" if item.trial_number is not None else ""
            score = f" {outcome.value:.4f}" if outcome.value is not None else ""
            last = f"\nlast: {item.stage}{number} {outcome.state}{score}"
        waiting = summary.get("message") if summary.get("state") == "running" else None
        note = f"\n{waiting}" if waiting else ""  # a running study says why it waits
        return Group(table, Text(line + last + note))


def _best_value(stage: dict[str, Any]) -> float | None:
    result = stage.get("result") or {}
    if stage["name"] == "final" and "val_accuracy" in result:  # the objective, as a trial's
        value = result.get("val_value")
        return float(result["val_accuracy"] if value is None else value)
    best = result.get("best")
    value = best.get("value") if isinstance(best, dict) else None
    return float(value) if value is not None else None


def _stage_detail(stage: dict[str, Any]) -> str:
    """What the line of a stage adds to its status: the trials done, the best value, or why."""
    counts, result = stage.get("counts"), stage.get("result") or {}
    if stage["status"] == "running" and counts and "trials" in result:
        done = counts.get("complete", 0) + counts.get("pruned", 0) + counts.get("failed", 0)
        return f" ({done}/{result['trials']} trials)"
    value = _best_value(stage)
    if value is not None and stage["status"] not in ("failed", "skipped"):
        return f", best val {value:.4f}"
    why = result.get("reason") or (result.get("verdict") if stage["status"] == "failed" else None)
    return f": {why}" if why else ""


def _params(params: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.3g}" for k, v in params.items())


def _print_test_metrics(console: Console, test: dict[str, Any]) -> None:
    """The test split's other scalars, and its per-class metrics (up to 20 classes)."""
    auc = f"{test['roc_auc']:.4f}" if test.get("roc_auc") is not None else "n/a (one class)"
    console.print(
        f"  test balanced accuracy {test['balanced_accuracy']:.4f}, "
        f"macro-F1 {test['macro_f1']:.4f}, ROC-AUC {auc}"
    )
    classes = test.get("classes") or []
    if not classes or len(classes) > 20:
        return
    table = Table("class", "precision", "recall", "F1", "support", title="test, per class")
    for c in classes:
        numbers = [f"{c[k]:.3f}" for k in ("precision", "recall", "f1")]
        table.add_row(str(c["name"]), *numbers, str(c["support"]))
    console.print(table)


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
    if best.get("value") is not None:
        console.print(f"  objective {best['objective']}: validation {best['value']:.4f}")
    console.print(f"  validation accuracy {val:.4f}, test accuracy {test:.4f}")
    final = next((s["result"] for s in result["stages"] if s["name"] == "final"), None)
    if final and final.get("test_metrics"):
        _print_test_metrics(console, final["test_metrics"])
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
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]note:[/] {warning}", markup=True, highlight=False)
    console.print(f"  {where} (Optuna studies '{result['study']}:coarse', ...)")


def exit_unless_completed(result: dict[str, Any]) -> None:
    """A study that ended other than completed: its message as the error line, exit status 1
    (the summary, JSON or not, is already printed)."""
    if result["state"] != "completed":
        fail(result["message"] or f"study {result['study']!r} is {result['state']}")
