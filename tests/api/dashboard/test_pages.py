"""The dashboard in a real browser, against a real server holding a finished digits search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.dashboard.conftest import (
    ADMIN_TOKEN,
    SIGN_IN_PAGE,
    Watched,
    chart_traces,
    serving,
    sign_in,
)
from tests.workers.conftest import TOKENS, ServerProcess


@pytest.fixture(scope="module")
def finished(
    finished_digits: tuple[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``hpsearch serve`` on the database of a finished ``hpsearch run`` of studies/digits.yaml."""
    url, _ = finished_digits
    yield from serving(url, tmp_path_factory, "finished")


def test_every_page_of_a_finished_study(
    finished: ServerProcess, watched: Watched, screenshots: Path
) -> None:
    page, base = watched.page, finished.url
    sign_in(watched, base)
    page.wait_for_selector("#studies tbody tr[data-study=digits]")
    row = page.locator("#studies tbody tr[data-study=digits]")
    assert "completed" in row.inner_text()
    page.screenshot(path=screenshots / "studies.png", full_page=True)

    study_id = finished.get("/api/studies")[0]["id"]
    summary = finished.get(f"/api/studies/{study_id}")
    page.goto(f"{base}/studies/{study_id}")
    # the range test: loss, smoothed loss, the suggested LR; the chosen range is a shaded band
    results = {s["name"]: s["result"] for s in summary["stages"]}
    range_test = results["range_test"]
    traces = chart_traces(page, "chart-range")
    assert [t["name"] for t in traces] == ["loss", "smoothed loss", "suggested LR"]
    assert traces[1]["points"] == len(range_test["curve"]["smoothed"])
    shapes = page.evaluate("() => document.getElementById('chart-range').layout.shapes")
    assert shapes[0]["x0"] == pytest.approx(range_test["range"]["low"])
    # the scatter: every search trial is a point, each round's ranges a rectangle
    points = finished.get(f"/api/studies/{study_id}/points")
    scatter = chart_traces(page, "chart-scatter")
    assert sum(t["points"] for t in scatter) == len(points["number"])
    rectangles = page.evaluate("() => document.getElementById('chart-scatter').layout.shapes")
    rounds = [r for r in results.values() if r and r.get("ranges")]
    assert len(rectangles) == len(rounds)
    # the final training's learning curves, and the diagnosis in words
    final = results["final"]
    curves = chart_traces(page, "chart-final")
    assert [t["points"] for t in curves] == [len(final["history"])] * 4
    assert f"Diagnosis: {final['diagnosis']['verdict']}" in page.inner_text("#final-text")
    for chart in ("chart-overfit", "chart-history", "chart-importance", "chart-intermediate"):
        chart_traces(page, chart)

    # the best-trials table: the API's best, in the API's order
    best = finished.get(f"/api/studies/{study_id}/best?k=20")
    shown = _rows(watched)
    assert shown == [(t["stage"], str(t["number"])) for t in best]
    page.screenshot(path=screenshots / "study.png", full_page=True)

    # the best trial, from its row (numbers repeat across rounds: a row is a stage's and a number's)
    top = best[0]
    page.click(f"#trials tbody tr[data-stage='{top['stage']}'][data-number='{top['number']}'] a")
    page.wait_for_url(f"**/trials/{top['stage']}/{top['number']}")
    page.wait_for_selector("#epochs tbody tr")
    assert page.locator("#epochs tbody tr").count() == top["epochs"]
    assert f"trial #{top['number']}" in page.inner_text("#header")
    chart_traces(page, "chart-epochs")
    page.screenshot(path=screenshots / "trial.png", full_page=True)

    # back on the study, the table sorted by learning rate: the API's order again
    page.go_back()
    page.wait_for_selector("#trials tbody tr")
    page.click("#trials th[data-key=lr]")
    by_lr = finished.get(f"/api/studies/{study_id}/trials?state=complete&sort=lr&limit=20")
    first = by_lr["trials"][0]
    page.wait_for_function(
        "([stage, number]) => { const r = document.querySelector('#trials tbody tr');"
        " return r.dataset.stage === stage && r.dataset.number === number; }",
        arg=[first["stage"], str(first["number"])],
    )
    assert _rows(watched) == [(t["stage"], str(t["number"])) for t in by_lr["trials"]]

    page.goto(f"{base}/workers")
    page.wait_for_selector("#no-workers", state="visible")
    page.goto(f"{base}/optuna/")
    page.wait_for_selector("text=digits:coarse", timeout=30_000)
    assert watched.problems == []


def test_optuna_dashboard_lists_and_serves_the_final_model(
    finished: ServerProcess, watched: Watched
) -> None:
    page, base = watched.page, finished.url
    sign_in(watched, base)
    page.wait_for_selector("#studies")
    listed = finished.get("/optuna/api/studies")["study_summaries"]
    final = next(s["study_id"] for s in listed if s["study_name"] == "digits:final")
    page.goto(f"{base}/optuna/dashboard/studies/{final}/trials")
    page.wait_for_selector("text=digits-final.pt", timeout=30_000)  # the trial's artifact
    study = finished.get("/api/studies/digits")
    model = next(s for s in study["stages"] if s["name"] == "final")["result"]["model"]
    # optuna-dashboard serves the file from the same store: the bytes the study's route serves
    served = page.evaluate(
        """async ([study, artifact]) => {
            const detail = await (await fetch(`/api/studies/${study}`)).json();  // the shim's
            const trial = detail.trials[0].trial_id;
            const r = await fetch(`/optuna/artifacts/${study}/${trial}/${artifact}`);
            return [r.status, (await r.arrayBuffer()).byteLength];
        }""",
        [final, model["artifact_id"]],
    )
    assert served == [200, model["size"]]
    assert watched.problems == []


def test_signing_in_with_the_wrong_token_or_the_worker_token_fails(
    finished: ServerProcess, watched: Watched
) -> None:
    page = watched.page
    sign_in(watched, finished.url, "not-the-token")
    page.wait_for_url(SIGN_IN_PAGE)
    assert "not this server's token" in page.inner_text("#problem")
    sign_in(watched, finished.url, TOKENS["HPSEARCH_WORKER_TOKEN"])
    page.wait_for_url(SIGN_IN_PAGE)
    assert "worker token" in page.inner_text("#problem")
    sign_in(watched, finished.url, ADMIN_TOKEN)
    page.wait_for_selector("#studies tbody tr")
    page.click("text=Sign out")
    page.wait_for_url(SIGN_IN_PAGE)
    assert watched.problems == []  # the refused sign-ins were 303s back to the form, not errors


def _rows(watched: Watched) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = watched.page.eval_on_selector_all(
        "#trials tbody tr", "rows => rows.map(r => [r.dataset.stage, r.dataset.number])"
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]
