"""A final stage's model files through the worker protocol: sent before the finish that names
them, checked against their sha256, kept in Optuna's artifact store, served to the admin, and
deleted with their study. Nothing is referenced before it is whole."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.artifacts import get_all_artifact_meta

from hpsearch.results import FinalResult
from hpsearch.scheduling._final_models import keep_final_models
from hpsearch.uploads import Incoming
from tests.api.conftest import ADMIN, WORKER, launch
from workers.simulate import simulated_outcome

MODEL = b"model weights, as a worker would send them" * 100
SHA = hashlib.sha256(MODEL).hexdigest()


def final_lease(client: TestClient, study_id: int) -> dict[str, Any]:
    """Work the study as a simulated worker until its final item is handed out."""
    while True:
        lease: dict[str, Any] = client.post(
            "/api/trials/claim", json={"worker": "w1"}, headers=WORKER
        ).json()
        if lease["item"]["kind"] == "final":
            return lease
        outcome = simulated_outcome(lease["item"]) | {"worker": "w1"}
        done = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)
        assert done.status_code == 200, done.text


def naming_the_model(lease: dict[str, Any]) -> dict[str, Any]:
    outcome = simulated_outcome(lease["item"]) | {"worker": "w1"}
    file = {"kind": "final", "filename": "files-final.pt", "sha256": SHA, "size": len(MODEL)}
    outcome["result"]["final"]["model"] = file
    return outcome


def upload(client: TestClient, lease: dict[str, Any], body: bytes, worker: str = "w1") -> Any:
    return client.put(
        f"/api/trials/{lease['id']}/files/{SHA}",
        params={"worker": worker},
        content=body,
        headers=WORKER | {"Content-Type": "application/octet-stream"},
    )


def test_a_model_file_is_kept_served_and_deleted_with_its_study(
    client: TestClient, storage_url: str
) -> None:
    study_id = launch(client, "files")
    lease = final_lease(client, study_id)
    finish = naming_the_model(lease)

    # named before it arrived: refused, and the study goes on as it was
    early = client.post(f"/api/trials/{lease['id']}/finish", json=finish, headers=WORKER)
    assert early.status_code == 409
    assert f"files-final.pt (sha256:{SHA}) was not uploaded" in early.json()["detail"]
    # cut off on the way (here: other bytes than its hash), or sent by another worker: nothing kept
    cut = upload(client, lease, MODEL[: len(MODEL) // 2])
    assert cut.status_code == 422
    assert "cut off or corrupted" in cut.json()["detail"]
    assert upload(client, lease, MODEL, worker="w2").status_code == 409
    again = client.post(f"/api/trials/{lease['id']}/finish", json=finish, headers=WORKER)
    assert again.status_code == 409
    assert client.get(f"/api/studies/{study_id}/model", headers=ADMIN).status_code == 404

    assert upload(client, lease, MODEL).json() == {"bytes": len(MODEL)}
    done = client.post(f"/api/trials/{lease['id']}/finish", json=finish, headers=WORKER)
    assert done.json() == {"applied": True}

    served = client.get(f"/api/studies/{study_id}/model", headers=ADMIN)
    assert served.status_code == 200
    assert served.content == MODEL
    assert served.headers["x-sha256"] == SHA
    assert 'filename="files-final.pt"' in served.headers["content-disposition"]
    assert client.get(f"/api/studies/{study_id}/model", headers=WORKER).status_code == 403
    none = client.get(f"/api/studies/{study_id}/model?kind=ensemble", headers=ADMIN)
    assert none.status_code == 404
    assert "kept no ensemble" in none.json()["detail"]
    stored = client.get(f"/api/studies/{study_id}", headers=ADMIN).json()
    final = next(s for s in stored["stages"] if s["name"] == "final")["result"]
    artifact_id = final["model"]["artifact_id"]

    # an Optuna artifact of the final training's trial: optuna-dashboard lists it
    url = client.app.state.store.url  # type: ignore[attr-defined]
    ostudy = optuna.load_study(study_name="files:final", storage=url)
    (trial,) = ostudy.trials
    assert [m.artifact_id for m in get_all_artifact_meta(trial, storage=ostudy._storage)] == [
        artifact_id
    ]
    assert trial.user_attrs["test_accuracy"] == final["test_accuracy"]
    artifacts: Path = client.app.state.store.artifacts.root  # type: ignore[attr-defined]
    assert (artifacts / artifact_id).read_bytes() == MODEL
    assert list((artifacts / ".incoming").iterdir()) == []  # the received copy is gone

    # the same finish applied again (its first delivery cut off before it was recorded as
    # applied) keeps nothing twice
    store = client.app.state.store  # type: ignore[attr-defined]
    unkept = final | {"model": final["model"] | {"artifact_id": None}}
    again = keep_final_models(store, store.get_study(study_id), FinalResult.model_validate(unkept))
    assert again.model is not None
    assert again.model.artifact_id == artifact_id
    assert len(optuna.load_study(study_name="files:final", storage=url).trials) == 1

    assert client.delete(f"/api/studies/{study_id}", headers=ADMIN).status_code == 204
    assert not (artifacts / artifact_id).exists()


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_a_full_disk_is_507_with_the_reason_and_keeps_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = final_lease(client, launch(client, "full"))

    def no_room(self: Incoming, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Incoming, "write", no_room)
    full = upload(client, lease, MODEL)
    assert full.status_code == 507
    assert "No space left on device" in full.json()["detail"]
    artifacts: Path = client.app.state.store.artifacts.root  # type: ignore[attr-defined]
    assert not any((artifacts / ".incoming").glob("*"))


def test_a_model_file_over_the_limit_is_413(client: TestClient) -> None:
    lease = final_lease(client, launch(client, "big"))
    client.app.state.settings.max_artifact_bytes = 100  # type: ignore[attr-defined]
    big = upload(client, lease, MODEL)
    assert big.status_code == 413
    assert "larger than the limit of 100 bytes" in big.json()["detail"]


def test_an_ensembles_files_and_each_member_alone_are_served(client: TestClient) -> None:
    study_id = launch(client, "members")
    lease = final_lease(client, study_id)
    files = {name: (name * 50).encode() for name in ("ensemble", "member")}
    digests = {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}
    finish = naming_the_model(lease)
    named = {
        name: {"kind": name, "filename": f"members-{name}.pt", "sha256": digests[name],
               "size": len(files[name])}
        for name in files
    }  # fmt: skip
    named["member"]["filename"] = "members-member-0.pt"
    member = {"params": {"train.lr": 0.05}, "val_accuracy": 0.9, "model": named["member"]}
    finish["result"]["final"]["ensemble"] = {
        "k": 2, "trial_epochs": 3.0, "test_accuracy": 0.99, "kind": "top_k", "kept": True,
        "model": named["ensemble"], "members": [member],
    }  # fmt: skip
    for name, body in [("final", MODEL), *files.items()]:
        sha = SHA if name == "final" else digests[name]
        sent = client.put(
            f"/api/trials/{lease['id']}/files/{sha}",
            params={"worker": "w1"},
            content=body,
            headers=WORKER | {"Content-Type": "application/octet-stream"},
        )
        assert sent.status_code == 201, sent.text
    done = client.post(f"/api/trials/{lease['id']}/finish", json=finish, headers=WORKER)
    assert done.json() == {"applied": True}
    base = f"/api/studies/{study_id}/model"
    assert client.get(f"{base}?kind=ensemble", headers=ADMIN).content == files["ensemble"]
    alone = client.get(f"{base}?kind=member&member=0", headers=ADMIN)
    assert alone.content == files["member"]
    assert 'filename="members-member-0.pt"' in alone.headers["content-disposition"]
    missing = client.get(f"{base}?kind=member&member=1", headers=ADMIN)
    assert missing.status_code == 404
    assert "kept no ensemble member 1" in missing.json()["detail"]
