"""The server reads only what it was given: uploaded data (sha256:) and files under the
directories its operator lists (HPSEARCH_DATA_ROOTS). Nothing else a spec names is looked at,
and the answer does not tell whether a path exists (no oracle of the server's files)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from hpsearch.data import describe_dataset
from hpsearch.errors import SpecError
from hpsearch.spec import DatasetSpec
from tests.api.conftest import ADMIN
from tests.conftest import launch


def serve(tmp_path: Path, roots: list[Path]) -> TestClient:
    settings = Settings(
        storage=f"sqlite:///{tmp_path / 'files.db'}", admin_token="admin-secret",
        worker_token="worker-secret", data_dir=str(tmp_path / "server-data"),
        data_roots=os.pathsep.join(str(r) for r in roots),
    )  # fmt: skip
    return TestClient(create_app(settings))


@pytest.fixture
def unlisted(tmp_path: Path) -> Iterator[TestClient]:
    with serve(tmp_path, []) as client:
        yield client


def arrays_at(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path, x_train=rng.integers(0, 255, (60, 8, 8), dtype=np.uint8), y_train=np.arange(60) % 2
    )
    return path


def launch_arrays(client: TestClient, path: str, expect: int = 422) -> dict[str, str]:
    response = launch(client, ADMIN, "files", expect=None, dataset={"name": "arrays", "path": path})
    assert response.status_code == expect, response.text
    if expect != 422:
        return {}
    return {p["field"]: p["message"] for p in response.json()["problems"]}


def test_dev_zero_is_refused_at_once(unlisted: TestClient, tmp_path: Path) -> None:
    began = time.perf_counter()
    problems = launch_arrays(unlisted, "/dev/zero")
    assert time.perf_counter() - began < 5.0  # it used to read 3 GB in 3.6 s, then more
    assert "a server reads only data uploaded to it" in problems["dataset.path"]
    (tmp_path / "dev").mkdir()
    with serve(tmp_path / "dev", [Path("/dev")]) as listed:  # even where an operator lists it
        assert launch_arrays(listed, "/dev/zero")["dataset.path"] == (
            "/dev/zero is not a regular file or a folder"
        )
    with pytest.raises(SpecError, match="not a regular file or a folder"):  # on your machine too
        describe_dataset(DatasetSpec(name="arrays", path="/dev/zero"))


def test_whether_a_server_file_exists_is_not_told(unlisted: TestClient, tmp_path: Path) -> None:
    present = arrays_at(tmp_path / "secret.npz")
    absent = tmp_path / "absent.npz"
    said = {p: launch_arrays(unlisted, str(p))["dataset.path"] for p in (present, absent)}
    assert said[present].removeprefix(str(present)) == said[absent].removeprefix(str(absent))
    assert "this server lists none" in said[present]
    for system in ("/etc/passwd", "/", "/usr/bin", "relative/data.npz"):
        assert "a server reads only" in launch_arrays(unlisted, system)["dataset.path"]
    init = launch(unlisted, ADMIN, "init", expect=None, model={"init_from": str(present)})
    assert init.status_code == 422
    assert "a server reads only" in init.json()["detail"]


def test_files_under_a_listed_root_are_read_and_no_symlink_leads_out(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    data = arrays_at(root / "small.npz")
    outside = arrays_at(tmp_path / "outside.npz")
    (root / "link.npz").symlink_to(outside)
    with serve(tmp_path, [root]) as client:
        launch_arrays(client, str(data), expect=201)
        problems = launch_arrays(client, str(root / "link.npz"))
        assert "it lies under none of those this server lists" in problems["dataset.path"]
        missing = launch_arrays(client, str(root / "missing.npz"))  # inside a root: may be told
        assert "does not exist" in missing["dataset.path"]


def test_an_unknown_init_study_names_no_server_path(unlisted: TestClient) -> None:
    response = launch(unlisted, ADMIN, "init", expect=422, model={"init_from": "study:nobody"})
    detail = response.json()["detail"]
    assert "no study named 'nobody' here" in detail
    assert "sqlite" not in detail
    assert "files.db" not in detail
