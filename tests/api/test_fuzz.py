"""Schemathesis against the OpenAPI schema of a real server: whatever it sends to any route, the
answer is never a server error, and a refusal says what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import Settings, create_app
from tests.workers.conftest import ADMIN, ServerProcess

# The schema the server publishes (building the app opens nothing; serving it does).
schema = schemathesis.openapi.from_dict(create_app(Settings(storage="sqlite://")).openapi())


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    where: Path = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(f"sqlite:///{where / 'fuzz.db'}", where / "server.log")
    server.start()
    yield server.url
    server.stop()
    assert "Traceback" not in server.log.read_text()  # nothing blew up inside either


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure is reproducible
)
def test_no_input_gets_a_server_error(case: schemathesis.Case[Any], live_server: str) -> None:
    response = case.call(base_url=live_server, headers=ADMIN, timeout=60)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert detail, case.as_curl_command()
