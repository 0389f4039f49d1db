"""Shared fixtures: small specs and data that keep the suite fast on a 2-core CPU."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import numpy as np
import pytest
import torch
from sqlalchemy.engine import make_url as sa_url

from hpsearch.data import DataBundle, load_data
from hpsearch.spec import StudySpec, parse_spec

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
# Model files of runs on a server database would go to ./hpsearch-artifacts: the tests keep them
# in a folder of their own (a test that needs its own sets the variable or the option).
os.environ.setdefault("HPSEARCH_ARTIFACT_DIR", tempfile.mkdtemp(prefix="hpsearch-test-artifacts-"))
HPSEARCH = shutil.which("hpsearch", path=str(Path(sys.executable).parent)) or "hpsearch"


def make_spec(**sections: Any) -> StudySpec:
    """A digits spec with a small fast model; keyword arguments replace whole sections."""
    data: dict[str, Any] = {
        "name": "test",
        "dataset": {"name": "digits"},
        "model": {"widths": [16, 32], "norm": "batch"},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0},
    }
    for key, value in sections.items():
        merged = isinstance(value, dict) and isinstance(data.get(key), dict)
        data[key] = {**data[key], **value} if merged else value
    return parse_spec(data)


@pytest.fixture(scope="session")
def digits_data() -> DataBundle:
    """The digits splits on the CPU (read-only: tests must not modify the tensors)."""
    return load_data(make_spec().dataset, seed=0, device=CPU)


MARIADB_ADMIN_URL = os.environ.get(
    "HPSEARCH_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
)
POSTGRES_ADMIN_URL = os.environ.get(
    "HPSEARCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)

# A whole recipe in seconds: a small model, few short trials, short sweeps.
TINY_RECIPE: dict[str, Any] = {
    "sanity": {"overfit_steps": 150},
    "range_test": {"steps": 60, "check_iterations": 40},
    "coarse": {"trials": 10, "epochs": 2},
    "refine": {"trials": 4, "epochs_factor": 2, "rounds": 2, "min_gain": 0.0},
    "final": {"epochs": 6, "early_stopping_patience": 3},
}


def tiny_study(name: str = "tiny", **sections: Any) -> StudySpec:
    """A digits study whose whole recipe runs in seconds; ``recipe`` merges per stage."""
    extra = sections.pop("recipe", {})
    recipe = {k: {**v, **extra.get(k, {})} for k, v in TINY_RECIPE.items()}
    return make_spec(name=name, recipe=recipe, **sections)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file, or a new PostgreSQL or MariaDB
    database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hpsearch.db'}"
        return
    with _postgres_database() if request.param == "postgresql" else _mariadb_database() as url:
        yield url


def missing(message: str) -> NoReturn:
    """What a test needs is not here: in CI a failure (those tests must run), else a skip."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def _mariadb_database() -> Iterator[str]:
    import pymysql

    server = sa_url(MARIADB_ADMIN_URL)
    try:
        admin = pymysql.connect(
            host=server.host,
            port=server.port or 3306,
            user=server.username,
            password=server.password or "",
            connect_timeout=5,
            autocommit=True,
        )
    except pymysql.err.OperationalError as exc:
        missing(f"MariaDB at {MARIADB_ADMIN_URL} is unreachable: {exc}")
    name = f"hpsearch_test_{uuid.uuid4().hex[:12]}"
    with admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        try:
            yield str(server.set(database=name).render_as_string(hide_password=False))
        finally:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}")
    name = f"hpsearch_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def finished_digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """``hpsearch run --spec studies/digits.yaml --json``, once per session: the SQLite URL of
    the finished search and the command's JSON result."""
    url = f"sqlite:///{tmp_path_factory.mktemp('digits') / 'digits.db'}"
    command = [HPSEARCH, "run", "--spec", "studies/digits.yaml", "--storage", url, "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return url, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def imbalanced_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """``hpsearch run --json`` of a tiny study with ``search.objective: macro_f1`` on digits made
    90/10 imbalanced (is it an eight? 10 % are; an ``arrays`` file written here), once per
    session: the SQLite URL of the finished search and the command's JSON result."""
    from sklearn.datasets import load_digits

    where = tmp_path_factory.mktemp("imbalanced")
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # (N, 8, 8)
    labels = (digits.target == 8).astype(np.int64)
    classes = np.array(["other", "eight"])
    np.savez(where / "eights.npz", x_train=images, y_train=labels, classes=classes)
    spec = tiny_study(
        "eights",
        dataset={"name": "arrays", "path": str(where / "eights.npz")},
        search={"objective": "macro_f1"},
        model={"widths": [8, 16]},
        recipe={  # 28 trial-epochs in all
            "coarse": {"trials": 6},
            "refine": {"rounds": 1, "trials": 3},
            "final": {"epochs": 4, "targeted_stage": False},
        },
    )
    (where / "spec.json").write_text(spec.model_dump_json())
    url = f"sqlite:///{where / 'eights.db'}"
    command = [HPSEARCH, "run", "--spec", str(where / "spec.json"), "--storage", url, "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return url, json.loads(done.stdout.strip().splitlines()[-1])


class Poster(Protocol):
    """An HTTP client with a base URL: FastAPI's TestClient, or an ``httpx.Client``."""

    def post(self, url: str, *, json: Any = ..., headers: Any = ...) -> Any: ...


def launch(
    http: Poster,
    headers: dict[str, str],
    study: str | dict[str, Any] = "tiny",
    expect: int | None = 201,
    **sections: Any,
) -> Any:
    """Launch a study over REST: a tiny study named ``study`` (``sections`` merged in, as
    ``tiny_study`` takes them) or a spec given as JSON data, sent as it is. With the expected
    status 201 (the default), the new study's id; else the response (checked against
    ``expect`` unless it is None)."""
    body = (
        study if isinstance(study, dict) else tiny_study(study, **sections).model_dump(mode="json")
    )
    response = http.post("/api/studies", json=body, headers=headers)
    assert expect is None or response.status_code == expect, response.text
    return int(response.json()["id"]) if expect == 201 else response


T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    """Poll ``check()`` until it returns something (not None, not False); fail naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result is not None and result is not False:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
