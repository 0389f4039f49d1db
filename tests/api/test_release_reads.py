"""A database written by the release before this change opens with this version, and every
study in it reads back the same through the API.

``tests/fixtures/release-0.2.0.db`` (with its artifact directory ``release-0.2.0-artifacts``:
the final model file of ``local-done``) and ``tests/fixtures/release-0.2.0.json`` were made by
``tests/fixtures/make_release_db_0_2.py`` run against a checkout of commit 34d392c (whose
``__version__`` still says 0.1.0): one study run locally to its end (a refine round, the final
training, a targeted stage), one whose sanity check failed, one served over the REST API by the
released worker loop and then stopped, and one served part-way, its last trial still held by
its worker. The JSON file holds, for every GET of a study the API has (the list, each study by
id and by name, its trials in every order, filter and page, each trial, the best trials, the
points, the charts, the model file), the status and body the released code answered; this
test makes the same requests with today's code and compares them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api import Settings, create_app
from tests.api.conftest import ADMIN

FIXTURES = Path(__file__).parents[1] / "fixtures"
RELEASE = FIXTURES / "release-0.2.0.db"
ARTIFACTS = FIXTURES / "release-0.2.0-artifacts"
SNAPSHOT = FIXTURES / "release-0.2.0.json"
# Computed from the time of the read, not read from the database: a worker is ``alive`` when it
# was heard from lately (the fixture's worker was last heard from when the fixture was made).
CLOCK_KEYS = {"/api/workers": ("alive",)}


def test_every_study_of_the_release_reads_back_the_same(tmp_path: Path) -> None:
    copy = tmp_path / RELEASE.name
    shutil.copy(RELEASE, copy)
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS, artifacts)
    expected: dict[str, Any] = json.loads(SNAPSHOT.read_text())["reads"]
    # The held trial's lease ran out long ago: the server reaps nothing for one lease period
    # after it starts, so an hour's lease keeps it held however slowly the reads go.
    settings = Settings(storage=f"sqlite:///{copy}", admin_token="admin-secret",
                        worker_token="worker-secret", artifact_dir=str(artifacts),
                        data_dir=str(tmp_path / "datasets"), lease_seconds=3600.0)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        listed = client.get("/api/studies", headers=ADMIN).json()
        assert [(s["name"], s["state"]) for s in listed] == [
            ("local-done", "completed"),
            ("sanity-failed", "failed"),
            ("stopped", "stopped"),
            ("served", "running"),
        ]
        read = {path: _read(client, path) for path in expected}
    differences = {
        path: _differences(_without_clock(path, expected[path]), _without_clock(path, got))
        for path, got in read.items()
    }
    assert {path: found for path, found in differences.items() if found} == {}


def _read(client: TestClient, path: str) -> dict[str, Any]:
    """What the snapshot keeps of a GET: its status and JSON body (a model file: its size and
    sha256, and the sha256 the server says it has)."""
    response = client.get(path, headers=ADMIN)
    body: Any
    if path.split("?")[0].endswith("/model") and response.status_code == 200:
        body = {
            "bytes": len(response.content),
            "sha256": hashlib.sha256(response.content).hexdigest(),
            "x-sha256": response.headers.get("x-sha256"),
        }
    else:
        body = response.json()
    return {"status": response.status_code, "body": body}


def _without_clock(path: str, read: dict[str, Any]) -> dict[str, Any]:
    keys = CLOCK_KEYS.get(path, ())
    if not keys:
        return read
    rows = [{k: v for k, v in row.items() if k not in keys} for row in read["body"]]
    return read | {"body": rows}


def _differences(expected: Any, got: Any, where: str = "") -> list[str]:
    """Where ``got`` differs from ``expected``: a line for each differing leaf, by its path."""
    if isinstance(expected, dict) and isinstance(got, dict):
        found = []
        for key in [*expected, *(k for k in got if k not in expected)]:
            if key not in got:
                found.append(f"{where}/{key}: missing (was {expected[key]!r:.200})")
            elif key not in expected:
                if not _in_spec(where):
                    found.append(f"{where}/{key}: new ({got[key]!r:.200})")
            else:
                found += _differences(expected[key], got[key], f"{where}/{key}")
        return found
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [d for i, (e, g) in enumerate(zip(expected, got, strict=True))
                for d in _differences(e, g, f"{where}/{i}")]  # fmt: skip
    if expected == got or _same_numbers(expected, got):
        return []
    return [f"{where or '/'}: {expected!r:.200} -> {got!r:.200}"]


# A float computed afresh (the parameter importances' random forest) may differ in its last
# digits from one machine's floating-point to another's: equal to 12 significant digits is equal.
_FLOAT = re.compile(r"-?\d+\.\d{12,}(?:e[-+]?\d+)?")


def _same_numbers(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        return math.isclose(expected, got, rel_tol=1e-12)
    if isinstance(expected, str) and isinstance(got, str):

        def rounded(text: str) -> str:
            return _FLOAT.sub(lambda m: f"{float(m.group()):.12g}", text)

        return rounded(expected) == rounded(got)
    return False


def _in_spec(where: str) -> bool:
    """Whether ``where`` lies inside a study's spec: a field added to the spec since the
    release reads back with its default there, and is new in the read but not a change of what
    was stored (every field the release wrote must still read the same)."""
    return "/spec/" in f"{where}/"
