"""The worker's HTTP client for the trial protocol. Network errors surface as ``Unreachable``."""

from __future__ import annotations

from typing import Any

import httpx


class Unreachable(Exception):
    """The server did not answer (down, restarting, network blip): back off and try again."""


class ProtocolClient:
    def __init__(self, server: str, token: str | None, worker_id: str, timeout: float = 30.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.worker_id = worker_id
        self._http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def ping(self) -> bool:
        """Is the server up (and its database answering)?"""
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def claim(self, host: str, devices: list[str]) -> dict[str, Any] | None:
        body = {"worker": self.worker_id, "host": host, "devices": devices}
        response = self._post("/api/trials/claim", body)
        return None if response.status_code == 204 else dict(response.json())

    def report(self, item_id: int, epoch: int, metrics: dict[str, float]) -> bool:
        body = {"epoch": epoch, "metrics": metrics}
        return bool(self._post(f"/api/trials/{item_id}/report", body).json()["prune"])

    def heartbeat(self, item_id: int) -> bool:
        return bool(self._post(f"/api/trials/{item_id}/heartbeat", None).json()["continue"])

    def finish(self, item_id: int, outcome: dict[str, Any]) -> bool:
        return bool(self._post(f"/api/trials/{item_id}/finish", outcome).json()["applied"])

    def _post(self, path: str, body: dict[str, Any] | None) -> httpx.Response:
        try:
            response = self._http.post(path, json=body)
        except httpx.TransportError as exc:
            raise Unreachable(f"{path}: {exc}") from None
        if response.status_code >= 500:
            raise Unreachable(f"{path}: HTTP {response.status_code}")
        response.raise_for_status()  # 4xx: our bug or a bad token; let it be seen
        return response
