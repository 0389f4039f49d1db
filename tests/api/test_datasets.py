"""Datasets on the server: pushed once (named by their sha256), listed, fetched by workers,
deleted when no study uses them; too large or corrupted uploads keep nothing."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from hpsearch.uploads import Incoming, pack, sha256_of
from tests.api.conftest import ADMIN, WORKER

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def small_limit(storage_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        storage=storage_url, admin_token="admin-secret", worker_token="worker-secret",
        data_dir=str(tmp_path / "server-data"), max_upload_bytes=50_000,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def arrays(tmp_path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "small.npz"
    np.savez(
        path, x_train=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8), y_train=np.arange(n) % 2
    )
    return path


def put(client: TestClient, data: bytes, digest: str, **params: str) -> object:
    return client.put(
        f"/api/datasets/{digest}", content=data, headers=ADMIN | OCTETS, params=params
    )


def test_a_dataset_is_pushed_once_listed_fetched_and_deleted(
    small_limit: TestClient, tmp_path: Path
) -> None:
    client = small_limit
    data = arrays(tmp_path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    first = client.put(f"/api/datasets/{digest}", content=data, headers=ADMIN | OCTETS,
                       params={"kind": "arrays", "name": "small.npz"})  # fmt: skip
    assert first.status_code == 201, first.text
    assert first.json()["bytes"] == len(data)
    again = client.put(f"/api/datasets/{digest}", content=data, headers=ADMIN | OCTETS)
    assert again.status_code == 201  # acknowledged, kept once
    listed = client.get("/api/datasets", headers=ADMIN).json()
    assert [(d["sha256"], d["kind"], d["name"], d["studies"]) for d in listed] == [
        (digest, "arrays", "small.npz", [])
    ]
    fetched = client.get(f"/api/datasets/{digest}", headers=WORKER)  # the worker token may
    assert fetched.status_code == 200
    assert fetched.content == data
    assert client.get(f"/api/datasets/{digest}").status_code == 401
    assert client.put(f"/api/datasets/{digest}", content=data, headers=WORKER).status_code == 403
    assert client.delete(f"/api/datasets/{digest}", headers=ADMIN).status_code == 204
    assert client.get(f"/api/datasets/{digest}", headers=WORKER).status_code == 404


def test_an_upload_over_the_limit_or_of_another_hash_keeps_nothing(
    small_limit: TestClient, tmp_path: Path
) -> None:
    client = small_limit
    big = bytes(60_000)
    too_large = client.put(
        f"/api/datasets/{hashlib.sha256(big).hexdigest()}", content=big, headers=ADMIN | OCTETS
    )
    assert too_large.status_code == 413
    assert "larger than the limit of 50,000 bytes" in too_large.json()["detail"]

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield from (bytes(10_000) for _ in range(6))

    cut = client.put(f"/api/datasets/{'0' * 64}", content=streamed(), headers=ADMIN | OCTETS)
    assert cut.status_code == 413
    wrong = client.put(f"/api/datasets/{'1' * 64}", content=b"other", headers=ADMIN | OCTETS)
    assert wrong.status_code == 422
    assert "cut off or corrupted" in wrong.json()["detail"]
    assert client.get("/api/datasets", headers=ADMIN).json() == []
    assert list((tmp_path / "server-data").iterdir()) == []  # no temp file left behind


def test_a_dataset_a_study_uses_is_not_deleted(small_limit: TestClient, tmp_path: Path) -> None:
    client = small_limit
    data = arrays(tmp_path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert (
        client.put(f"/api/datasets/{digest}", content=data, headers=ADMIN | OCTETS).status_code
        == 201
    )
    spec = {"name": "mine", "dataset": {"name": "arrays", "path": f"sha256:{digest}"},
            "model": {"widths": [8]}, "train": {"epochs": 1}}  # fmt: skip
    created = client.post("/api/studies", json=spec, headers=ADMIN)
    assert created.status_code == 201, created.text
    refused = client.delete(f"/api/datasets/{digest}", headers=ADMIN)
    assert refused.status_code == 409
    assert "mine" in refused.json()["detail"]
    assert client.get("/api/datasets", headers=ADMIN).json()[0]["studies"] == ["mine"]


def test_the_same_folder_packs_to_the_same_file(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    for name in ("a/1.png", "b/2.png", "a/3.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode() * 10)
    first, kind = pack(folder, tmp_path)
    digest = sha256_of(first)
    (folder / "a" / "1.png").touch()  # a newer mtime: the same content, the same name
    other = tmp_path / "again"
    other.mkdir()
    again, _ = pack(folder, other)
    assert kind == "folder"
    assert sha256_of(again) == digest


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_a_full_disk_is_507_naming_no_server_path_and_keeps_nothing(
    small_limit: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = arrays(tmp_path).read_bytes()

    def no_room(self: Incoming, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "server-data"))

    monkeypatch.setattr(Incoming, "write", no_room)
    full = put(small_limit, data, hashlib.sha256(data).hexdigest())
    assert isinstance(full, httpx.Response)
    assert full.status_code == 507, full.text
    assert full.json()["detail"] == "the server cannot keep the dataset: No space left on device"
    assert small_limit.get("/api/datasets", headers=ADMIN).json() == []
    assert not any(p.is_file() for p in (tmp_path / "server-data").rglob("*"))
