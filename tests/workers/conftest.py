"""A real ``hpsearch serve`` (uvicorn) on a free loopback port, for worker tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HPSEARCH = shutil.which("hpsearch", path=str(Path(sys.executable).parent)) or "hpsearch"
TOKENS = {"HPSEARCH_ADMIN_TOKEN": "admin-e2e", "HPSEARCH_WORKER_TOKEN": "worker-e2e"}
ADMIN = {"Authorization": "Bearer admin-e2e"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(storage_url: str) -> Iterator[str]:
    """``hpsearch serve`` under uvicorn on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [HPSEARCH, "serve", "--storage", storage_url, "--port", str(port)],
        env=os.environ | TOKENS | {"HPSEARCH_LEASE_SECONDS": "20"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)
