from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
import torch
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from api import Settings, create_app
from hpsearch.results import WorkItem
from hpsearch.stages import execute
from hpsearch.storage import Store
from tests.api.conftest import ADMIN, WORKER, launch
from workers.simulate import simulated_outcome

CPU = torch.device("cpu")


def claim(client: TestClient, worker: str = "w1") -> dict[str, Any] | None:
    response = client.post("/api/trials/claim", json={"worker": worker}, headers=WORKER)
    assert response.status_code in (200, 204), response.text
    return None if response.status_code == 204 else response.json()


def work_on(client: TestClient, lease: dict[str, Any], worker: str = "w1") -> dict[str, Any]:
    """Do the item here, reporting each epoch over HTTP like a worker would; then finish."""
    item = WorkItem.from_dict(lease["item"])

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        answer = client.post(
            f"/api/trials/{lease['id']}/report",
            json={"worker": worker, "epoch": epoch, "metrics": metrics},
            headers=WORKER,
        )
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["prune"])

    outcome = execute(item, CPU, report).to_dict() | {"worker": worker}
    finished = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
    assert finished.status_code == 200, finished.text
    return outcome


def test_a_study_launched_over_rest_completes_through_the_protocol(
    client: TestClient, storage_url: str
) -> None:
    study_id = launch(client, "remote")
    kinds = []
    while (lease := claim(client)) is not None:
        assert lease["lease_seconds"] == 60.0
        kinds.append(lease["item"]["kind"])
        outcome = work_on(client, lease)
        again = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
        assert again.json() == {"applied": False}  # acknowledged, not applied twice
    assert kinds[:2] == ["sanity", "range_test"]
    assert kinds[-1] == "final"
    assert kinds.count("trial") >= 10
    study = client.get(f"/api/studies/{study_id}", headers=ADMIN).json()
    assert study["state"] == "completed"
    assert study["best"]["test_accuracy"] > 0.8
    best = client.get(f"/api/studies/{study_id}/best?k=1", headers=ADMIN).json()[0]
    loaded = optuna.load_study(study_name=f"remote:{best['stage']}", storage=Store(storage_url).url)
    assert loaded.trials[best["number"]].value == best["value"]
    assert all(t.state != TrialState.RUNNING for t in loaded.trials)


@pytest.fixture
def short_leases(storage_url: str) -> Iterator[TestClient]:
    settings = Settings(
        storage=storage_url, admin_token="admin-secret", worker_token="worker-secret",
        lease_seconds=0.5,
    )  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def finish_quickly(client: TestClient, lease: dict[str, Any]) -> None:
    """Made-up results for a single stage, well within a short lease."""
    outcome = simulated_outcome(lease["item"]) | {"worker": "w1"}
    finished = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
    assert finished.json() == {"applied": True}


def test_an_expired_lease_fails_the_trial_and_retries_its_params(short_leases: TestClient) -> None:
    client = short_leases
    launch(client, "leasy")
    lease = claim(client)
    while lease is not None and lease["item"]["kind"] != "trial":
        finish_quickly(client, lease)
        lease = claim(client)
    assert lease is not None
    time.sleep(1.2)  # the worker went silent past its lease
    retry = claim(client, "w2")  # claiming reaps first
    assert retry is not None
    assert retry["item"]["params"] == lease["item"]["params"]
    assert retry["item"]["trial_number"] != lease["item"]["trial_number"]
    base = f"/api/trials/{lease['id']}"
    epoch = {"worker": "w1", "epoch": 1, "metrics": {"val_accuracy": 0.5}}
    assert client.post(f"{base}/report", json=epoch, headers=WORKER).json() == {"prune": True}
    beat = client.post(f"{base}/heartbeat", json={"worker": "w1"}, headers=WORKER)
    assert beat.json() == {"continue": False}
    late = {"worker": "w1", "state": "completed", "value": 0.99, "trial_epochs": 2}
    assert client.post(f"{base}/finish", json=late, headers=WORKER).json() == {"applied": False}
    storage = Store(client.app.state.settings.storage).url  # type: ignore[attr-defined]
    trials = optuna.load_study(study_name="leasy:coarse", storage=storage).trials
    dead = trials[lease["item"]["trial_number"]]
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["fail_reason"] == "lease expired"
    assert trials[retry["item"]["trial_number"]].user_attrs["retry_of"] == dead.number


def test_a_report_without_the_studys_objective_is_refused(client: TestClient) -> None:
    launch(client, "by-f1", search={"objective": "macro_f1"})
    lease = claim(client)
    while lease is not None and lease["item"]["kind"] != "trial":
        finish_quickly(client, lease)
        lease = claim(client)
    assert lease is not None
    report = f"/api/trials/{lease['id']}/report"
    metrics = {"val_accuracy": 0.9}
    refused = client.post(
        report, json={"worker": "w1", "epoch": 1, "metrics": metrics}, headers=WORKER
    )
    assert refused.status_code == 422
    assert "val_macro_f1" in refused.json()["detail"]
    metrics |= {"val_macro_f1": 0.5}
    answer = client.post(
        report, json={"worker": "w1", "epoch": 1, "metrics": metrics}, headers=WORKER
    )
    assert answer.json() == {"prune": False}


