"""docs/ARCHITECTURE.md is the map a new maintainer walks by: every file and symbol it names must
exist, and the life of a study must stay short enough to follow.

Conventions of the map (so that a test can hold it to the code): a file is named by its path from
the repository's root (`hpsearch/scheduling/_machine.py`), a folder with a trailing slash, a
symbol either by its importable dotted name (`hpsearch.scheduling.StageMachine.next_item`) or as
`path::Name.attribute` (`hpsearch/scheduling/_rounds.py::SearchRounds.setup`).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGES = ("hpsearch", "api", "workers", "studies", "tests", "bench", "deploy", "docs")

_CODE = re.compile(r"`([^`\n]+)`")
_ROOTS = "|".join(PACKAGES)
_PATH = re.compile(rf"^(?:{_ROOTS})(?:/[\w.-]+)*/?(?:::[\w.]+)?$")
_DOTTED = re.compile(r"^(?:hpsearch|api|workers)(?:\.\w+)+$")


def names_in(text: str) -> tuple[list[str], list[str]]:
    """The file paths and the dotted symbols a text names in backquotes."""
    paths, dotted = [], []
    for token in _CODE.findall(text):
        if _PATH.match(token) and ("/" in token or "::" in token):
            paths.append(token)
        elif _DOTTED.match(token):
            dotted.append(token)
    return paths, dotted


def defined_in(path: Path, qualname: str) -> bool:
    """Whether ``qualname`` (``Name`` or ``Class.attribute``) is defined at the top of ``path``."""
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    for part in qualname.split("."):
        found = _definition(scope, part)
        if found is None:
            return False
        scope = found.body if isinstance(found, ast.ClassDef) else []
    return True


def _definition(body: list[ast.stmt], name: str) -> ast.stmt | None:
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == name:
                return node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node
    return None


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` imports: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def missing_paths(paths: list[str]) -> list[str]:
    missing = []
    for token in paths:
        file, _, qualname = token.partition("::")
        where = ROOT / file
        if not where.exists() or (qualname and not defined_in(where, qualname)):
            missing.append(token)
    return missing


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/ARCHITECTURE.md has no section '## {heading}'"
    return match.group(1)


def test_every_file_and_symbol_the_map_names_exists() -> None:
    paths, dotted = names_in(DOC.read_text())
    assert len(paths) > 20, "the map names the files it describes"
    assert missing_paths(paths) == []
    assert [d for d in dotted if not resolves(d)] == []


def test_the_life_of_a_study_passes_at_most_ten_files() -> None:
    life = section(DOC.read_text(), "The life of a study")
    files = {p.partition("::")[0] for p in names_in(life)[0] if not p.endswith("/")}
    assert 5 <= len(files) <= 10, sorted(files)


def test_the_map_says_where_the_learning_rate_travels() -> None:
    journey = section(DOC.read_text(), "The learning rate's journey")
    paths, dotted = names_in(journey)
    assert len(paths) + len(dotted) >= 5


@pytest.mark.parametrize(
    ("token", "exists"),
    [
        ("hpsearch/scheduling/_machine.py", True),
        ("hpsearch/scheduling/_machine.py::StageMachine.next_item", True),
        ("hpsearch/scheduling/_machine.py::StageMachine.no_such_method", False),
        ("hpsearch/recipe/_no_such_module.py", False),
    ],
)
def test_a_wrong_name_is_caught(token: str, exists: bool) -> None:
    assert (missing_paths([token]) == []) is exists


def test_a_wrong_dotted_name_is_caught() -> None:
    assert resolves("hpsearch.scheduling.StageMachine")
    assert not resolves("hpsearch.scheduling.NoSuchMachine")
    assert not resolves("hpsearch.no_such_package.thing")
