from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from tests.conftest import launch as launch_over_rest

ADMIN = {"Authorization": "Bearer admin-secret"}
WORKER = {"Authorization": "Bearer worker-secret"}


@pytest.fixture
def client(storage_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with both tokens set, over a fresh database (SQLite file or PostgreSQL)."""
    settings = Settings(
        storage=storage_url,
        admin_token="admin-secret",
        worker_token="worker-secret",
        max_body_bytes=64_000,
        data_dir=str(tmp_path / "server-data"),
        artifact_dir=str(tmp_path / "artifacts"),
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def launch(client: TestClient, name: str, **sections: Any) -> int:
    """Launch a tiny study through the API as the admin; its id."""
    return int(launch_over_rest(client, ADMIN, name, **sections))
