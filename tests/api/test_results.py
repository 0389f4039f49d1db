"""Each stage's result has one typed shape: the schema documents it, the server serves it as the
schema says, and a worker's result that does not fit is refused naming the field."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from tests.api.conftest import ADMIN, WORKER, launch
from workers.simulate import simulated_outcome

RESULTS = (
    "SanityResult",
    "RangeTestResult",
    "SearchRound",
    "FinalResult",
    "TargetedResult",
    "FinalItemResult",
    "StageNote",
    "FinishRequest",  # a worker's outcome, with its id
    "WorkItem",
)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings(storage="sqlite://")).openapi()
    return schema


def conforms(openapi: dict[str, Any], component: str, data: Any) -> list[str]:
    """Where ``data`` breaks the schema's ``component`` (JSON Schema 2020-12, as OpenAPI 3.1)."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": openapi["components"]}
    validator = jsonschema_rs.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


def test_the_schema_names_every_stage_result(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert set(RESULTS) <= set(schemas)
    study = openapi["paths"]["/api/studies/{study}"]["get"]["responses"]["200"]
    assert study["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StudyRead"
    }
    result = schemas["StageView"]["properties"]["result"]
    named = {ref["$ref"].rsplit("/", 1)[1] for ref in result["anyOf"] if "$ref" in ref}
    assert named == {"SanityResult", "RangeTestResult", "SearchRound", "FinalResult",
                     "TargetedResult", "StageNote"}  # fmt: skip
    finish = openapi["paths"]["/api/trials/{item_id}/finish"]["post"]["requestBody"]
    assert finish["content"]["application/json"]["schema"]["$ref"].endswith("/FinishRequest")


def test_a_finished_digits_study_is_served_as_the_schema_says(
    finished_digits: tuple[str, dict[str, Any]], openapi: dict[str, Any]
) -> None:
    url, _ = finished_digits
    settings = Settings(storage=url, admin_token="admin-secret", worker_token="worker-secret")
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/studies/digits", headers=ADMIN)
    assert response.status_code == 200
    study = response.json()
    assert study["state"] == "completed"
    assert conforms(openapi, "StudyRead", study) == []
    kinds = {s["name"]: s["result"] for s in study["stages"]}
    assert conforms(openapi, "SanityResult", kinds["sanity"]) == []
    assert conforms(openapi, "RangeTestResult", kinds["range_test"]) == []
    assert conforms(openapi, "SearchRound", kinds["coarse"]) == []
    assert conforms(openapi, "FinalResult", kinds["final"]) == []
    assert conforms(openapi, "FinalResult", kinds["sanity"]) != []  # the check can fail


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda r: r.pop("verdict"), "body.result.sanity.verdict", "Field required"),
        (lambda r: r.update(checks="all fine"), "body.result.sanity.checks", "valid list"),
        (
            lambda r: r["checks"][0].update(expected="ln 10"),
            "body.result.sanity.checks.0.initial_loss.expected",
            "valid number",
        ),
        (lambda r: r.update(kind="final"), "body.result.final.final", "Field required"),
        (lambda r: r.update(kind="bogus"), "body.result", "does not match any of the expected"),
    ],
)
def test_a_malformed_result_is_422_naming_the_field_and_harms_nothing(
    client: TestClient, change: Any, field: str, words: str
) -> None:
    study_id = launch(client, "typed")
    lease = client.post("/api/trials/claim", json={"worker": "w1"}, headers=WORKER).json()
    outcome = simulated_outcome(lease["item"]) | {"worker": "w1"}
    change(outcome["result"])
    bad = client.post(f"/api/trials/{lease['id']}/finish", json=outcome, headers=WORKER)

    assert bad.status_code == 422, bad.text
    problems = {p["field"]: p["message"] for p in bad.json()["problems"]}
    assert words in problems[field], problems
    study = client.get(f"/api/studies/{study_id}", headers=ADMIN).json()
    assert study["state"] == "running"
    assert study["stages"][0]["status"] == "running"  # nothing of it was recorded
    good = simulated_outcome(lease["item"]) | {"worker": "w1"}
    done = client.post(f"/api/trials/{lease['id']}/finish", json=good, headers=WORKER)
    assert done.json() == {"applied": True}  # the worker can still deliver the real one


def test_a_result_of_another_kind_is_422(client: TestClient) -> None:
    launch(client, "kinds")
    lease = client.post("/api/trials/claim", json={"worker": "w1"}, headers=WORKER).json()
    assert lease["item"]["kind"] == "sanity"
    range_test = simulated_outcome(lease["item"] | {"kind": "range_test"}) | {"worker": "w1"}
    refused = client.post(f"/api/trials/{lease['id']}/finish", json=range_test, headers=WORKER)
    assert refused.status_code == 422
    assert "result.kind 'range_test' is not 'sanity'" in refused.json()["detail"]
