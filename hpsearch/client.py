"""The one HTTP client of the hpsearch server: study management for people's commands (launch,
status, stop, ...) with the admin token, and the trial protocol for workers with the worker token.

Every answer is a model of :mod:`hpsearch.protocol`, the one definition the server's routes
declare too. Every failure is a :class:`ServerError` whose message says what went wrong: the
server's own explanation (``detail``) of a refused request, or why nothing answered. Two kinds
tell a caller what to do: :class:`Unreachable` (no answer, or a 5xx: the server or its database
is away for a moment; back off and send again) and :class:`Refused` (a 4xx: sending the same
again cannot help).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from hpsearch import uploads
from hpsearch.errors import HPSearchError
from hpsearch.protocol import (
    ClaimRequest,
    DatasetRead,
    FinishAnswer,
    FinishRequest,
    HeartbeatAnswer,
    HeartbeatRequest,
    LeaseRead,
    ReportAnswer,
    ReportRequest,
    StudyCreated,
    StudyListItem,
    StudyRead,
)

if TYPE_CHECKING:
    from hpsearch.results import Outcome
    from hpsearch.spec import StudySpec

M = TypeVar("M", bound=BaseModel)


class ServerError(HPSearchError):
    """The server refused a request or could not be reached. ``status`` is the HTTP status
    (None when nothing answered)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class Unreachable(ServerError):
    """Nothing answered, or the server answered 5xx: back off and try again."""


