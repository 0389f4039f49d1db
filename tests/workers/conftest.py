"""A real ``hpsearch serve`` (uvicorn) on a free loopback port, and real worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HPSEARCH, wait_until

TOKENS = {"HPSEARCH_ADMIN_TOKEN": "admin-e2e", "HPSEARCH_WORKER_TOKEN": "worker-e2e"}
ADMIN = {"Authorization": "Bearer admin-e2e"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``hpsearch serve`` on one port and database; it can be killed and started again."""

    def __init__(
        self, storage_url: str, log: Path, lease_seconds: float = 20.0, processes: int = 1
    ) -> None:
        self.storage_url, self.log, self.processes = storage_url, log, processes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = os.environ | TOKENS | {"HPSEARCH_LEASE_SECONDS": str(lease_seconds)}
        self.env["HPSEARCH_DATA_DIR"] = str(log.parent / "server-data")  # uploads, never the cwd
        self.env["HPSEARCH_ARTIFACT_DIR"] = str(log.parent / "artifacts")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [HPSEARCH, "serve", "--storage", self.storage_url, "--port", str(self.port)]
        command += ["--workers", str(self.processes)] if self.processes > 1 else []
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=out)
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(f"the server to start (its log: {self.log})", up, timeout=60)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)

    @property
    def http(self) -> httpx.Client:
        """A client of this server (for ``tests.conftest.launch``)."""
        return httpx.Client(base_url=self.url, timeout=60)

    def get(self, path: str) -> Any:
        """GET as a script would: a 503 (the database reconnecting) is asked again shortly."""
        for _ in range(10):
            response = httpx.get(f"{self.url}{path}", headers=ADMIN, timeout=30)
            if response.status_code != 503:
                break
            time.sleep(float(response.headers.get("retry-after", 1)))
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def server_process(storage_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that is not started yet (the test sets the lease it wants first)."""
    server = ServerProcess(storage_url, tmp_path / "server.log")
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


@pytest.fixture
def server(server_process: ServerProcess) -> str:
    """``hpsearch serve`` under uvicorn on a free loopback port."""
    server_process.start()
    return server_process.url


def start_worker(
    url: str,
    tmp_path: Path,
    name: str,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """``hpsearch worker`` on the CPU (``env`` added to its environment, ``options`` to its
    command line), its output in ``tmp_path/<name>.log``."""
    command = [
        HPSEARCH, "worker", "--server", url, "--devices", "cpu", "--id", name,
        "--spool", str(tmp_path / f"{name}-spool"), *options,
    ]  # fmt: skip
    environment = os.environ | TOKENS | {"OMP_NUM_THREADS": "1"} | (env or {})
    with (tmp_path / f"{name}.log").open("ab") as out:
        return subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)


def worker_log(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text()


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)  # warm shutdown: idle workers exit at once
    return [w.wait(timeout=120) for w in workers]


def ends(server: ServerProcess, study_id: int, timeout: float = 300) -> str:
    """Wait for the study to leave ``running``; its state then."""

    def ended() -> str | None:
        state = server.get(f"/api/studies/{study_id}")["state"]
        return None if state == "running" else str(state)

    return str(wait_until("the study to end", ended, timeout, every=1.0))
