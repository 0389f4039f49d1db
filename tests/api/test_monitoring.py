from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ADMIN, WORKER, launch
from workers.simulate import simulated_outcome


def test_workers_are_listed_with_what_they_hold(client: TestClient) -> None:
    launch(client, "watched")
    claim = {"worker": "gpu-box-1", "host": "gpu-box", "devices": ["cuda:0"]}
    lease = client.post("/api/trials/claim", json=claim, headers=WORKER).json()
    listed = client.get("/api/workers", headers=ADMIN).json()
    assert [w["id"] for w in listed] == ["gpu-box-1"]
    worker = listed[0]
    assert (worker["host"], worker["devices"], worker["alive"]) == ("gpu-box", ["cuda:0"], True)
    assert worker["current"]["stage"] == "sanity"
    assert worker["current"]["study"] == "watched"
    assert worker["items_done"] == 0
    outcome = simulated_outcome(lease["item"]) | {"worker": "gpu-box-1"}
    client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
    worker = client.get("/api/workers?alive=true", headers=ADMIN).json()[0]
    assert worker["current"] is None
    assert worker["items_done"] == 1
    client.post("/api/trials/claim", json=claim, headers=WORKER)  # a moment later: the next item
    worker = client.get("/api/workers", headers=ADMIN).json()[0]
    assert worker["current"]["stage"] == "range_test"
    assert client.get("/api/workers", headers=WORKER).status_code == 403


def test_metrics_count_trials_workers_and_request_latency(client: TestClient) -> None:
    launch(client, "measured")
    while True:  # work the study until its first trials are done
        response = client.post("/api/trials/claim", json={"worker": "w1"}, headers=WORKER)
        lease = response.json()
        outcome = simulated_outcome(lease["item"]) | {"worker": "w1"}
        client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
        if lease["item"]["kind"] == "trial" and lease["item"]["trial_number"] >= 3:
            break
    assert client.get("/metrics").status_code == 401
    response = client.get("/metrics", headers=WORKER)  # monitoring may use either token
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    trials = {s.labels["state"]: s.value for s in families["hpsearch_trials"].samples}
    assert trials["complete"] >= 4
    assert trials["running"] == 0
    studies = {s.labels["state"]: s.value for s in families["hpsearch_studies"].samples}
    assert studies["running"] == 1
    assert families["hpsearch_workers_alive"].samples[0].value == 1
    latency = families["hpsearch_http_request_duration_seconds"]
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in latency.samples
        if s.name.endswith("_count")
    }
    assert counts[("/api/trials/claim", "200")] >= 6
    assert counts[("/api/trials/{item_id}/finish", "200")] >= 6
