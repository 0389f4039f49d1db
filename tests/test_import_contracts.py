"""The import contracts (pyproject.toml's ``[tool.importlinter]``) catch what they are there for:
a copy of the three packages passes as it is, and breaks exactly the contract one added import
goes against, by that contract's name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hpsearch", "api", "workers")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
NAMES = {
    contract["id"]: contract["name"]
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
}

# (the ids of the contracts it breaks, joined by +; the module of the copy; the import added to it)
VIOLATIONS = [
    ("one-way", "hpsearch/cli/_main.py", "from api import app"),
    ("one-way", "api/cli.py", "from workers import cli"),
    # the cycle that moving transfer learning into hpsearch.trained broke
    ("core-layers", "hpsearch/models/_build.py", "from hpsearch.trained import read_model_file"),
    # a new part of hpsearch that no layer names
    ("core-layers", "hpsearch/unplaced.py", "from hpsearch.errors import HPSearchError"),
    # (the stage machine reads the recipe, so the server's half would load PyTorch too)
    ("pure-recipe+scheduling-without-torch", "hpsearch/recipe/_ranges.py", "import torch"),
    (
        "pure-recipe+scheduling-without-torch",
        "hpsearch/recipe/_ranges.py",
        "from hpsearch.device import resolve_device",
    ),
    # allowed by the layers (views sit above training), not by what a server may load
    (
        "scheduling-without-torch",
        "hpsearch/views/_pages.py",
        "from hpsearch.training import Trainer",
    ),
    (
        "private-modules",
        "hpsearch/trained/_transfer.py",
        "from hpsearch.data._paths import resolve_path",
    ),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages' Python files and pyproject.toml, copied once."""
    tree = tmp_path_factory.mktemp("pristine")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=_not_python)
    shutil.copy(ROOT / "pyproject.toml", tree)
    return tree


def _not_python(folder: str, names: list[str]) -> set[str]:
    return {
        n
        for n in names
        if n == "__pycache__" or not (n.endswith(".py") or Path(folder, n).is_dir())
    }


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on ``tree``: its configuration, and its packages, not the installed ones."""
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "300", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verdicts(output: str) -> dict[str, str]:
    """Each contract's name -> KEPT or BROKEN, from the report's summary."""
    found = {
        name.strip(): verdict for name, verdict in re.findall(r"^(.+) (KEPT|BROKEN)$", output, re.M)
    }
    assert set(found) == set(NAMES.values()), output
    return found


def test_the_packages_as_they_are_keep_every_contract(pristine: Path) -> None:
    result = lint_imports(pristine)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(verdicts(result.stdout).values()) == {"KEPT"}


@pytest.mark.parametrize(
    ("contract", "module", "line"), VIOLATIONS, ids=[f"{c}:{line}" for c, _, line in VIOLATIONS]
)
def test_an_import_against_a_contract_breaks_that_contract(
    pristine: Path, tmp_path: Path, contract: str, module: str, line: str
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    with (tree / module).open("a") as f:
        f.write(f"\n{line}  # noqa\n")

    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = {name for name, verdict in verdicts(result.stdout).items() if verdict == "BROKEN"}
    assert broken == {NAMES[c] for c in contract.split("+")}, result.stdout
    # the report points at the import that was added
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in result.stdout, result.stdout
