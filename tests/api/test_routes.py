"""Every route declares what it answers: a JSON route names its ``response_model`` (a model of
``hpsearch.protocol``, or a list of them), so ``/openapi.json`` documents each body and the
server checks what it sends. Exempt are the routes with no JSON body: files streamed, HTML pages,
redirects, Prometheus text, and 204s."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.routing import BaseRoute

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import ADMIN

# (method, route name): why it has no response model
EXEMPT = {
    ("GET", "metrics"): "Prometheus text",
    ("GET", "get_model"): "a file, streamed",
    ("GET", "get_checkpoint"): "a file, streamed",
    ("GET", "fetch_dataset"): "a file, streamed",
    ("DELETE", "delete_study"): "204, no body",
    ("DELETE", "delete_dataset"): "204, no body",
    ("GET", "studies_page"): "an HTML page",
    ("GET", "study_page"): "an HTML page",
    ("GET", "trial_page"): "an HTML page",
    ("GET", "workers_page"): "an HTML page",
    ("GET", "login_form"): "an HTML page",
    ("POST", "login"): "a redirect",
    ("POST", "logout"): "a redirect",
    ("GET", "favicon"): "an SVG image",
    ("GET", "swagger_ui"): "an HTML page",
    ("GET", "redoc"): "an HTML page",
}


def _routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _is_model(annotation: object) -> bool:
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def test_every_json_route_names_its_response_model() -> None:
    routes = list(_routes(create_app(Settings(storage="sqlite://")).routes))
    assert len(routes) > 30  # the walk reached the routers
    for route in routes:
        for method in route.methods or ():
            key = (method, route.name)
            if key in EXEMPT:
                assert route.response_model is None, key
            else:
                assert _is_model(route.response_model), f"{key}: {route.response_model}"


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_a_wrong_method_is_405_naming_every_method_the_path_takes(client: TestClient) -> None:
    digest = "0" * 64
    options = client.options(f"/api/datasets/{digest}", headers=ADMIN)
    assert options.status_code == 204
    assert options.headers["allow"] == "DELETE, GET, OPTIONS, PUT"  # Starlette said "PUT"
    wrong = client.patch("/api/studies", headers=ADMIN)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, OPTIONS, POST"
    assert wrong.json()["detail"] == "PATCH is not allowed here; GET, OPTIONS, POST are"
    assert client.options("/api/studies/1", headers=ADMIN).headers["allow"] == (
        "DELETE, GET, OPTIONS"
    )
    assert client.get("/api/nothing-here", headers=ADMIN).status_code == 404  # as ever
    assert client.get("/healthz").status_code == 200
