"""What ``hpsearch up`` and ``hpsearch run`` show when their output is not a terminal: a line per
change of a stage's status, at once, instead of a live table that shows nothing until the end."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from hpsearch.cli._view import SearchView
from hpsearch.client import ServerError

STAGES = ("sanity", "range_test", "coarse", "refine-1", "refine-2", "final")


def summary(state: str = "running", **stages: dict[str, Any]) -> dict[str, Any]:
    """A study summary as the server gives it: ``stages`` by name (``refine_1`` for refine-1),
    the others pending."""
    listed = []
    for name in STAGES:
        given = stages.get(name.replace("-", "_"), {})
        top = {k: v for k, v in given.items() if k in ("status", "counts")}
        result = {k: v for k, v in given.items() if k not in ("status", "counts")} or None
        listed.append({"name": name, "status": "pending", **top, "result": result})
    best = {"params": {"lr": 0.1}, "val_accuracy": 0.99, "test_accuracy": 0.98}
    return {"study": "demo", "state": state, "message": None, "stages": listed, "best": best}


def counts(complete: int, pruned: int = 0, running: int = 0) -> dict[str, int]:
    return {"complete": complete, "pruned": pruned, "failed": 0, "running": running}


# a study followed from its sanity checks to its end, as a poller sees it
PASSED = {"status": "passed", "verdict": "passed"}
DONE = {"status": "completed"}
SUMMARIES: list[dict[str, Any] | Exception] = [
    summary(sanity={"status": "running"}),
    summary(sanity={"status": "running"}),  # nothing changed: no line
    summary(sanity=PASSED, range_test={"status": "running"}),
    ServerError("HTTP 503: the database is unavailable", 503),  # a moment: look again
    summary(
        sanity=PASSED,
        range_test=PASSED,
        coarse={"status": "running", "trials": 30, "counts": counts(10, 2, running=2)},
    ),
    summary(
        sanity=PASSED,
        range_test=PASSED,
        coarse={"status": "running", "trials": 30, "counts": counts(20, 5, running=2)},
    ),  # more trials done, but the same status: no line
    summary(
        sanity=PASSED,
        range_test=PASSED,
        coarse={**DONE, "trials": 30, "counts": counts(22, 8), "best": {"value": 0.97123}},
        refine_1={**DONE, "trials": 15, "counts": counts(15), "best": {"value": 0.98}},
        refine_2={"status": "skipped", "reason": "the best improved by less than 0.5 points"},
        final={"status": "running"},
    ),
    summary(
        "completed",
        sanity=PASSED,
        range_test=PASSED,
        coarse={**DONE, "trials": 30, "counts": counts(22, 8), "best": {"value": 0.97123}},
        refine_1={**DONE, "trials": 15, "counts": counts(15), "best": {"value": 0.98}},
        refine_2={"status": "skipped", "reason": "the best improved by less than 0.5 points"},
        final={**DONE, "val_accuracy": 0.99, "test_accuracy": 0.98},
    ),
]

LINES = [
    "hpsearch: sanity running",
    "hpsearch: sanity passed",
    "hpsearch: range_test running",
    "hpsearch: range_test passed",
    "hpsearch: coarse running (12/30 trials)",
    "hpsearch: coarse completed, best val 0.9712",
    "hpsearch: refine-1 completed, best val 0.9800",
    "hpsearch: refine-2 skipped: the best improved by less than 0.5 points",
    "hpsearch: final running",
    "hpsearch: final completed, best val 0.9900",
]


def not_a_terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=60), out


def test_a_resumed_study_starts_with_the_stages_already_done() -> None:
    console, out = not_a_terminal()
    with SearchView(console) as view:
        view.update(summary(sanity=PASSED, range_test={"status": "failed", "verdict": "no"}))
    assert out.getvalue().splitlines() == [
        "hpsearch: sanity passed",
        "hpsearch: range_test failed: no",
    ]


def test_the_final_summary_says_when_the_best_value_sits_on_an_edge() -> None:
    from hpsearch.cli._view import print_result

    result = summary("completed", final=DONE)
    result |= {
        "diagnosis": {"verdict": "good fit", "gap": 0.01, "advice": "none"},
        "compute": {"coarse": {"trial_epochs": 60, "seconds": 12}},
        "warnings": ["the best lr (0.997) lies at the upper edge of the searched range"],
    }
    out = io.StringIO()
    print_result(Console(file=out, width=200), result, "in here")
    assert "note: the best lr (0.997) lies at the upper edge" in out.getvalue()


def test_the_final_summary_names_the_objective_and_the_test_metrics() -> None:
    from hpsearch.cli._view import print_result

    test = {
        "accuracy": 0.9, "balanced_accuracy": 0.55, "macro_f1": 0.58, "roc_auc": None,
        "classes": [
            {"name": "other", "precision": 0.91, "recall": 1.0, "f1": 0.95, "support": 90},
            {"name": "eight", "precision": 1.0, "recall": 0.1, "f1": 0.18, "support": 10},
        ],
        "confusion": [[90, 0], [9, 1]],
    }  # fmt: skip
    result = summary("completed", final={**DONE, "test_metrics": test})
    result["best"] |= {"objective": "macro_f1", "value": 0.6123}
    result |= {
        "diagnosis": {"verdict": "good fit", "gap": 0.01, "advice": "none"},
        "compute": {"coarse": {"trial_epochs": 60, "seconds": 12}},
    }
    out = io.StringIO()
    print_result(Console(file=out, width=200), result, "in here")
    text = out.getvalue()
    assert "objective macro_f1: validation 0.6123" in text
    assert "test balanced accuracy 0.5500, macro-F1 0.5800, ROC-AUC n/a (one class)" in text
    eight = next(line for line in text.splitlines() if "eight" in line)
    assert [w for w in eight.split() if w != "│"] == ["eight", "1.000", "0.100", "0.180", "10"]
