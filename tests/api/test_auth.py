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


def _routes(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (
            method.upper(),
            path.format(
                study=1, item_id=1, stage="coarse", number=0, kind="history", sha256="0" * 64
            ),
        )
        for path, methods in paths.items()
        for method in methods
        if path != "/healthz"
    ]


def test_every_route_but_health_needs_a_token_and_the_right_one(client: TestClient) -> None:
    routes = _routes(client)
    assert len(routes) == 25  # every route of the API; a new one must be added to this check
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
        fetch = method == "GET" and path.startswith("/api/datasets/")  # a worker's download
        worker_allowed = path.startswith("/api/trials") or path == "/metrics" or fetch
        as_worker = client.request(method, path, headers=WORKER)
        if worker_allowed:
            assert as_worker.status_code not in (401, 403), (method, path)
        else:
            assert as_worker.status_code == 403, (method, path)
            assert "worker token cannot" in as_worker.json()["detail"]
        as_admin = client.request(method, path, headers=ADMIN)  # the admin token opens all
        assert as_admin.status_code not in (401, 403), (method, path)


def test_several_server_processes_need_postgresql() -> None:
    sqlite = Settings(storage="sqlite:///x.db", admin_token="a", worker_token="w")
    assert "need PostgreSQL" in str(check_can_serve(sqlite, "127.0.0.1", processes=2))
    postgres = Settings(storage="postgresql://u@h/db", admin_token="a", worker_token="w")
    assert check_can_serve(postgres, "127.0.0.1", processes=4) is None


def test_dashboard_pages_take_the_admin_token_or_send_you_to_sign_in(client: TestClient) -> None:
    # no study exists: a visitor not signed in is not told so, but sent to sign in first
    for path in ("/", "/workers", "/studies/1", "/studies/by-name/trials/coarse/0", "/optuna/"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")
    refused = client.get("/", headers=WORKER | {"Accept": "text/html"})
    assert refused.status_code == 403
    assert "worker token cannot read the dashboard" in refused.text
    assert client.get("/optuna/", headers=WORKER, follow_redirects=False).status_code == 403
    assert client.get("/", headers=ADMIN).status_code == 200


def test_the_session_cookie_works_and_needs_the_dashboards_header_to_change_things(
    client: TestClient,
) -> None:
    signed = client.post("/login", data={"token": "admin-secret"}, follow_redirects=False)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert client.get("/api/studies").status_code == 200  # the cookie stands for the token
    elsewhere = client.post("/api/studies/1/stop")  # a form on another site could do this
    assert elsewhere.status_code == 403
    assert "X-Requested-With" in elsewhere.json()["detail"]
    blank = client.post("/api/studies/1/stop", headers={"Authorization": "Bearer  "})
    assert blank.status_code == 403  # an empty bearer header is no bearer: still the cookie's rule
    ours = client.post("/api/studies/1/stop", headers={"X-Requested-With": "hpsearch"})
    assert ours.status_code == 404  # past the checks: there is no study 1
    client.post("/logout")
    assert client.get("/api/studies").status_code == 401


def test_optuna_dashboard_changes_with_the_cookie_alone_are_refused(client: TestClient) -> None:
    signed = client.post("/login", data={"token": "admin-secret"}, follow_redirects=False)
    assert signed.status_code == 303  # the client keeps the session cookie from here on
    body = {"study_name": "from-optuna", "directions": ["maximize"]}

    def names() -> list[str]:
        listed = client.get("/optuna/api/studies")  # reading with the cookie alone is fine
        assert listed.status_code == 200
        return [s["study_name"] for s in listed.json()["study_summaries"]]

    elsewhere = client.post("/optuna/api/studies", json=body)  # a form on another site
    assert elsewhere.status_code == 403
    assert "X-Requested-With" in elsewhere.json()["detail"]
    assert names() == []
    created = client.post(
        "/optuna/api/studies", json=body, headers={"X-Requested-With": "hpsearch"}
    )
    assert created.status_code == 201
    study_id = created.json()["study_summary"]["study_id"]
    assert client.delete(f"/optuna/api/studies/{study_id}").status_code == 403
    assert names() == ["from-optuna"]
    deleted = client.delete(
        f"/optuna/api/studies/{study_id}", headers={"X-Requested-With": "hpsearch"}
    )
    assert deleted.status_code == 204
    assert names() == []

    client.post("/logout")  # a bearer token needs no header; the worker token gets nothing
    as_worker = client.post("/optuna/api/studies", json=body, headers=WORKER)
    assert as_worker.status_code == 403
    assert client.get("/optuna/api/studies", headers=WORKER).status_code == 403
    assert client.post("/optuna/api/studies", json=body, headers=ADMIN).status_code == 201
    assert client.get("/optuna/api/studies", headers=ADMIN).json()["study_summaries"]
