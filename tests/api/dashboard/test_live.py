"""The dashboard keeps up by itself: a trial finished while the page is open shows up."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.dashboard.conftest import Watched, sign_in
from tests.conftest import launch
from tests.workers.conftest import ADMIN, TOKENS, ServerProcess
from workers.simulate import simulated_outcome

WORKER = {"Authorization": f"Bearer {TOKENS['HPSEARCH_WORKER_TOKEN']}"}


def test_a_trial_finished_while_the_page_is_open_appears_without_a_reload(
    tmp_path: Path, watched: Watched
) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'live.db'}", tmp_path / "server.log")
    server.start()
    try:
        study_id = launch(server.http, ADMIN, "live")
        page = watched.page
        sign_in(watched, server.url)
        page.wait_for_selector("#studies tbody tr[data-study=live]")
        page.goto(f"{server.url}/studies/{study_id}")
        page.wait_for_selector("#timeline li[data-stage=sanity]")
        page.evaluate("() => { window.stillTheSamePage = true; }")
        assert page.locator("#trials tbody tr").count() == 0

        number = _work_until_a_trial_is_done(server.url)

        row = f"#trials tbody tr[data-stage=coarse][data-number='{number}']"
        page.wait_for_selector(row, timeout=15_000)  # polled in, not reloaded
        assert page.evaluate("() => window.stillTheSamePage") is True
        assert "complete" in page.inner_text(row)
        assert "running" in page.inner_text("#timeline li[data-stage=coarse]")
        assert watched.problems == []
    finally:
        server.stop()


def _work_until_a_trial_is_done(server: str) -> int:
    """Do the study's first items as a worker would (made-up results); the first trial's number."""
    with httpx.Client(base_url=server, headers=WORKER, timeout=30) as worker:
        while True:
            lease = worker.post("/api/trials/claim", json={"worker": "hand"}).json()
            item = lease["item"]

            def report(epoch: int, metrics: dict[str, float], lease_id: int = lease["id"]) -> bool:
                body = {"worker": "hand", "epoch": epoch, "metrics": metrics}
                return bool(
                    worker.post(f"/api/trials/{lease_id}/report", json=body).json()["prune"]
                )

            outcome = simulated_outcome(item, report) | {"worker": "hand"}
            assert worker.post(f"/api/trials/{lease['id']}/finish", json=outcome).json()["applied"]
            if item["kind"] == "trial":
                assert outcome["state"] == "completed"  # the first trials are never pruned
                return int(item["trial_number"])