def test_heartbeats_keep_a_lease_alive(short_leases: TestClient) -> None:
    client = short_leases
    launch(client, "alive")
    lease = claim(client)
    assert lease is not None
    for _ in range(4):
        time.sleep(0.25)
        beat = client.post(
            f"/api/trials/{lease['id']}/heartbeat", json={"worker": "w1"}, headers=WORKER
        )
        assert beat.json() == {"continue": True}
    assert claim(client, "w2") is None  # the sanity stage is still this worker's
    client.post(f"/api/studies/{lease['item']['study_id']}/stop", headers=ADMIN)
    beat = client.post(
        f"/api/trials/{lease['id']}/heartbeat", json={"worker": "w1"}, headers=WORKER
    )
    assert beat.json() == {"continue": False}


def test_concurrent_claims_hand_each_trial_out_once(client: TestClient) -> None:
    launch(client, "crowded", recipe={"coarse": {"trials": 12}})
    lease = claim(client)
    while lease is not None and lease["item"]["kind"] != "trial":
        work_on(client, lease)
        lease = claim(client)
    assert lease is not None
    got: list[dict[str, Any]] = [lease]
    lock = threading.Lock()

    def grab(worker: str) -> None:
        while (mine := claim(client, worker)) is not None:
            with lock:
                got.append(mine)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = [g["item"]["trial_number"] for g in got]
    assert len(numbers) == len(set(numbers)) == 12  # the stage's 12 trials, each once
    assert len({g["id"] for g in got}) == 12


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/api/trials/claim", {}, "body.worker"),
        ("/api/trials/claim", {"worker": ""}, "body.worker"),
        ("/api/trials/1/report", {"epoch": 0, "metrics": {"val_accuracy": 0.5}}, "body.epoch"),
        ("/api/trials/1/report", {"epoch": 1, "metrics": {"loss": 0.5}}, "val_accuracy"),
        ("/api/trials/1/report", {"epoch": 1, "metrics": {"val_accuracy": 7}}, "[0, 1]"),
        ("/api/trials/1/report", {"epoch": 1, "metrics": {"val_accuracy": 0.5}}, "body.worker"),
        ("/api/trials/1/heartbeat", {}, "body.worker"),
        ("/api/trials/1/finish", {"state": "exploded"}, "body.state"),
        ("/api/trials/1/finish", {"state": "completed", "seconds": -1}, "body.seconds"),
        ("/api/trials/1/finish", {"state": "completed", "seconds": False}, "body.seconds"),
        ("/api/trials/1/finish", {"state": "completed", "trial_epochs": "3"}, "body.trial_epochs"),
        ("/api/trials/1/report", {"epoch": 1, "metrics": {"val_accuracy": True}}, "val_accuracy"),
        ("/api/trials/1/finish", {"state": "completed"}, "body.worker"),
    ],
)
def test_bad_worker_messages_are_422_naming_the_field(
    client: TestClient, path: str, body: dict[str, Any], words: str
) -> None:
    response = client.post(path, json=body, headers=WORKER)
    assert response.status_code == 422
    assert words in response.json()["detail"]


def test_non_finite_metrics_and_unknown_items_are_refused(client: TestClient) -> None:
    nan = '{"worker": "w1", "epoch": 1, "metrics": {"val_accuracy": NaN}}'
    response = client.post(
        "/api/trials/1/report",
        content=nan,
        headers=WORKER | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    body = {"worker": "w1", "epoch": 1, "metrics": {"val_accuracy": 0.5}}
    unknown = client.post("/api/trials/77/report", json=body, headers=WORKER)
    assert unknown.status_code == 404
    assert "no work item 77" in unknown.json()["detail"]
    assert client.post("/api/trials/claim", json={"worker": "x"}).status_code == 401


def test_a_simulated_study_by_macro_f1_completes_and_the_list_names_its_objective(
    client: TestClient,
) -> None:
    launch(client, "f1-simulated", search={"objective": "macro_f1"})
    reported: list[dict[str, float]] = []
    while (lease := claim(client)) is not None:
        url = f"/api/trials/{lease['id']}/report"

        def report(epoch: int, metrics: dict[str, float], url: str = url) -> bool:
            answer = client.post(
                url,
                json={"worker": "w1", "epoch": epoch, "metrics": metrics},
                headers=WORKER,
            )
            assert answer.status_code == 200, answer.text  # the objective is in every report
            reported.append(metrics)
            return bool(answer.json()["prune"])

        outcome = simulated_outcome(lease["item"], report, epoch_seconds=0.0) | {"worker": "w1"}
        finished = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
        assert finished.status_code == 200, finished.text
    assert reported
    assert all("val_macro_f1" in m for m in reported)
    (listed,) = client.get("/api/studies", headers=ADMIN).json()
    assert listed["state"] == "completed"
    assert listed["objective"] == "macro_f1"
    assert listed["best_value"] is not None
    assert 0.0 < listed["best_value"] <= 1.0
