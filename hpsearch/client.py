"""A client of the hpsearch server's REST API for people's commands (launch, status, stop, ...).

Workers have their own client for the trial protocol (``workers``); this one manages studies with
the admin token. Every failure is an :class:`HPSearchError` whose message says what went wrong:
the server's own explanation for a refused request, or why the server could not be reached.
"""

from __future__ import annotations

from typing import Any

import httpx

from hpsearch.errors import HPSearchError
from hpsearch.spec import StudySpec


class ServerError(HPSearchError):
    """The server refused a request or could not be reached. ``status`` is the HTTP status
    (None when nothing answered)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ServiceClient:
    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def launch(self, spec: StudySpec) -> dict[str, Any]:
        """Create the study; 409 (the name is taken) raises with ``status`` 409."""
        return dict(self._request("POST", "/api/studies", json=spec.model_dump(mode="json")))

    def studies(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/studies"))

    def study(self, key: str | int) -> dict[str, Any]:
        """A study by id, or by name."""
        return dict(self._request("GET", f"/api/studies/{self.study_id(key)}"))

    def study_id(self, key: str | int) -> int:
        if isinstance(key, int) or key.isdigit():
            return int(key)
        for study in self.studies():
            if study["name"] == key:
                return int(study["id"])
        raise ServerError(f"no study named {key!r} on {self.server}", 404)

    def stop(self, study_id: int) -> dict[str, Any]:
        """Stop a running study (``id``, ``name``, ``state``); 409 if it is not running."""
        return dict(self._request("POST", f"/api/studies/{study_id}/stop"))

    def resume(self, study_id: int) -> dict[str, Any]:
        """Resume a stopped study (``id``, ``name``, ``state``); 409 if it is not stopped."""
        return dict(self._request("POST", f"/api/studies/{study_id}/resume"))

    def delete(self, study_id: int) -> None:
        """Delete a study with its trials and stage results."""
        self._request("DELETE", f"/api/studies/{study_id}")

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(f"cannot reach the server at {self.server}: {exc}") from None
        if response.status_code >= 400:
            raise ServerError(
                f"{method} {path}: HTTP {response.status_code}: {_detail(response)}",
                response.status_code,
            )
        return response.json() if response.content else None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
