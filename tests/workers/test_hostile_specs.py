"""Specs sent to fell a real server (uvicorn): a YAML "billion laughs" document is refused at
once, and /healthz is answered within a second while it is being looked at."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.workers.conftest import ADMIN, ServerProcess

# 341 bytes that expand to 9**9 strings when aliases are followed as a tree
LEVELS = zip("abcdefgh", "bcdefghi", strict=True)
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in LEVELS]
)


def test_a_yaml_bomb_is_refused_and_the_server_answers_throughout(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'hostile.db'}", tmp_path / "server.log")
    server.start()
    try:
        sent: dict[str, httpx.Response] = {}

        def send() -> None:
            sent["bomb"] = httpx.post(
                f"{server.url}/api/studies",
                content=BILLION_LAUGHS,
                headers=ADMIN | {"Content-Type": "application/yaml"},
                timeout=120,
            )

        thread = threading.Thread(target=send)
        thread.start()
        waits: list[float] = []
        while thread.is_alive() or len(waits) < 5:
            began = time.perf_counter()
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
            waits.append(time.perf_counter() - began)
            time.sleep(0.05)
        thread.join()
        assert sent["bomb"].status_code == 422, sent["bomb"].text
        assert "YAML aliases" in sent["bomb"].json()["detail"]
        assert max(waits) < 1.0, waits
        assert httpx.get(f"{server.url}/api/studies", headers=ADMIN).json() == []
    finally:
        server.stop()
