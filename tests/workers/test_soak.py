"""A soak on PostgreSQL: good studies and a hostile one launched together on two workers.

The hostile side tries what a careless or malicious admin would: a search dimension past its
field's bounds and an unbounded count (both refused at launch), and a study the server accepts
whose data does not fit in a worker's memory. Its sanity stage raises MemoryError on whichever
worker takes it: the study fails with that reason, the workers go on, and the good studies
complete with every trial accounted for.

The workers are "small machines": once they have started, their address space is capped a few
GiB above what they use (``RLIMIT_AS``), so the hostile data set (an 8 GiB IDX file, sparse on
disk) fails to load with a real MemoryError at once, without touching the machine's memory.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.storage import Store
from tests.conftest import launch, tiny_study, wait_until
from tests.workers.conftest import (
    ADMIN,
    ServerProcess,
    ends,
    start_worker,
    stop_workers,
    worker_log,
)

GIB = 2**30


def mnist_too_big_for_a_worker(root: Path) -> None:
    """MNIST's IDX files in ``root``, the training images 8 GiB (a sparse file, written in a
    moment): valid headers, far more images than a worker's memory holds."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    count = 8 * GIB // (28 * 28)
    images = raw / "train-images-idx3-ubyte"
    with images.open("wb") as f:
        f.write((2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (count, 28, 28)))
        f.truncate(16 + count * 28 * 28)
    with (raw / "train-labels-idx1-ubyte").open("wb") as f:
        f.write((2049).to_bytes(4, "big") + count.to_bytes(4, "big"))
        f.truncate(8 + count)


def cap_memory(process: subprocess.Popen[bytes], headroom: int) -> None:
    """Let ``process`` map at most ``headroom`` bytes more than it maps now."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    mapped = int(status.split("VmSize:")[1].split()[0]) * 1024
    resource.prlimit(process.pid, resource.RLIMIT_AS, (mapped + headroom, mapped + headroom))


@pytest.mark.parametrize("storage_url", ["postgresql"], indirect=True)
def test_a_hostile_study_fails_alone_while_good_ones_complete(
    server_process: ServerProcess, storage_url: str, tmp_path: Path
) -> None:
    server_process.env["HPSEARCH_LEASE_SECONDS"] = "20"
    server_process.start()
    names = ("w1", "w2")
    workers = [start_worker(server_process.url, tmp_path, name) for name in names]
    try:

        def both_seen() -> bool:
            seen = {w["id"] for w in server_process.get("/api/workers")}
            return seen >= set(names)

        wait_until("both workers to ask for work", both_seen, timeout=120, every=0.5)
        for process in workers:
            cap_memory(process, 3 * GIB)
        mnist_too_big_for_a_worker(tmp_path / "data")

        hostile = tiny_study("hostile").model_dump(mode="json")
        out_of_bounds = hostile | {
            "search": {"extra": {"model.dropout": {"low": 0.1, "high": 2.0, "log": False}}}
        }
        unbounded = hostile | {"recipe": hostile["recipe"] | {"coarse": {"trials": 10**30}}}
        http = server_process.http
        refused = [launch(http, ADMIN, body, expect=422) for body in (out_of_bounds, unbounded)]
        too_big = hostile | {"dataset": {"name": "mnist", "data_dir": str(tmp_path / "data")}}
        good_a = launch(http, ADMIN, "good-a")
        bad = launch(http, ADMIN, too_big)
        good_b = launch(http, ADMIN, "good-b", seed=1)

        assert "search.extra.model.dropout" in refused[0].json()["detail"]
        assert "recipe.coarse.trials" in refused[1].json()["detail"]
        assert ends(server_process, bad, timeout=300) == "failed"
        assert ends(server_process, good_a, timeout=600) == "completed"
        assert ends(server_process, good_b, timeout=600) == "completed"
        assert all(w.poll() is None for w in workers)  # both still running
    finally:
        codes = stop_workers(workers)
    assert codes == [0, 0]

    failed = server_process.get(f"/api/studies/{bad}")
    assert "MemoryError" in failed["message"], failed["message"]
    assert "MemoryError" in worker_log(tmp_path, "w1") + worker_log(tmp_path, "w2")
    url = Store(storage_url).url
    for study_id, name in ((good_a, "good-a"), (good_b, "good-b")):  # every trial accounted for
        for stage in server_process.get(f"/api/studies/{study_id}")["stages"]:
            if stage["counts"] is None:  # not a search round
                continue
            counts = stage["counts"]
            trials_of_round = stage["result"]["trials"]
            assert counts["complete"] + counts["pruned"] + counts["failed"] == trials_of_round
            trials = optuna.load_study(study_name=f"{name}:{stage['name']}", storage=url).trials
            assert len(trials) == trials_of_round + counts["retried"]
    for summary in optuna.get_all_study_summaries(url):  # nothing stays RUNNING or WAITING
        trials = optuna.load_study(study_name=summary.study_name, storage=url).trials
        assert all(t.state not in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
