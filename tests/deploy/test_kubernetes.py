"""The Kubernetes manifests render and validate offline; a broken one is named, file and field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "deploy" / "check_kubernetes.py"
KUBERNETES = REPO / "deploy" / "kubernetes"


@pytest.fixture(autouse=True)
def _kubectl() -> None:
    """kubectl renders the overlays: in CI these tests must run, elsewhere they may skip."""
    if shutil.which("kubectl") is None:
        missing("kubectl is not installed: it renders the overlays (kubectl kustomize)")


def check(*overlays: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *map(str, overlays)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_overlay_renders_and_validates_in_strict_mode() -> None:
    done = check()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    overlays = sorted(p.name for p in (KUBERNETES / "overlays").iterdir())
    assert overlays == ["cpu", "gpu", "with-postgres"]
    assert [line.split(":")[0] for line in lines] == [f"overlays/{o}" for o in overlays]
    assert all(": ok, " in line for line in lines)


def test_the_overlays_are_what_the_readme_promises() -> None:
    """Two API replicas with probes on /healthz; one GPU per worker pod (none on the CPU
    overlay); PostgreSQL with a volume where the cluster has none."""
    sys.path.insert(0, str(CHECK.parent))
    try:
        from check_kubernetes import render
    finally:
        sys.path.remove(str(CHECK.parent))

    def objects(overlay: str) -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]
        rendered = render(KUBERNETES / "overlays" / overlay)
        return {(o["kind"], o["metadata"]["name"]): o for o in rendered}

    gpu = objects("gpu")
    api = gpu[("Deployment", "hpsearch-api")]["spec"]
    assert api["replicas"] == 2
    (server,) = api["template"]["spec"]["containers"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["resources"]["requests"]
    (worker,) = gpu[("Deployment", "hpsearch-worker")]["spec"]["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["command"][-2:] == ["--devices", "all"]
    (cpu_worker,) = objects("cpu")[("Deployment", "hpsearch-worker")]["spec"]["template"]["spec"][
        "containers"
    ]
    assert "nvidia.com/gpu" not in cpu_worker["resources"]["limits"]
    assert cpu_worker["command"][-2:] == ["--devices", "cpu"]
    with_db = objects("with-postgres")
    postgres = with_db[("StatefulSet", "hpsearch-postgres")]["spec"]
    assert postgres["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    (api_db,) = with_db[("Deployment", "hpsearch-api")]["spec"]["template"]["spec"]["containers"]
    env = [e["name"] for e in api_db["env"]]
    storage = next(e for e in api_db["env"] if e["name"] == "HPSEARCH_STORAGE")
    assert "@hpsearch-postgres:5432/" in storage["value"]
    assert "valueFrom" not in storage
    assert env.index("POSTGRES_PASSWORD") < env.index("HPSEARCH_STORAGE")  # $(...) needs it first


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("  replicas: 2\n", "  replicas: two\n"), ["spec.replicas", "'two' is not of type"]),
        (("  replicas: 2\n", "  replicas: 2\n  replica: 3\n"), ["spec", "'replica'"]),
    ],
)
def test_a_broken_manifest_fails_naming_its_file_and_field(
    tmp_path: Path, change: tuple[str, str], words: list[str]
) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    api = copy / "base" / "api.yaml"
    text = api.read_text()
    assert change[0] in text
    api.write_text(text.replace(change[0], change[1], 1))

    done = check(copy / "overlays" / "gpu", copy / "overlays" / "cpu")

    assert done.returncode == 1
    broken = [line for line in done.stdout.splitlines() if "hpsearch-api" in line]
    assert len(broken) == 2  # once per overlay
    for line in broken:
        assert "../../base/api.yaml: Deployment hpsearch-api:" in line
        assert all(word in line for word in words), line


def test_a_manifest_kustomize_cannot_read_fails_with_its_message(tmp_path: Path) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    (copy / "base" / "worker.yaml").write_text("kind: Deployment\n  spec: [\n")
    done = check(copy / "overlays" / "gpu")
    assert done.returncode == 1
    assert "kubectl kustomize:" in done.stdout
    assert "worker.yaml" in done.stdout
