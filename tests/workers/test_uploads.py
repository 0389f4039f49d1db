"""Your own data through the service, with no shared filesystem: ``hpsearch launch`` uploads a
local folder once, a worker with an empty cache downloads it once (its hash checked) and completes
the study; a second study on the same folder moves nothing; a download of another hash fails its
item with that reason, and the worker goes on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hpsearch.cli import main
from tests.conftest import TINY_RECIPE, wait_until
from tests.workers.conftest import (
    TOKENS,
    ServerProcess,
    ends,
    start_worker,
    stop_workers,
    worker_log,
)


def image_folder(root: Path, classes: int = 3, per_class: int = 20) -> Path:
    """A folder of small PNG images, one bright square per class at its own place."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class-{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (8, 8, 3), dtype=np.uint8)
            pixels[2 * c : 2 * c + 3, 2 * c : 2 * c + 3] = 255
            Image.fromarray(pixels).save(root / f"class-{c}" / f"{i}.png")
    return root


def spec_file(path: Path, name: str, folder: Path) -> Path:
    spec = {
        "name": name,
        "dataset": {"name": "folder", "path": str(folder), "image_size": 8, "channels": 3},
        "model": {"widths": [8, 16]},
        "train": {"epochs": 2, "batch_size": 16},
        "recipe": TINY_RECIPE | {"coarse": {"trials": 3, "epochs": 1}, "refine": {"rounds": 0}},
    }
    path.write_text(json.dumps(spec))
    return path


def launch(server: ServerProcess, spec: Path) -> tuple[int, str]:
    env = {"HPSEARCH_ADMIN_TOKEN": TOKENS["HPSEARCH_ADMIN_TOKEN"]}
    done = CliRunner(env=env).invoke(
        main, ["launch", "--spec", str(spec), "--server", server.url, "--json"]
    )
    assert done.exit_code == 0, done.output
    return int(json.loads(done.stdout.splitlines()[-1])["id"]), done.stderr


# One database is enough here: what moves is files; the database parts are tested on both.
@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_a_folder_is_uploaded_once_and_fetched_once_by_a_worker(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    server_process.start()  # its uploads in tmp_path / "server-data"
    folder = image_folder(tmp_path / "images")
    first, said = launch(server_process, spec_file(tmp_path / "a.json", "first", folder))
    assert "uploaded as sha256:" in said
    cache = {"HPSEARCH_DATASETS": str(tmp_path / "cache")}  # the worker's, empty
    worker = start_worker(server_process.url, tmp_path, "w1", cache)
    try:
        assert ends(server_process, first, timeout=300) == "completed"
        second, said = launch(server_process, spec_file(tmp_path / "b.json", "second", folder))
        assert "already on the server" in said
        assert ends(server_process, second, timeout=300) == "completed"
    finally:
        assert stop_workers([worker]) == [0]
    log = worker_log(tmp_path, "w1")
    assert log.count("fetching dataset sha256:") == 1  # once, for both studies
    assert len(list((tmp_path / "server-data").glob("*.json"))) == 1
    stored = server_process.get(f"/api/studies/{second}")["spec"]["dataset"]["path"]
    assert stored.startswith("sha256:")


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_a_download_of_another_hash_fails_its_item_and_the_worker_goes_on(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    server_process.start()  # its uploads in tmp_path / "server-data"
    folder = image_folder(tmp_path / "images")
    study, _ = launch(server_process, spec_file(tmp_path / "a.json", "damaged", folder))
    (stored,) = [p for p in (tmp_path / "server-data").iterdir() if p.suffix != ".json"]
    stored.write_bytes(b"not the data that was uploaded")  # the disk lies now
    cache = {"HPSEARCH_DATASETS": str(tmp_path / "cache")}
    worker = start_worker(server_process.url, tmp_path, "w1", cache)
    try:
        assert ends(server_process, study, timeout=120) == "failed"
        assert worker.poll() is None  # it went on
    finally:
        assert stop_workers([worker]) == [0]
    message = server_process.get(f"/api/studies/{study}")["message"]
    assert f"sha256:{stored.name}" in message
    assert "cut off or corrupted on the way" in message
    assert not (tmp_path / "cache" / stored.name).exists()  # nothing kept of it


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_a_python_model_waits_for_a_worker_that_allows_it_then_completes(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    server_process.start()
    spec = tmp_path / "own-model.json"
    spec.write_text(json.dumps({
        "name": "own-model",
        "model": {"arch": "python:tests.hpsearch.models.user_model:small_cnn"},
        "train": {"epochs": 2, "batch_size": 16},
        "recipe": TINY_RECIPE | {
            "coarse": {"trials": 3, "epochs": 1},
            "refine": {"rounds": 0},
            # this one-conv model learns too slowly to fit the sample: not what is tested here
            "sanity": {"overfit_steps": 150, "continue_on_failure": True},
        },
    }))  # fmt: skip
    study, _ = launch(server_process, spec)  # the server never imports it: accepted
    plain = start_worker(server_process.url, tmp_path, "plain")  # without --allow-module
    capable = None
    try:

        def waiting() -> str | None:
            read = server_process.get(f"/api/studies/{study}")
            assert read["state"] == "running"  # not failed: no worker here can take it yet
            return str(read["message"]) if read["message"] else None

        message = wait_until("the study to say why it waits", waiting, timeout=60)
        assert message == "waiting for a worker that allows module tests.hpsearch.models.user_model"
        assert server_process.get(f"/api/studies/{study}")["stages"][0]["status"] == "pending"
        options = ("--allow-module", "tests.hpsearch")
        importable = {"PYTHONPATH": str(Path(__file__).parents[2])}  # the tests' own module
        capable = start_worker(server_process.url, tmp_path, "capable", importable, options)
        assert ends(server_process, study, timeout=240) == "completed"
        assert server_process.get(f"/api/studies/{study}")["message"] is None
        assert plain.poll() is None  # it was handed nothing of the study, and goes on
    finally:
        assert stop_workers([w for w in (plain, capable) if w is not None]) == [0] * (
            1 + (capable is not None)
        )
    assert "own-model" not in worker_log(tmp_path, "plain")
