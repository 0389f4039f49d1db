"""Many workers at once against PostgreSQL: every trial handed out exactly once, none lost."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.storage import Store
from tests.workers.conftest import ADMIN, TOKENS, ServerProcess, ends
from workers.simulate import SimulatedWorker

WORKERS = 32


# 2,000 trials on PostgreSQL, the shared server's database; 500 on MariaDB, enough for 32 workers
# to meet at every claim (the 2,000 there took two minutes of CI for the same property)
@pytest.mark.parametrize(
    ("storage_url", "trials"), [("postgresql", 2000), ("mariadb", 500)], indirect=["storage_url"]
)
def test_32_workers_claim_report_and_finish_every_trial_once(
    server_process: ServerProcess, storage_url: str, trials: int
) -> None:
    # as deployed: a server process per core on PostgreSQL; one on MariaDB (docs/SERVER.md)
    server_process.processes = 2 if storage_url.startswith("postgresql") else 1
    server_process.start()
    spec = {
        "name": "crowd",
        "recipe": {"coarse": {"trials": trials, "epochs": 1}, "refine": {"rounds": 0}},
    }
    created = httpx.post(f"{server_process.url}/api/studies", json=spec, headers=ADMIN)
    assert created.status_code == 201, created.text
    crowd = [
        SimulatedWorker(server_process.url, TOKENS["HPSEARCH_WORKER_TOKEN"], f"sim{i}")
        for i in range(WORKERS)
    ]
    study_url = f"/api/studies/{created.json()['id']}"
    stop = threading.Event()  # the crowd works until the study is over, however long it pauses
    threads = [threading.Thread(target=w.run, kwargs={"stop": stop}) for w in crowd]
    for t in threads:
        t.start()
    try:
        state = ends(server_process, created.json()["id"], timeout=600)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for w in crowd:
            w.close()
    assert state == "completed"

    assert [e for w in crowd for e in w.errors] == []  # no 5xx, nothing unreachable
    leases = [lease for w in crowd for lease in w.items]
    numbers = [lease.item.trial_number or 0 for lease in leases if lease.item.kind == "trial"]
    assert len(numbers) == trials
    assert Counter(numbers).most_common(1)[0][1] == 1  # each trial claimed exactly once
    assert len({lease.id for lease in leases}) == len(leases)
    assert sum(bool(w.items) for w in crowd) == WORKERS  # everyone got work
    study = server_process.get(study_url)
    assert study["state"] == "completed"
    coarse = next(s for s in study["stages"] if s["name"] == "coarse")
    assert coarse["counts"]["complete"] + coarse["counts"]["pruned"] == trials  # none lost
    stored = optuna.load_study(study_name="crowd:coarse", storage=Store(storage_url).url).trials
    assert len(stored) == trials
    assert {t.state for t in stored} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert sorted(t.number for t in stored) == sorted(numbers)
