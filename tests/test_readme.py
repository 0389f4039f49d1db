"""The README stays short and its links hold: a newcomer reads it to the end, then follows them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PERFORMANCE = DOCS / "PERFORMANCE.md"

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
# A figure: 354, 0.9948, 10,000, 1,517.
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
HEADLINE_MARKER = "<!-- headline-figures -->"


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def relative_links(path: Path) -> list[str]:
    """The links of a markdown file that name a file in the repository (not a URL, not #anchor)."""
    targets = LINK.findall(path.read_text(encoding="utf-8"))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def headline_rows() -> list[str]:
    """The rows of the README's headline table: the table right after its marker."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert HEADLINE_MARKER in lines, f"README.md has no {HEADLINE_MARKER} before its figures"
    table = []
    for line in lines[lines.index(HEADLINE_MARKER) + 1 :]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table[2:]  # past the header and the |---| line


def figures(text: str) -> set[str]:
    """Every number in the text, leaving out link targets (their anchors are not figures)."""
    return set(NUMBER.findall(re.sub(r"\]\([^)]*\)", "]", text)))


def test_the_readme_is_at_most_300_lines() -> None:
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= 300, f"README.md has {count} lines; move reference text into docs/"


def test_the_first_screen_links_the_map_of_the_code_and_the_recipe() -> None:
    first = "\n".join(README.read_text(encoding="utf-8").splitlines()[:30])
    assert "(docs/ARCHITECTURE.md)" in first
    assert "(docs/RECIPE.md)" in first


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_points_at_a_file_that_exists(path: Path) -> None:
    missing = [
        target
        for target in relative_links(path)
        if not (path.parent / target.split("#", 1)[0]).exists()
    ]
    assert not missing, f"{path.relative_to(REPO)} links to missing files: {missing}"


def test_every_headline_figure_is_in_the_performance_page() -> None:
    rows = headline_rows()
    assert rows, "the README's headline table has no rows"
    known = figures(PERFORMANCE.read_text(encoding="utf-8"))
    for row in rows:
        absent = figures(row) - known
        assert not absent, f"not in docs/PERFORMANCE.md: {sorted(absent)} (row: {row})"
