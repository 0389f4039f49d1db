"""A search round's ranges as every released version stored them read back, and write again,
the same: one type (``hpsearch.spec.SearchRange``) is the spec's, the round's and the recipe's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpsearch.results import SearchRound

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.mark.parametrize("release", ["release-0.1.0.db", "release-0.2.0.db"])
def test_the_ranges_a_release_stored_read_back_and_write_the_same(release: str) -> None:
    engine = sa.create_engine(f"sqlite:///file:{FIXTURES / release}?mode=ro&uri=true")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT result FROM hpsearch_stages WHERE name = 'coarse' OR name LIKE 'refine-%'"
            )
        ).all()
    engine.dispose()
    assert rows
    for (text,) in rows:
        stored = json.loads(text) if isinstance(text, str) else text
        if "ranges" not in stored:
            continue  # a skipped round's note
        round_ = SearchRound.model_validate(stored)
        written = round_.model_dump(mode="json")
        assert written["ranges"] == stored["ranges"]
        assert written["previous_ranges"] == stored.get("previous_ranges")
        assert all(set(r) == {"low", "high", "log", "integer"} for r in written["ranges"].values())
