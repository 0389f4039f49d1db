from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import optuna
from optuna.trial import TrialState

from hpsearch.storage import Store
from tests.conftest import tiny_study
from tests.workers.conftest import ADMIN, HPSEARCH, TOKENS


def start_worker(url: str, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    command = [
        HPSEARCH, "worker", "--server", url, "--devices", "cpu", "--id", name,
        "--spool", str(tmp_path / name),
    ]  # fmt: skip
    env = os.environ | TOKENS | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_workers_complete_a_study_launched_over_rest(
    server: str, storage_url: str, tmp_path: Path
) -> None:
    body = tiny_study("e2e").model_dump(mode="json")
    created = httpx.post(f"{server}/api/studies", json=body, headers=ADMIN)
    assert created.status_code == 201
    study_id = created.json()["id"]
    workers = [start_worker(server, tmp_path, f"w{i}") for i in (1, 2)]
    try:
        deadline = time.monotonic() + 240
        state = "running"
        while state == "running" and time.monotonic() < deadline:
            time.sleep(1)
            state = httpx.get(f"{server}/api/studies/{study_id}", headers=ADMIN).json()["state"]
        assert state == "completed"
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)  # warm shutdown: idle workers exit at once
        logs = [w.communicate(timeout=60)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    assert all("exiting after" in log for log in logs)
    # both workers took part, and each work item was delivered
    assert all("delivered (applied=True)" in log for log in logs), logs

    best = httpx.get(f"{server}/api/studies/{study_id}/best?k=1", headers=ADMIN).json()[0]
    study = optuna.load_study(study_name=f"e2e:{best['stage']}", storage=Store(storage_url).url)
    assert study.trials[best["number"]].value == best["value"]
    summaries = optuna.get_all_study_summaries(Store(storage_url).url)
    for summary in summaries:
        trials = optuna.load_study(
            study_name=summary.study_name, storage=Store(storage_url).url
        ).trials
        assert all(t.state != TrialState.RUNNING for t in trials)
