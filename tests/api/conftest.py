from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app

ADMIN = {"Authorization": "Bearer admin-secret"}
WORKER = {"Authorization": "Bearer worker-secret"}


@pytest.fixture
def client(storage_url: str) -> Iterator[TestClient]:
    """The app with both tokens set, over a fresh database (SQLite file or PostgreSQL)."""
    settings = Settings(
        storage=storage_url,
        admin_token="admin-secret",
        worker_token="worker-secret",
        max_body_bytes=64_000,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client
