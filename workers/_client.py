"""The worker's HTTP client for the trial protocol.

Every call says which worker makes it: the server lets only the worker that claimed an item
report on, renew or finish it. Failures come in two kinds: ``Unreachable`` (no answer, or a 5xx:
the server or its database is away for a moment; back off and send again) and ``Refused`` (a 4xx:
sending the same again cannot help), each one line naming the call and the server's reason.
"""

from __future__ import annotations

from typing import Any

import httpx


class Unreachable(Exception):
    """The server did not answer (down, restarting, network blip): back off and try again."""


class Refused(Exception):
    """The server answered 4xx: a wrong token (401/403), an item that is not ours or no longer
    exists (404/409), a malformed call (422). ``status`` is the HTTP status."""

    def __init__(self, path: str, status: int, detail: str) -> None:
        self.status, self.detail = status, detail
        super().__init__(f"{path}: HTTP {status}: {detail}")

    @property
    def bad_token(self) -> bool:
        return self.status in (401, 403)


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
        body = {"worker": self.worker_id, "epoch": epoch, "metrics": metrics}
        return bool(self._post(f"/api/trials/{item_id}/report", body).json()["prune"])

    def heartbeat(self, item_id: int) -> bool:
        body = {"worker": self.worker_id}
        return bool(self._post(f"/api/trials/{item_id}/heartbeat", body).json()["continue"])

    def finish(self, item_id: int, outcome: dict[str, Any], worker: str | None = None) -> bool:
        """Deliver an outcome as ``worker`` (default: this worker), the item's holder: a result
        adopted from a dead worker's spool is delivered under its holder's id."""
        body = {"worker": worker or self.worker_id, **outcome}
        return bool(self._post(f"/api/trials/{item_id}/finish", body).json()["applied"])

    def _post(self, path: str, body: dict[str, Any] | None) -> httpx.Response:
        try:
            response = self._http.post(path, json=body)
        except httpx.TransportError as exc:
            raise Unreachable(f"{path}: {exc}") from None
        if response.status_code >= 500:
            raise Unreachable(f"{path}: HTTP {response.status_code}: {_detail(response)}")
        if response.status_code >= 400:
            raise Refused(path, response.status_code, _detail(response))
        return response


def _detail(response: httpx.Response) -> str:
    """The server's own explanation (``detail``), or the start of whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail if detail is not None else body)[:1000]
