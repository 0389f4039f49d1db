"""Render every Kubernetes overlay and validate what it renders, offline.

    python deploy/check_kubernetes.py                     # every overlay under deploy/kubernetes
    python deploy/check_kubernetes.py path/to/overlay ...

Each overlay is rendered with ``kubectl kustomize`` and each object it renders is validated in
strict mode (unknown fields are errors) against the Kubernetes schemas that ship with
``kubernetes-validate``: no cluster, no network. A problem is one line naming the overlay, the
file the object came from (kustomize's origin annotation), the object and the field:

    overlays/gpu: ../../base/api.yaml: Deployment hpsearch-api: spec.replicas: 'two' is not ...

Exit status 1 if any overlay fails to render or any object is invalid.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

ROOT = Path(__file__).resolve().parent / "kubernetes"
ORIGIN = "config.kubernetes.io/origin"


def overlays(root: Path = ROOT) -> list[Path]:
    return sorted(p.parent for p in (root / "overlays").glob("*/kustomization.yaml"))


def render(overlay: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` renders for ``overlay``; ValueError with its message."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ValueError("kubectl is not installed: it renders the overlays (kubectl kustomize)")
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise ValueError(f"kubectl kustomize: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def check(overlay: Path, version: str) -> tuple[int, list[str]]:
    """How many objects ``overlay`` renders, and one line per problem: it does not render, or
    an object does not validate."""
    try:
        objects = render(overlay)
    except ValueError as exc:
        return 0, [str(exc)]
    found = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        origin = yaml.safe_load((meta.get("annotations") or {}).get(ORIGIN, "")) or {}
        where = f"{origin.get('path', '?')}: {obj.get('kind')} {meta.get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            field = ".".join(str(part) for part in exc.path) or "(the object)"
            found.append(f"{where}: {field}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            found.append(f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
    return len(objects), found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlays", nargs="*", type=Path, help="default: every overlay")
    parser.add_argument(
        "--kubernetes-version", default=kubernetes_validate.latest_version(), metavar="X.Y.Z"
    )
    args = parser.parse_args(argv)
    failed = False
    for overlay in args.overlays or overlays():
        full = overlay.resolve()
        name = full.relative_to(ROOT) if full.is_relative_to(ROOT) else overlay
        count, found = check(overlay, args.kubernetes_version)
        for line in found:
            print(f"{name}: {line}")
        if not found:
            print(f"{name}: ok, {count} objects valid for Kubernetes {args.kubernetes_version}")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
