from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from api.settings import check_can_serve
from tests.api.conftest import ADMIN, WORKER


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "missing bearer token"),
        ({"Authorization": "Bearer nope"}, 401, "invalid token"),
        ({"Authorization": "Basic YWRtaW46eA=="}, 401, "missing bearer token"),
        (WORKER, 403, "worker token cannot manage studies"),
        (ADMIN, 200, None),
    ],
)
def test_study_management_needs_the_admin_token(
    client: TestClient, headers: dict[str, str], status: int, words: str | None
) -> None:
    response = client.get("/api/studies", headers=headers)
    assert response.status_code == status
    if words:
        assert words in response.json()["detail"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_health_needs_no_token(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["studies"] == 0


def test_without_tokens_the_api_is_open(tmp_path: object) -> None:
    settings = Settings(storage=f"sqlite:///{tmp_path}/open.db")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/studies").status_code == 200


def test_serving_off_loopback_needs_tokens() -> None:
    open_settings = Settings(storage="sqlite://")
    assert check_can_serve(open_settings, "127.0.0.1") is None
    assert check_can_serve(open_settings, "::1") is None
    assert check_can_serve(open_settings, "localhost") is None
    problem = check_can_serve(open_settings, "0.0.0.0")
    assert problem is not None
    assert "HPSEARCH_ADMIN_TOKEN" in problem
    locked = Settings(storage="sqlite://", admin_token="a", worker_token="w")
    assert check_can_serve(locked, "0.0.0.0") is None
    same = Settings(storage="sqlite://", admin_token="a", worker_token="a")
    assert "must differ" in str(check_can_serve(same, "127.0.0.1"))


def test_the_openapi_schema_is_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/studies" in schema["paths"]
    assert "application/yaml" in schema["paths"]["/api/studies"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200