class Refused(ServerError):
    """The server answered 4xx: a wrong token (401/403), an item that is not ours or no longer
    exists (404/409), something malformed (422); or 507, no room to keep a file. ``detail`` is
    the server's reason."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        self.detail = detail
        super().__init__(message, status)

    @property
    def bad_token(self) -> bool:
        return self.status in (401, 403)


class UnreadableItem(ServerError):
    """The server handed out a work item this worker cannot read (a server of another
    version): ``item_id`` is its id, ``reason`` what to tell the server when failing it."""

    def __init__(self, item_id: int, exc: ValidationError) -> None:
        self.item_id = item_id
        self.reason = f"this worker cannot read the item: {exc.errors()[0]['msg']}"
        super().__init__(f"work item {item_id}: {self.reason}")


class _Client:
    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def healthy(self) -> bool:
        """Is the server up (and its database answering)?"""
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the server at {self.server}: {exc}") from None
        self._check(response, method, path)
        return response

    @staticmethod
    def _check(response: httpx.Response, method: str, path: str) -> None:
        if response.status_code >= 400:
            detail = _detail(response)
            message = f"{method} {path}: HTTP {response.status_code}: {detail}"
            if response.status_code >= 500 and response.status_code != 507:
                raise Unreachable(message, response.status_code)  # 507: no room, for good
            raise Refused(message, response.status_code, detail)

    def _download(
        self,
        path: str,
        dest: Path,
        what: str,
        digest: str | None = None,
        limit: int = 1 << 40,
        params: dict[str, str | int] | None = None,
    ) -> str:
        """GET ``path`` into ``dest`` through :class:`uploads.Incoming`: checked against
        ``digest`` (default: the X-Sha256 the server sends) as it arrives; the sha256."""
        try:
            with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, "GET", path)
                digest = digest or str(response.headers.get("x-sha256", ""))
                with uploads.Incoming(dest, digest, limit, what) as incoming:
                    for chunk in response.iter_bytes(uploads.CHUNK):
                        incoming.write(chunk)
                    incoming.keep()
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the server at {self.server}: {exc}") from None
        return digest

    def _request(self, method: str, path: str, **kwargs: Any) -> None:
        """Send a request whose answer has no body the caller needs."""
        self._send(method, path, **kwargs)

    def _read(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        """Send a request; its answer, as ``model``."""
        return model.model_validate_json(self._send(method, path, **kwargs).content)

    def _post(self, model: type[M], path: str, body: BaseModel) -> M:
        """POST ``body`` as the protocol defines it; the answer, as ``model``."""
        return self._read(model, "POST", path, json=body.model_dump(mode="json", by_alias=True))


class ServiceClient(_Client):
    """Study management, with the admin token."""

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def launch(self, spec: StudySpec) -> StudyCreated:
        """Create the study; 409 (the name is taken) raises with ``status`` 409."""
        body = spec.model_dump(mode="json")
        return self._read(StudyCreated, "POST", "/api/studies", json=body)

    def studies(self) -> list[StudyListItem]:
        response = self._send("GET", "/api/studies")
        return _STUDY_LIST.validate_json(response.content)

    def study(self, key: str | int) -> StudyRead:
        """A study by id, or by name."""
        return StudyRead.from_json(self._send("GET", f"/api/studies/{self.study_id(key)}").json())

    def study_id(self, key: str | int) -> int:
        if isinstance(key, int) or key.isdigit():
            return int(key)
        for study in self.studies():
            if study.name == key:
                return study.id
        raise ServerError(f"no study named {key!r} on {self.server}", 404)

    def stop(self, study_id: int) -> StudyCreated:
        """Stop a running study (``id``, ``name``, ``state``); 409 if it is not running."""
        return self._read(StudyCreated, "POST", f"/api/studies/{study_id}/stop")

    def resume(self, study_id: int) -> StudyCreated:
        """Resume a stopped study (``id``, ``name``, ``state``); 409 if it is not stopped."""
        return self._read(StudyCreated, "POST", f"/api/studies/{study_id}/resume")

    def delete(self, study_id: int) -> None:
        """Delete a study with its trials and stage results."""
        self._request("DELETE", f"/api/studies/{study_id}")

    def push_dataset(self, path: Path, kind: str | None = None) -> tuple[str, bool]:
        """Upload a folder or an array file (or, as ``kind`` "model", a model file) unless the
        server has it already (asked by its sha256, so the same data is sent once); its
        ``sha256:<hex>`` name, and whether it was sent now."""
        with tempfile.TemporaryDirectory(prefix="hpsearch-push-") as scratch:
            file, packed = uploads.pack(path, Path(scratch))
            kind = kind or packed
            digest = uploads.sha256_of(file)
            if any(d.sha256 == digest for d in self.datasets()):
                return uploads.PREFIX + digest, False
            size = file.stat().st_size
            self._request(
                "PUT",
                f"/api/datasets/{digest}",
                params={"kind": kind, "name": path.name},
                content=uploads.file_chunks(file),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                timeout=None,
            )
        return uploads.PREFIX + digest, True

    def download_model(
        self, key: str | int, dest: Path, kind: str = "final", member: int = 0
    ) -> str:
        """Download study ``key``'s model file of ``kind`` to ``dest``, checked against the
        sha256 the server names (nothing is kept of a cut-off download); the sha256."""
        query: dict[str, str | int] = {"kind": kind, "member": member}
        return self._download(f"/api/studies/{key}/model", dest, "model file", params=query)

    def datasets(self) -> list[DatasetRead]:
        return _DATASET_LIST.validate_json(self._send("GET", "/api/datasets").content)

    def delete_dataset(self, digest: str) -> None:
        self._request("DELETE", f"/api/datasets/{digest.removeprefix(uploads.PREFIX)}")


class ProtocolClient(_Client):
    """The trial protocol, with the worker token. Every call names the worker: the server lets
    only the worker that claimed an item report on, renew or finish it."""

    def __init__(
        self, server: str, token: str | None, worker_id: str, timeout: float = 30.0
    ) -> None:
        super().__init__(server, token, timeout)
        self.worker_id = worker_id

    def ping(self) -> bool:
        return self.healthy()

    def claim(self, host: str, devices: list[str], modules: Sequence[str] = ()) -> LeaseRead | None:
        """The next work item under a lease (of a study whose ``python:`` model, if it has
        one, is in ``modules``), or None when there is nothing to do (204)."""
        body = ClaimRequest(
            worker=self.worker_id, host=host, devices=devices, modules=list(modules)
        )
        response = self._send("POST", "/api/trials/claim", json=body.model_dump(mode="json"))
        if response.status_code == 204:
            return None
        try:
            return LeaseRead.model_validate_json(response.content)
        except ValidationError as exc:
            raise UnreadableItem(int(response.json()["id"]), exc) from None

    def report(self, item_id: int, epoch: int, metrics: dict[str, float]) -> bool:
        """Report an epoch; True means stop now (pruned, or the study stopped)."""
        body = ReportRequest(worker=self.worker_id, epoch=epoch, metrics=metrics)
        return self._post(ReportAnswer, f"/api/trials/{item_id}/report", body).prune

    def heartbeat(self, item_id: int) -> bool:
        """Renew the lease; False means give the item up (its study stopped)."""
        body = HeartbeatRequest(worker=self.worker_id)
        return self._post(HeartbeatAnswer, f"/api/trials/{item_id}/heartbeat", body).go_on

    def fetch_dataset(self, digest: str, dest: Path, limit: int = 1 << 40) -> None:
        """Download dataset ``digest`` (hex) to ``dest``, checking its sha256 as it comes; a
        download cut off or of another hash keeps nothing (:class:`DatasetError`)."""
        self._download(f"/api/datasets/{digest}", dest, "dataset", digest, limit)

    def upload_file(self, item_id: int, file: Path, sha256: str, worker: str | None = None) -> None:
        """Send a model file the item made (before the finish that names it), streamed; the
        server checks it against ``sha256`` and keeps nothing of a cut-off or altered one."""
        query = {"worker": worker or self.worker_id}
        self._put_file(f"/api/trials/{item_id}/files/{sha256}", file, query)

    def upload_checkpoint(self, item_id: int, file: Path, epoch: int) -> None:
        """Send the latest checkpoint of a trial (taken after ``epoch``), streamed."""
        query: dict[str, str | int] = {"worker": self.worker_id, "epoch": epoch}
        query["sha256"] = uploads.sha256_of(file)
        self._put_file(f"/api/trials/{item_id}/checkpoint", file, query)

    def download_checkpoint(self, item_id: int, dest: Path) -> None:
        """Download the checkpoint a retried trial goes on from, checked against its sha256."""
        query: dict[str, str | int] = {"worker": self.worker_id}
        self._download(f"/api/trials/{item_id}/checkpoint", dest, "checkpoint", params=query)

    def _put_file(self, path: str, file: Path, query: Mapping[str, str | int]) -> None:
        self._request(
            "PUT",
            path,
            params=query,
            content=uploads.file_chunks(file),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(file.stat().st_size),
            },
            timeout=None,
        )

    def finish(self, item_id: int, outcome: Outcome, worker: str | None = None) -> bool:
        """Deliver an outcome as ``worker`` (default: this worker), the item's holder: a result
        adopted from a dead worker's spool is delivered under its holder's id. False: a
        repeated finish, acknowledged, not applied again."""
        body = FinishRequest(worker=worker or self.worker_id, **dict(outcome))
        return self._post(FinishAnswer, f"/api/trials/{item_id}/finish", body).applied


_STUDY_LIST = TypeAdapter(list[StudyListItem])
_DATASET_LIST = TypeAdapter(list[DatasetRead])


def _detail(response: httpx.Response) -> str:
    """The server's own explanation (``detail``), or the start of whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail if detail is not None else body)[:1000]
