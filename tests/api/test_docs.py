"""The API's documentation pages work with no network: every asset comes from this server."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from api.schemas import ErrorBody
from tests.api.conftest import ADMIN, launch

_KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def docs_client() -> TestClient:
    """The app, not started: its pages and files need no database."""
    return TestClient(create_app(Settings(storage="sqlite://")))


@pytest.mark.parametrize(("path", "needs"), [("/docs", {".js", ".css"}), ("/redoc", {".js"})])
def test_the_docs_pages_load_only_this_servers_assets(
    docs_client: TestClient, path: str, needs: set[str]
) -> None:
    page = docs_client.get(path)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "://" not in page.text  # no CDN, no web fonts
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a[a.rfind(".") :] for a in assets} >= needs, assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert not asset.startswith("//"), asset
        response = docs_client.get(asset)
        assert response.status_code == 200, asset
        assert _KINDS[asset[asset.rfind(".") :]] in response.headers["content-type"], asset
        assert len(response.content) > 1000, asset  # the real file, not a stub
    assert "/openapi.json" in page.text


def test_the_schema_describes_every_error_with_the_body_the_server_sends(
    docs_client: TestClient,
) -> None:
    schema = docs_client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's, not ours
    ours = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            errors = {code: r for code, r in responses.items() if int(code) >= 400}
            for code, response in errors.items():
                assert response["content"]["application/json"]["schema"] == ours, (where, code)
            assert responses["503"]["headers"]["Retry-After"]["required"], where  # the database
            if path != "/healthz":  # the rest take a token
                assert responses["401"]["headers"]["WWW-Authenticate"]["required"], where
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in errors, where


def test_a_sort_key_naming_no_parameter_is_a_documented_422(client: TestClient) -> None:
    launch(client, "sorted")
    response = client.get("/api/studies/sorted/trials?sort=colour", headers=ADMIN)
    assert response.status_code == 422
    body = ErrorBody.model_validate(response.json())
    assert body.detail.startswith("query.sort: 'colour' is not one of")
    paths = client.get("/openapi.json").json()["paths"]
    declared = paths["/api/studies/{study}/trials"]["get"]["responses"]["422"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    bad_limit = client.get("/api/studies/sorted/trials?limit=0", headers=ADMIN).json()
    problems = ErrorBody.model_validate(bad_limit).problems
    assert problems
    assert problems[0].field == "query.limit"
