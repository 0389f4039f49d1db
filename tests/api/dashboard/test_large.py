"""A study of 10,000 trials stays usable in the browser: its table pages and sorts, its charts
draw. (How fast its page is served is measured by bench/dashboard.py.)"""

from __future__ import annotations

from pathlib import Path

from tests.api.dashboard.conftest import Watched, chart_traces, sign_in
from tests.big_study import write_big_study
from tests.workers.conftest import ServerProcess

TRIALS = 10_000
SHOWING = "(text) => document.getElementById('trial-range').textContent === text"


def test_ten_thousand_trials_page_and_sort_in_the_browser(
    tmp_path: Path, watched: Watched, screenshots: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    study_id = write_big_study(url, "big", TRIALS)
    server = ServerProcess(url, tmp_path / "server.log")
    server.start()
    try:
        complete = server.get(f"/api/studies/{study_id}/trials?state=complete&limit=1")["total"]
        assert complete > 3000
        page = watched.page
        sign_in(watched, server.url)
        page.goto(f"{server.url}/studies/{study_id}")
        page.wait_for_function(SHOWING, arg=f"1 to 20 of {complete}")
        page.click("#trial-next")
        page.wait_for_function(SHOWING, arg=f"21 to 40 of {complete}")
        page.click("#trials th[data-key=duration]")
        longest = server.get(
            f"/api/studies/{study_id}/trials?state=complete&sort=duration&limit=1"
        )["trials"][0]
        page.wait_for_function(
            "(n) => document.querySelector('#trials tbody tr').dataset.number === n",
            arg=str(longest["number"]),
        )
        scatter = chart_traces(page, "chart-scatter")
        assert sum(t["points"] for t in scatter) > TRIALS
        chart_traces(page, "chart-intermediate")
        page.screenshot(path=screenshots / "study-10k.png")
        assert watched.problems == []
    finally:
        server.stop()
