"""A running trial's checkpoints through the worker protocol: kept (the latest replaces the one
before), handed to the trial's retry, refused to anyone but the holder, deleted when no retry
needs them and with their study."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, WORKER, launch
from tests.api.test_model_files import final_lease
from workers.simulate import simulated_outcome


def trial_lease(client: TestClient, worker: str = "w1") -> dict[str, Any]:
    """Work the study as a simulated worker until a search trial is handed out."""
    while True:
        lease: dict[str, Any] = client.post(
            "/api/trials/claim", json={"worker": worker}, headers=WORKER
        ).json()
        if lease["item"]["kind"] == "trial":
            return lease
        outcome = simulated_outcome(lease["item"]) | {"worker": worker}
        done = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
        assert done.status_code == 200, done.text


def put(
    client: TestClient, lease: dict[str, Any], body: bytes, epoch: int, worker: str = "w1"
) -> Any:
    sha = hashlib.sha256(body).hexdigest()
    return client.put(
        f"/api/trials/{lease['id']}/checkpoint",
        params={"worker": worker, "epoch": epoch, "sha256": sha},
        content=body,
        headers=WORKER | {"Content-Type": "application/octet-stream"},
    )


def detail(client: TestClient, study_id: int, item: dict[str, Any]) -> dict[str, Any]:
    path = f"/api/studies/{study_id}/trials/{item['stage']}/{item['trial_number']}"
    response = client.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_retried_trial_is_handed_the_latest_checkpoint_of_the_trial_it_retries(
    client: TestClient,
) -> None:
    study_id = launch(client, "ckpt")
    lease = trial_lease(client)
    first, latest = b"epoch 1 state" * 100, b"epoch 2 state" * 100
    assert put(client, lease, first, epoch=1).status_code == 201
    assert put(client, lease, latest, epoch=2).json() == {"bytes": len(latest)}
    saved = detail(client, study_id, lease["item"])["user_attrs"]["checkpoint"]
    assert saved == {"epoch": 2, "sha256": hashlib.sha256(latest).hexdigest()}

    # not its own trial: refused; another hash than the one named: nothing kept
    assert put(client, lease, b"x", epoch=3, worker="w2").status_code == 409
    bad = client.put(
        f"/api/trials/{lease['id']}/checkpoint",
        params={"worker": "w1", "epoch": 3, "sha256": "0" * 64},
        content=b"not that",
        headers=WORKER | {"Content-Type": "application/octet-stream"},
    )
    assert bad.status_code == 422
    # a first run has no checkpoint to go on from
    none = client.get(
        f"/api/trials/{lease['id']}/checkpoint", params={"worker": "w1"}, headers=WORKER
    )
    assert none.status_code == 404
    assert "goes on from no checkpoint" in none.json()["detail"]

    # its worker stopped (a cold stop hands it back): the retry goes on from epoch 2
    handed_back = {
        "worker": "w1",
        "state": "failed",
        "reason": "worker shut down",
        "retryable": True,
    }
    client.post(f"/api/trials/{lease['id']}/finish", json=handed_back, headers=WORKER)
    retry = trial_lease(client, "w2")
    assert retry["item"]["params"] == lease["item"]["params"]
    assert retry["item"]["resume_epoch"] == 2
    got = client.get(
        f"/api/trials/{retry['id']}/checkpoint", params={"worker": "w2"}, headers=WORKER
    )
    assert got.status_code == 200
    assert got.content == latest
    assert got.headers["x-sha256"] == hashlib.sha256(latest).hexdigest()
    assert (
        client.get(
            f"/api/trials/{retry['id']}/checkpoint", params={"worker": "w1"}, headers=WORKER
        ).status_code
        == 409
    )

    # the retry ends: no checkpoint of either run is left
    outcome = simulated_outcome(retry["item"]) | {"worker": "w2"}
    assert client.post(f"/api/trials/{retry['id']}/finish", json=outcome, headers=WORKER).json()
    artifacts: Path = client.app.state.store.artifacts.root  # type: ignore[attr-defined]
    assert not list((artifacts / "checkpoints").rglob("*.pt"))


def test_checkpoints_are_for_trials_and_go_with_their_study(client: TestClient) -> None:
    study_id = launch(client, "ckpt-gone")
    sanity = client.post("/api/trials/claim", json={"worker": "w1"}, headers=WORKER).json()
    assert sanity["item"]["kind"] == "sanity"
    refused = put(client, sanity, b"state", epoch=1)
    assert refused.status_code == 422
    assert "keeps no checkpoints" in refused.json()["detail"]
    client.post(
        f"/api/trials/{sanity['id']}/finish",
        json=simulated_outcome(sanity["item"]) | {"worker": "w1"},
        headers=WORKER,
    )
    lease = trial_lease(client)
    assert put(client, lease, b"state", epoch=1).status_code == 201
    artifacts: Path = client.app.state.store.artifacts.root  # type: ignore[attr-defined]
    assert list((artifacts / "checkpoints" / str(study_id)).glob("*.pt"))
    assert client.delete(f"/api/studies/{study_id}", headers=ADMIN).status_code == 204
    assert not (artifacts / "checkpoints" / str(study_id)).exists()


def test_a_final_training_handed_back_goes_on_from_its_checkpoint(client: TestClient) -> None:
    study_id = launch(client, "ckpt-final")
    lease = final_lease(client, study_id)
    assert lease["item"]["resume_epoch"] is None
    state = b"final training after epoch 3" * 50
    assert put(client, lease, state, epoch=3).status_code == 201
    handed_back = {"worker": "w1", "state": "failed", "reason": "lease expired", "retryable": True}
    client.post(f"/api/trials/{lease['id']}/finish", json=handed_back, headers=WORKER)

    again = client.post("/api/trials/claim", json={"worker": "w2"}, headers=WORKER).json()
    assert again["item"]["kind"] == "final"
    assert again["item"]["resume_epoch"] == 3
    got = client.get(
        f"/api/trials/{again['id']}/checkpoint", params={"worker": "w2"}, headers=WORKER
    )
    assert got.content == state
    outcome = simulated_outcome(again["item"]) | {"worker": "w2"}
    assert client.post(f"/api/trials/{again['id']}/finish", json=outcome, headers=WORKER).json()
    artifacts: Path = client.app.state.store.artifacts.root  # type: ignore[attr-defined]
    assert not list((artifacts / "checkpoints").rglob("*.*"))
