from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import optuna
import pytest
import yaml
from fastapi.testclient import TestClient

from hpsearch.local import run_search
from hpsearch.spec import StudySpec
from tests.api.conftest import ADMIN
from tests.conftest import tiny_study


def spec_json(name: str = "api-study", **sections: object) -> dict[str, object]:
    return tiny_study(name, **sections).model_dump(mode="json")


def test_launch_as_json_and_as_yaml_then_list(client: TestClient) -> None:
    created = client.post("/api/studies", json=spec_json("from-json"), headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["name"] == "from-json"
    yaml_body = yaml.safe_dump(spec_json("from-yaml"))
    created = client.post(
        "/api/studies",
        content=yaml_body,
        headers=ADMIN | {"Content-Type": "application/yaml"},
    )
    assert created.status_code == 201
    listed = client.get("/api/studies", headers=ADMIN).json()
    assert [s["name"] for s in listed] == ["from-json", "from-yaml"]
    assert listed[0]["state"] == "running"
    assert listed[0]["stage"] == "sanity"
    assert listed[0]["best_val_accuracy"] is None


def test_a_taken_name_is_409(client: TestClient) -> None:
    assert client.post("/api/studies", json=spec_json("twice"), headers=ADMIN).status_code == 201
    again = client.post("/api/studies", json=spec_json("twice"), headers=ADMIN)
    assert again.status_code == 409
    assert "'twice' already exists" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "content_type", "field", "words"),
    [
        (json.dumps({"train": {"lr": -1}}), "application/json", "train.lr", "greater than 0"),
        (
            json.dumps({"model": {"dropuot": 0.1}}),
            "application/json",
            "model.dropuot",
            "unknown field",
        ),
        ("train: {lr: [0.1\n", "application/yaml", "", "not valid YAML"),
        ("{not json", "application/json", "", "not valid JSON"),
        ("[1, 2]", "application/json", "", "must be a mapping"),
    ],
)
def test_a_bad_spec_is_422_naming_the_problem(
    client: TestClient, body: str, content_type: str, field: str, words: str
) -> None:
    response = client.post(
        "/api/studies", content=body, headers=ADMIN | {"Content-Type": content_type}
    )
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert any(p["field"] == field and words in p["message"] for p in problems), problems


def test_an_unknown_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/studies", content="name: x", headers=ADMIN | {"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/yaml" in response.json()["detail"]


def test_an_oversized_body_is_413(client: TestClient) -> None:
    huge = json.dumps({"description": "x" * 100_000})
    response = client.post(
        "/api/studies", content=huge, headers=ADMIN | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert client.get("/api/studies", headers=ADMIN).json() == []


def test_trials_best_and_stages_of_a_finished_study(client: TestClient, storage_url: str) -> None:
    run_search(tiny_study("done"), storage_url)  # a real search in the same database
    studies = client.get("/api/studies", headers=ADMIN).json()
    listed = next(s for s in studies if s["name"] == "done")
    assert listed["state"] == "completed"
    assert listed["trials"]["complete"] >= 3
    study_id = listed["id"]

    detail = client.get(f"/api/studies/{study_id}", headers=ADMIN).json()
    assert detail["spec"]["name"] == "done"
    stages = {s["name"]: s["result"] for s in detail["stages"]}
    assert stages["range_test"]["curve"]["lr"]
    assert stages["final"]["test_accuracy"] == detail["best"]["test_accuracy"]

    best = client.get(f"/api/studies/{study_id}/best?k=3", headers=ADMIN).json()
    assert len(best) == 3
    assert [b["value"] for b in best] == sorted((b["value"] for b in best), reverse=True)
    top = optuna.load_study(study_name=f"done:{best[0]['stage']}", storage=_url(storage_url))
    values = [
        t.value for s in ("coarse", "refine-1", "refine-2") for t in _completed(storage_url, s)
    ]
    assert best[0]["value"] == max(v for v in values if v is not None)
    assert top.trials[best[0]["number"]].params == best[0]["params"]

    page = client.get(
        f"/api/studies/{study_id}/trials?state=pruned&sort=-number&limit=2", headers=ADMIN
    ).json()
    assert all(t["state"] == "pruned" for t in page["trials"])
    assert len(page["trials"]) == min(2, page["total"])
    everything = client.get(f"/api/studies/{study_id}/trials?limit=1000", headers=ADMIN).json()
    assert everything["total"] == len(everything["trials"]) >= 10
    coarse = client.get(f"/api/studies/{study_id}/trials?stage=coarse&offset=3", headers=ADMIN)
    assert {t["stage"] for t in coarse.json()["trials"]} == {"coarse"}

    # every sort the dashboard offers, checked against the same trials sorted here
    rows = everything["trials"]
    sorts: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("lr", lambda t: t["params"]["lr"]),
        ("-weight_decay", lambda t: -t["params"]["weight_decay"]),
        ("epochs", lambda t: t["epochs"]),
        ("state", lambda t: t["state"].upper()),
    ]
    for sort, key in sorts:
        page = client.get(f"/api/studies/{study_id}/trials?sort={sort}&limit=1000", headers=ADMIN)
        got = [key(t) for t in page.json()["trials"]]
        assert got == sorted(key(t) for t in rows), sort
    longest = client.get(f"/api/studies/{study_id}/trials?sort=-duration&limit=1000", headers=ADMIN)
    durations = [t["duration"] for t in longest.json()["trials"]]
    # SQLite reckons each of a trial's start and end to the millisecond (its date functions
    # drop the rest): durations within 2 ms of each other may come in either order
    assert all(a >= b - 0.002 for a, b in itertools.pairwise(durations))
    by_value = client.get(f"/api/studies/{study_id}/trials?sort=value&limit=5", headers=ADMIN)
    shown = [float(t["value"]) for t in by_value.json()["trials"]]
    assert shown[:3] == [b["value"] for b in best]
    assert shown == sorted(shown, reverse=True)

    one = client.get(f"/api/studies/{study_id}/trials/coarse/0", headers=ADMIN).json()
    assert one["seeded"] is True  # the range test's suggestion went first
    assert one["params"]["lr"] == stages["range_test"]["suggested_lr"]
    assert len(one["history"]) == one["epochs"] == len(one["intermediate_values"])
    assert one["history"][0]["val_accuracy"] == one["intermediate_values"]["1"]
    missing = client.get(f"/api/studies/{study_id}/trials/coarse/999", headers=ADMIN)
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("path.number")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=exploded", "query.state"),
        ("sort=colour", "query.sort"),
        ("limit=0", "query.limit"),
        ("offset=-1", "query.offset"),
        ("stage=final", "query.stage"),
    ],
)
def test_bad_trial_queries_are_422_naming_the_parameter(
    client: TestClient, query: str, field: str
) -> None:
    study_id = client.post("/api/studies", json=spec_json(), headers=ADMIN).json()["id"]
    response = client.get(f"/api/studies/{study_id}/trials?{query}", headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("999", "no study 999 "),
        ("no-such.study", "no study 'no-such.study'"),
        ("9" * 12, "no study"),
    ],
)
def test_unknown_study_is_404_everywhere(client: TestClient, key: str, words: str) -> None:
    for method, path in [
        ("get", f"/api/studies/{key}"),
        ("get", f"/api/studies/{key}/trials"),
        ("get", f"/api/studies/{key}/best"),
        ("get", f"/api/studies/{key}/points"),
        ("post", f"/api/studies/{key}/stop"),
        ("post", f"/api/studies/{key}/resume"),
        ("delete", f"/api/studies/{key}"),
    ]:
        response = getattr(client, method)(path, headers=ADMIN)
        assert response.status_code == 404, path
        assert words in response.json()["detail"], path


