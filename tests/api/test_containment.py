"""Containment: one bad study, one bad worker or one bad request never hurts anything else.

Each test is one finding of the containment issue, against the real app on SQLite and PostgreSQL:
specs the server used to accept and then choke on, workers acting on each other's leases, ids
reused after a delete, bodies nested too deep or holding NaN.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from api import Settings, create_app
from hpsearch.storage import Store
from hpsearch.storage._tables import studies
from tests.api.conftest import ADMIN, WORKER, launch
from tests.conftest import launch as launch_over_rest
from tests.conftest import tiny_study
from workers.simulate import simulated_outcome

JSON = {"Content-Type": "application/json"}


def post_spec(client: TestClient, **sections: Any) -> Any:
    """Launch a tiny study with ``sections`` merged in as sent (unvalidated here)."""
    body = tiny_study("hostile").model_dump(mode="json")
    for name, fields in sections.items():
        for key, value in fields.items():
            current = body[name].get(key)
            merge = isinstance(current, dict) and isinstance(value, dict) and name != "search"
            body[name][key] = current | value if merge else value
    return launch_over_rest(client, ADMIN, body, expect=None)


def claim(client: TestClient, worker: str = "w1") -> dict[str, Any] | None:
    response = client.post("/api/trials/claim", json={"worker": worker}, headers=WORKER)
    assert response.status_code in (200, 204), response.text
    return None if response.status_code == 204 else response.json()


def finish(client: TestClient, lease: dict[str, Any], worker: str = "w1") -> Any:
    outcome = simulated_outcome(lease["item"]) | {"worker": worker}
    return client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)


def problems_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {p["field"]: p["message"] for p in response.json()["problems"]}


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def trials_of(client: TestClient, name: str) -> list[optuna.trial.FrozenTrial]:
    url = store_of(client).url
    found = []
    for summary in optuna.get_all_study_summaries(url):
        if summary.study_name.startswith(f"{name}:"):
            found += optuna.load_study(study_name=summary.study_name, storage=url).trials
    return found


# --- 1. a spec valid at launch must not fail at claim time --------------------------------------


@pytest.mark.parametrize(
    ("sections", "field", "words"),
    [
        (
            {"search": {"extra": {"model.dropout": {"low": 0.1, "high": 2.0, "log": False}}}},
            "search.extra.model.dropout",
            "trial would set model.dropout: Input should be less than 1",
        ),
        (
            {"recipe": {"coarse": {"epochs": 500}}},  # refine trials: 500 x 2 = 1000 is fine
            None,
            None,
        ),
        (
            {"recipe": {"coarse": {"epochs": 600}}},  # ... 600 x 2 = 1200 is not
            "recipe.refine.epochs_factor",
            "refine-1 trial would set train.epochs: Input should be less than or equal to 1000",
        ),
        (
            {"recipe": {"final": {"epochs": 600}}},  # a targeted stage trains twice as long
            "recipe.final.epochs",
            "targeted stage (still improving) would set train.epochs",
        ),
        (
            {"search": {"extra": {"model.depth": {"low": 0.2, "high": 0.8, "log": False}}}},
            "search.extra.model.depth",
            "would set model.depth: Input should be greater than or equal to 1",
        ),
    ],
)
def test_launch_refuses_a_spec_whose_work_would_be_invalid(
    client: TestClient, sections: dict[str, Any], field: str | None, words: str | None
) -> None:
    response = post_spec(client, **sections)
    if field is None:
        assert response.status_code == 201, response.text
        return
    assert words is not None
    assert words in problems_of(response)[field]
    assert client.get("/api/studies", headers=ADMIN).json() == []  # nothing half-created


def test_a_study_whose_work_cannot_be_made_is_failed_and_the_next_study_served(
    client: TestClient,
) -> None:
    # Stored as an earlier version stored it (no launch check): its trials cannot be built.
    bad = tiny_study(
        "broken", search={"extra": {"model.dropout": {"low": 1.5, "high": 2.0, "log": False}}}
    )
    store_of(client).create_study(bad, driver="server")
    for _ in ("sanity", "range_test"):
        lease = claim(client)
        assert lease is not None
        assert finish(client, lease).json() == {"applied": True}
    good_id = launch(client, "good")

    lease = claim(client)  # the broken study's first trial cannot be made: the good one's work

    assert lease is not None
    assert (lease["item"]["study"], lease["item"]["kind"]) == ("good", "sanity")
    broken = client.get("/api/studies/1", headers=ADMIN).json()
    assert broken["state"] == "failed"
    assert "model.dropout" in broken["message"]
    assert all(
        t.state not in (TrialState.RUNNING, TrialState.WAITING) for t in trials_of(client, "broken")
    )
    assert client.get(f"/api/studies/{good_id}", headers=ADMIN).json()["state"] == "running"


# --- 2. every count bounded; nothing proportional to a spec number on a request path ------------


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        ({"recipe": {"coarse": {"trials": 1e30}}}, "recipe.coarse.trials"),
        ({"recipe": {"coarse": {"trials": 100_000}}}, "recipe.coarse.trials"),
        ({"recipe": {"refine": {"rounds": 100_000_000}}}, "recipe.refine.rounds"),
        ({"recipe": {"range_test": {"steps": 1e12}}}, "recipe.range_test.steps"),
        ({"dataset": {"name": "shapes", "size": 50_000_000}}, "dataset.size"),
        ({"recipe": {"final": {"ensemble_top_k": 1000}}}, "recipe.final.ensemble_top_k"),
    ],
)
def test_unbounded_counts_are_refused_at_launch(
    client: TestClient, sections: dict[str, Any], field: str
) -> None:
    assert field in problems_of(post_spec(client, **sections))


def test_a_stored_spec_past_todays_bounds_is_listed_and_failed_not_run(client: TestClient) -> None:
    spec = tiny_study("ancient").model_dump(mode="json")
    spec["recipe"]["refine"]["rounds"] = 10**6  # stored by a version without the bound
    with store_of(client).engine.begin() as conn:
        stamp = datetime.now(UTC)
        conn.execute(
            studies.insert().values(
                name="ancient", spec=spec, state="running", driver="server",
                created_at=stamp, updated_at=stamp,
            )
        )  # fmt: skip
    launch(client, "fresh")

    listed = client.get("/api/studies", headers=ADMIN).json()
    assert [s["name"] for s in listed] == ["ancient", "fresh"]
    view = client.get("/api/studies/ancient", headers=ADMIN).json()
    assert len(view["stages"]) <= 25  # not a million pending rounds
    lease = claim(client)

    assert lease is not None
    assert lease["item"]["study"] == "fresh"
    ancient = client.get("/api/studies/ancient", headers=ADMIN).json()
    assert ancient["state"] == "failed"
    assert "recipe.refine.rounds" in ancient["message"]


# --- 3. memory estimated at launch, against the server's limit ----------------------------------


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        ({"dataset": {"name": "shapes", "size": 5_000_000}}, "dataset.size"),
        (
            {"dataset": {"name": "shapes"}, "model": {"widths": [4096, 4096, 4096], "depth": 8}},
            "model.widths",
        ),
    ],
)
def test_a_spec_needing_more_memory_than_the_server_allows_is_refused(
    client: TestClient, sections: dict[str, Any], field: str
) -> None:
    message = problems_of(post_spec(client, **sections))[field]
    assert "GiB per work item" in message
    assert "HPSEARCH_MAX_ITEM_MEMORY_GIB" in message


# --- 4. lease ids are never reused ----------------------------------------------------------------


def test_a_deleted_studys_lease_id_is_never_given_to_another(client: TestClient) -> None:
    first = launch(client, "deleted")
    old = claim(client, "old-worker")
    assert old is not None
    assert client.delete(f"/api/studies/{first}", headers=ADMIN).status_code == 204
    launch(client, "next")

    new = claim(client, "new-worker")

    assert new is not None
    assert new["id"] != old["id"]
    late = finish(client, old, "old-worker")  # the old worker finishes what it held
    assert late.status_code == 404
    assert finish(client, new, "new-worker").json() == {"applied": True}


# --- 5. a lease is bound to the worker that claimed it --------------------------------------------


def test_another_workers_calls_on_a_lease_are_409_and_change_nothing(client: TestClient) -> None:
    launch(client, "mine")
    lease = claim(client, "holder")
    assert lease is not None
    base = f"/api/trials/{lease['id']}"
    outcome = simulated_outcome(lease["item"])
    calls = [
        ("report", {"worker": "thief", "epoch": 1, "metrics": {"val_accuracy": 0.5}}),
        ("heartbeat", {"worker": "thief"}),
        ("finish", outcome | {"worker": "thief"}),
    ]
    for call, body in calls:
        response = client.post(f"{base}/{call}", json=body, headers=WORKER)
        assert response.status_code == 409, (call, response.text)
        assert "held by worker 'holder'" in response.json()["detail"]
    stage = client.get("/api/studies/mine", headers=ADMIN).json()["stages"][0]
    assert stage["status"] == "running"  # the thief's finish applied nothing
    assert finish(client, lease, "holder").json() == {"applied": True}


# --- 6. deep nesting and non-finite numbers are 422 naming the field ------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[" * 1100, "application/json"),
        ("[" * 900, "application/yaml"),
        ('{"a":' * 40, "application/json"),
    ],
)
def test_deeply_nested_specs_are_422(client: TestClient, body: str, content_type: str) -> None:
    response = client.post(
        "/api/studies", content=body, headers=ADMIN | {"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    assert (
        "nested deeper than" in response.json()["detail"]
        or "not valid" in response.json()["detail"]
    )


@pytest.mark.parametrize(
    ("text", "content_type", "field"),
    [
        ('{"train": {"lr": Infinity}}', "application/json", "train.lr"),
        ('{"train": {"weight_decay": NaN}}', "application/json", "train.weight_decay"),
        ("search: {lr: {low: 1.0e-4, high: .inf}}", "application/yaml", "search.lr.high"),
        ('{"budget": {"seconds": -Infinity}}', "application/json", "budget.seconds"),
    ],
)
def test_non_finite_numbers_in_a_spec_are_422_naming_the_field(
    client: TestClient, text: str, content_type: str, field: str
) -> None:
    response = client.post(
        "/api/studies", content=text, headers=ADMIN | {"Content-Type": content_type}
    )
    assert "finite" in problems_of(response)[field]
    assert client.get("/api/studies", headers=ADMIN).json() == []


def test_a_finish_holding_nan_is_422_naming_the_field(client: TestClient) -> None:
    launch(client, "finite")
    lease = claim(client)
    assert lease is not None
    outcome = simulated_outcome(lease["item"]) | {"worker": "w1"}
    outcome["result"]["checks"][0]["measured"] = float("nan")
    text = json.dumps(outcome)  # Python writes NaN, as a careless worker would
    response = client.post(
        f"/api/trials/{lease['id']}/finish",
        content=text,
        headers=WORKER | {"Content-Type": "application/json"},
    )
    field = "body.result.sanity.checks.0.initial_loss.measured"
    assert "finite number" in problems_of(response)[field]
    assert finish(client, lease).json() == {"applied": True}  # the study is unharmed


# --- 10. an expected, recovered failure is one line in the log ------------------------------------


def test_the_reaper_logs_one_line_for_a_dropped_connection(
    storage_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(storage=storage_url, lease_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        dropped = sa.exc.OperationalError(
            "SELECT 1", {}, Exception("server closed the connection unexpectedly")
        )

        def reap() -> int:
            raise dropped

        monkeypatch.setattr(client.app.state.scheduler, "reap", reap)  # type: ignore[attr-defined]
        with caplog.at_level(logging.WARNING, logger="hpsearch.api"):
            time.sleep(0.3)
    lines = [r for r in caplog.records if "reaping" in r.getMessage()]
    assert lines
    assert all(r.exc_info is None for r in lines)  # no traceback
    assert "server closed the connection unexpectedly" in lines[0].getMessage()
