from __future__ import annotations

import time
from pathlib import Path

import httpx
import optuna
from optuna.trial import TrialState

from hpsearch.storage import Store
from tests.conftest import launch
from tests.workers.conftest import (
    ADMIN,
    ServerProcess,
    ends,
    start_worker,
    stop_workers,
    worker_log,
)


def test_two_workers_complete_a_study_launched_over_rest(
    server_process: ServerProcess, storage_url: str, tmp_path: Path
) -> None:
    server_process.start()
    server = server_process.url
    workers = [start_worker(server, tmp_path, f"w{i}") for i in (1, 2)]
    # both ready before the study exists: a tiny study can end before a late worker's first
    # claim (its PyTorch import under load takes seconds)
    deadline = time.monotonic() + 120
    while not all("working on" in worker_log(tmp_path, f"w{i}") for i in (1, 2)):
        assert time.monotonic() < deadline, "the workers did not start within 120 s"
        time.sleep(0.2)
    # 40 coarse trials: more than one worker finishes while the other waits out a poll (2 s);
    # with a handful, a fast machine let one worker take them all
    study_id = launch(server_process.http, ADMIN, "e2e", recipe={"coarse": {"trials": 40}})
    try:
        assert ends(server_process, study_id, timeout=240) == "completed"
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0]
    logs = [worker_log(tmp_path, f"w{i}") for i in (1, 2)]
    assert all("exiting after" in log for log in logs)
    # both workers took part, and each work item was delivered
    assert all("delivered (applied=True)" in log for log in logs), logs

    best = httpx.get(f"{server}/api/studies/{study_id}/best?k=1", headers=ADMIN).json()[0]
    assert best["worker"] in ("w1", "w2")
    study = optuna.load_study(study_name=f"e2e:{best['stage']}", storage=Store(storage_url).url)
    assert study.trials[best["number"]].value == best["value"]
    summaries = optuna.get_all_study_summaries(Store(storage_url).url)
    for summary in summaries:
        trials = optuna.load_study(
            study_name=summary.study_name, storage=Store(storage_url).url
        ).trials
        assert all(t.state not in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
