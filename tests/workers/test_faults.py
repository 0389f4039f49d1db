"""Faults, end to end: a worker killed mid-trial, the server restarted mid-study, every database
connection cut. Real server processes, real worker processes, real databases."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from hpsearch.scheduling import LEASE_EXPIRED
from hpsearch.storage import Store
from tests.conftest import launch as launch_over_rest
from tests.conftest import wait_until
from tests.workers.conftest import (
    ADMIN,
    ServerProcess,
    ends,
    start_worker,
    stop_workers,
    worker_log,
)

# Trials long enough (a few seconds on a CPU) to be caught in the middle.
LONG_TRIALS = {"coarse": {"trials": 8, "epochs": 6}, "refine": {"trials": 3, "rounds": 1}}


def launch(server: ServerProcess, name: str, **sections: Any) -> int:
    return int(launch_over_rest(server.http, ADMIN, name, **sections))


def holding(server: ServerProcess, worker: str, kind: str = "trial") -> dict[str, Any] | None:
    """The item ``worker`` holds now, if it is of ``kind``."""
    for w in server.get("/api/workers"):
        if w["id"] == worker and w["current"] and w["current"]["kind"] == kind:
            return dict(w["current"])
    return None


def trial(server: ServerProcess, study_id: int, stage: str, number: int) -> dict[str, Any]:
    page = server.get(f"/api/studies/{study_id}/trials?stage={stage}&limit=1000")
    return next(t for t in page["trials"] if t["number"] == number)


def nothing_left_running(storage_url: str) -> None:
    url = Store(storage_url).url
    for summary in optuna.get_all_study_summaries(url):
        trials = optuna.load_study(study_name=summary.study_name, storage=url).trials
        assert all(t.state not in (TrialState.RUNNING, TrialState.WAITING) for t in trials)


def test_a_worker_killed_mid_trial_loses_its_lease_and_the_trial_is_retried(
    server_process: ServerProcess, storage_url: str, tmp_path: Path
) -> None:
    lease = 4.0
    server_process.env["HPSEARCH_LEASE_SECONDS"] = str(lease)
    server_process.start()
    study_id = launch(server_process, "killed", recipe=LONG_TRIALS)
    doomed = start_worker(server_process.url, tmp_path, "doomed")
    survivor = start_worker(server_process.url, tmp_path, "survivor")
    try:
        held = wait_until(
            "a trial on the doomed worker", lambda: holding(server_process, "doomed"), 120
        )
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        stage, number = held["stage"], held["trial_number"]

        def failed() -> dict[str, Any] | None:
            t = trial(server_process, study_id, stage, number)
            return t if t["state"] == "failed" else None

        dead = wait_until("the killed trial to fail", failed, timeout=3 * lease)
        assert time.monotonic() - killed_at <= 2 * lease + 1.0  # reaper period included
        assert dead["reason"] == LEASE_EXPIRED
        assert ends(server_process, study_id) == "completed"
    finally:
        stop_workers([doomed, survivor])
    page = server_process.get(f"/api/studies/{study_id}/trials?stage={stage}&limit=1000")
    retries = [t for t in page["trials"] if t["retry_of"] == number]
    assert len(retries) == 1
    assert retries[0]["params"] == dead["params"]
    assert retries[0]["state"] in ("complete", "pruned")
    nothing_left_running(storage_url)


def test_a_trial_whose_worker_was_killed_goes_on_from_its_checkpoint(
    server_process: ServerProcess, storage_url: str, tmp_path: Path
) -> None:
    """Must-show 2 of the trained-result issue: SIGKILL at epoch k, the retry trains k+1 on,
    and its history holds each epoch once (the first k as the killed run measured them)."""
    lease, epochs = 4.0, 12
    server_process.env["HPSEARCH_LEASE_SECONDS"] = str(lease)
    server_process.start()
    # no refine round continues its trials: every checkpoint goes when its trial ends
    recipe = {"coarse": {"trials": 2, "epochs": epochs}, "refine": {"continue_top": 0}}
    study_id = launch(server_process, "resumed", recipe=recipe)
    every_epoch = ("--checkpoint-seconds", "0")
    doomed = start_worker(server_process.url, tmp_path, "doomed", options=every_epoch)
    workers = [doomed]
    try:
        held = wait_until(
            "a trial on the doomed worker", lambda: holding(server_process, "doomed"), 120
        )
        stage, number = held["stage"], held["trial_number"]

        def saved() -> int | None:
            detail = server_process.get(f"/api/studies/{study_id}/trials/{stage}/{number}")
            checkpoint = detail["user_attrs"].get("checkpoint")
            return checkpoint["epoch"] if checkpoint and checkpoint["epoch"] >= 3 else None

        wait_until("a checkpoint at epoch 3", saved, timeout=120, every=0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        detail = f"/api/studies/{study_id}/trials/{stage}/{number}"
        dead = wait_until(
            "the killed trial to fail",
            lambda: (d := server_process.get(detail))["state"] == "failed" and d,
            timeout=3 * lease,
        )
        k = dead["user_attrs"]["checkpoint"]["epoch"]
        assert k < epochs
        workers.append(start_worker(server_process.url, tmp_path, "survivor"))
        page = f"/api/studies/{study_id}/trials?stage={stage}&limit=1000"

        def retried() -> dict[str, Any] | None:
            retry = [t for t in server_process.get(page)["trials"] if t["retry_of"] == number]
            ended = retry and retry[0]["state"] in ("complete", "pruned", "failed")
            return retry[0] if ended else None

        retry = wait_until("the retry to end", retried, timeout=180)
        done = server_process.get(f"/api/studies/{study_id}/trials/{stage}/{retry['number']}")
    finally:
        stop_workers(workers)
    assert done["state"] == "complete", done
    assert done["user_attrs"]["resume"]["epoch"] == k
    assert [e["epoch"] for e in done["history"]] == list(range(1, epochs + 1))
    assert sorted(int(s) for s in done["intermediate_values"]) == list(range(1, epochs + 1))
    restored = [(e["epoch"], e["val_accuracy"], e["train_loss"]) for e in done["history"][:k]]
    assert restored == [
        (e["epoch"], e["val_accuracy"], e["train_loss"]) for e in dead["history"][:k]
    ]
    # the survivor trained from epoch k+1: it says so, and nothing of the two runs is left
    assert f"continues at epoch {k + 1} (its checkpoint)" in worker_log(tmp_path, "survivor")
    left = tmp_path / "artifacts" / "checkpoints" / str(study_id)
    assert not list(left.glob("*.pt"))


def test_a_result_finished_while_the_server_was_down_is_delivered_from_the_spool(
    server_process: ServerProcess, storage_url: str, tmp_path: Path
) -> None:
    server_process.env["HPSEARCH_LEASE_SECONDS"] = "15"
    server_process.start()
    study_id = launch(server_process, "restarted", recipe=LONG_TRIALS)
    worker = start_worker(server_process.url, tmp_path, "patient")
    try:
        held = wait_until("a trial on the worker", lambda: holding(server_process, "patient"), 120)
        server_process.stop(signal.SIGKILL)  # the server dies mid-trial
        wait_until(
            "the finished result to be spooled",
            lambda: f"result {held['id']} kept for later" in worker_log(tmp_path, "patient"),
            timeout=120,
        )
        server_process.start()  # same port, same database
        assert ends(server_process, study_id) == "completed"
    finally:
        stop_workers([worker])
    log = worker_log(tmp_path, "patient")
    assert f"item {held['id']} delivered (applied=True)" in log  # not lost, not reaped
    assert "server unreachable" in log  # it backed off meanwhile
    spooled = trial(server_process, study_id, held["stage"], held["trial_number"])
    assert spooled["state"] in ("complete", "pruned")
    assert spooled["reason"] is None
    nothing_left_running(storage_url)


@pytest.mark.parametrize("storage_url", ["postgresql"], indirect=True)
def test_the_server_rides_out_every_database_connection_being_cut(
    server_process: ServerProcess, storage_url: str, tmp_path: Path
) -> None:
    server_process.env["HPSEARCH_LEASE_SECONDS"] = "10"
    server_process.start()
    study_id = launch(server_process, "cut", recipe=LONG_TRIALS)
    workers = [start_worker(server_process.url, tmp_path, f"w{i}") for i in (1, 2)]
    database = storage_url.rsplit("/", 1)[1]
    try:

        def trials_done() -> bool:
            page = server_process.get(f"/api/studies/{study_id}/trials?stage=coarse")
            return sum(t["state"] in ("complete", "pruned") for t in page["trials"]) >= 2

        wait_until("coarse trials to finish", trials_done, timeout=180, every=0.5)
        cut = 0
        for _ in range(3):  # cut them all, three times, a second apart
            with psycopg.connect(storage_url, autocommit=True) as admin:
                cut += len(
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    ).fetchall()
                )
            time.sleep(1.0)
        assert cut > 0
        assert ends(server_process, study_id) == "completed"
        assert httpx.get(f"{server_process.url}/healthz").status_code == 200
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0]
    for name in ("w1", "w2"):  # every item a worker finished reached the study
        log = worker_log(tmp_path, name)
        claimed = set(re.findall(r"item (\d+): ", log))
        delivered = set(re.findall(r"item (\d+) delivered", log))
        assert claimed == delivered, (name, claimed - delivered)
    nothing_left_running(storage_url)
