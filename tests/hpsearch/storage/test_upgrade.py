"""A database written by the released version (0.1.0, at commit 5af9df4: migrations up to 0003,
stage results as plain dicts) opens with this one: every study reads, and the running one goes on.

``tests/fixtures/release-0.1.0.db`` was made by ``tests/fixtures/make_release_db.py`` run against
a checkout of that commit: one study run locally to its end, one served study part-way (its items
done by the released worker code, the last trial still held by its worker), one stopped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api import Settings, create_app
from hpsearch.storage import migrations
from tests.api.conftest import ADMIN, WORKER
from workers.simulate import simulated_outcome

RELEASE = Path(__file__).parents[2] / "fixtures" / "release-0.1.0.db"


def test_a_database_of_the_release_upgrades_and_every_study_reads(tmp_path: Path) -> None:
    copy = tmp_path / "release.db"
    shutil.copy(RELEASE, copy)
    settings = Settings(storage=f"sqlite:///{copy}", admin_token="admin-secret",
                        worker_token="worker-secret")  # fmt: skip
    with TestClient(create_app(settings)) as client:
        listed = client.get("/api/studies", headers=ADMIN).json()
        assert [(s["name"], s["state"]) for s in listed] == [
            ("local-done", "completed"),
            ("served", "running"),
            ("stopped", "stopped"),
        ]
        for study in listed:
            view = client.get(f"/api/studies/{study['id']}", headers=ADMIN)
            assert view.status_code == 200, view.text
            for stage in view.json()["stages"]:
                result = stage["result"] or {}
                assert "cannot read" not in str(result.get("reason")), (study["name"], stage)
            trials = client.get(f"/api/studies/{study['id']}/trials", headers=ADMIN)
            assert trials.status_code == 200
        done = client.get("/api/studies/local-done", headers=ADMIN).json()
        kinds = {s["name"]: s["result"] for s in done["stages"]}
        assert kinds["sanity"]["verdict"] == "passed"
        assert kinds["range_test"]["range"]["low"] > 0
        assert kinds["coarse"]["counts"]["complete"] > 0
        assert kinds["final"]["test_accuracy"] == done["best"]["test_accuracy"] > 0.5
        assert client.get("/studies/local-done", headers=ADMIN).status_code == 200  # the page

        # the served study goes on: the held trial is still its worker's, the next one is new
        lease = client.post("/api/trials/claim", json={"worker": "gpu-2"}, headers=WORKER)
        assert lease.status_code == 200, lease.text
        item = lease.json()["item"]
        assert (item["study"], item["kind"]) == ("served", "trial")
        outcome = simulated_outcome(item) | {"worker": "gpu-2"}
        finished = client.post(f"/api/trials/{lease.json()['id']}/finish", json=outcome,
                               headers=WORKER)  # fmt: skip
        assert finished.json() == {"applied": True}
    engine = sa.create_engine(f"sqlite:///{copy}")
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM hpsearch_leases ORDER BY id"))]
    assert ids[:8] == list(range(1, 9))  # the release's leases, kept, and new ones after them
    assert ids[-1] > 8
    engine.dispose()