def test_stop_resume_and_delete_by_id_or_by_name(client: TestClient, storage_url: str) -> None:
    run_search(tiny_study("gone", recipe={"refine": {"rounds": 0}}), storage_url)
    study_id = client.get("/api/studies", headers=ADMIN).json()[0]["id"]
    for tail in ("", "/trials?sort=-value", "/best?k=3", "/points", "/trials/coarse/0"):
        by_id = client.get(f"/api/studies/{study_id}{tail}", headers=ADMIN)
        by_name = client.get(f"/api/studies/gone{tail}", headers=ADMIN)
        assert by_name.status_code == 200, (tail, by_name.text)
        assert by_name.json() == by_id.json(), tail
    assert client.get("/api/studies/gone/best", headers=ADMIN).json()  # not just empty
    page = client.get("/studies/gone", headers=ADMIN)
    assert page.status_code == 200
    assert f'"id": {study_id}' in page.text  # the page's scripts go on by the id
    assert client.post(f"/api/studies/{study_id}/stop", headers=ADMIN).status_code == 409
    assert client.post("/api/studies/gone/stop", headers=ADMIN).status_code == 409

    fresh = client.post("/api/studies", json=spec_json("paused.v1"), headers=ADMIN).json()["id"]
    assert client.post(f"/api/studies/{fresh}/stop", headers=ADMIN).json()["state"] == "stopped"
    assert client.post("/api/studies/paused.v1/stop", headers=ADMIN).status_code == 409
    resumed = client.post("/api/studies/paused.v1/resume", headers=ADMIN).json()
    assert resumed == {"id": fresh, "name": "paused.v1", "state": "running"}
    assert client.post("/api/studies/paused.v1/stop", headers=ADMIN).json()["state"] == "stopped"
    assert client.get(f"/api/studies/{fresh}", headers=ADMIN).json()["state"] == "stopped"

    assert client.delete(f"/api/studies/{study_id}", headers=ADMIN).status_code == 204
    assert client.get(f"/api/studies/{study_id}", headers=ADMIN).status_code == 404
    names = {s.study_name for s in optuna.get_all_study_summaries(_url(storage_url))}
    assert not any(n.startswith("gone:") for n in names)
    assert client.delete(f"/api/studies/{study_id}", headers=ADMIN).status_code == 404
    assert client.delete("/api/studies/paused.v1", headers=ADMIN).status_code == 204
    assert client.get(f"/api/studies/{fresh}", headers=ADMIN).status_code == 404
    assert client.get("/api/studies", headers=ADMIN).json() == []


def test_a_study_key_takes_exactly_the_names_a_spec_may_have(client: TestClient) -> None:
    parameters = client.get("/openapi.json").json()["paths"]["/api/studies/{study}"]["get"]
    key = next(p for p in parameters["parameters"] if p["name"] == "study")
    assert (
        key["schema"]["pattern"] == StudySpec.model_json_schema()["properties"]["name"]["pattern"]
    )
    assert "by its id" in key["description"]
    refused = client.get("/api/studies/-leading-dash", headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("path.study")


def _url(storage_url: str) -> str:
    return storage_url.replace("postgresql://", "postgresql+psycopg://")


def _completed(storage_url: str, stage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        study = optuna.load_study(study_name=f"done:{stage}", storage=_url(storage_url))
    except KeyError:
        return []
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
