"""The study page of a search that maximised macro-F1 on 90/10 data, in a real browser: the
objective by name, the test split's confusion matrix and its per-class metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.dashboard.conftest import Watched, chart_traces, serving, sign_in
from tests.workers.conftest import ServerProcess


@pytest.fixture(scope="module")
def eights(
    imbalanced_study: tuple[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``hpsearch serve`` on the database of the finished imbalanced search."""
    url, _ = imbalanced_study
    yield from serving(url, tmp_path_factory, "eights")


def test_the_study_page_shows_the_objective_and_the_test_confusion_matrix(
    eights: ServerProcess, watched: Watched, screenshots: Path
) -> None:
    page, base = watched.page, eights.url
    sign_in(watched, base)
    study_id = eights.get("/api/studies")[0]["id"]
    summary = eights.get(f"/api/studies/{study_id}")
    final = next(s["result"] for s in summary["stages"] if s["name"] == "final")
    test = final["test_metrics"]
    page.goto(f"{base}/studies/{study_id}")

    # the header names the objective and shows its value, not accuracy's
    page.wait_for_selector("#header dl")
    header = page.inner_text("#header")
    assert "best validation macro-F1" in header
    assert f"{summary['best']['value']:.4f}" in header
    assert "val macro-F1" in page.inner_text("#trials thead")

    # the confusion matrix: a heatmap of the test counts, the class names on both axes
    chart_traces(page, "chart-confusion")
    heatmap = page.evaluate(
        """() => { const t = document.getElementById('chart-confusion').data[0];
                   return {type: t.type, x: t.x, y: t.y, z: t.z}; }"""
    )
    names = ["other", "eight"]
    assert heatmap == {"type": "heatmap", "x": names, "y": names, "z": test["confusion"]}
    ticks = page.evaluate(  # as drawn: left to right, top to bottom (rows: the true class)
        """() => Object.fromEntries(["x", "y"].map((axis) => {
             const at = (t) => t.getBoundingClientRect()[axis === "x" ? "left" : "top"];
             const texts = [...document.querySelectorAll(`#chart-confusion .${axis}tick text`)];
             return [axis, texts.sort((a, b) => at(a) - at(b)).map((t) => t.textContent)];
           }))"""
    )
    assert ticks == {"x": names, "y": names}

    # a row per class with its precision, recall, F1 and support
    rows = page.locator("#per-class tbody tr")
    shown = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert shown == [
        [
            c["name"],
            f"{c['precision']:.4f}",
            f"{c['recall']:.4f}",
            f"{c['f1']:.4f}",
            str(c["support"]),
        ]
        for c in test["classes"]
    ]
    assert f"{test['macro_f1']:.4f}" in page.inner_text("#test-text")
    page.locator("#test-panel").screenshot(path=screenshots / "test-metrics.png")
    assert watched.problems == []
