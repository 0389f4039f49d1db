"""Spec text is read within bounds: aliases counted, nesting bounded, an empty spec refused."""

from __future__ import annotations

import time

import pytest

from hpsearch.errors import SpecError
from hpsearch.spec import read_spec_text
from tests.workers.test_hostile_specs import BILLION_LAUGHS


def test_a_billion_laughs_document_is_refused_at_once() -> None:
    assert len(BILLION_LAUGHS) < 600
    began = time.perf_counter()
    with pytest.raises(SpecError, match="more than 100,000 values"):
        read_spec_text(BILLION_LAUGHS, "bomb.yaml")
    assert time.perf_counter() - began < 5.0  # it used to walk 10**9 values for minutes


def test_aliases_a_real_spec_uses_still_read() -> None:
    text = "train: &t {lr: 0.1, epochs: 3}\nrecipe: {final: {epochs: 4}}\nsearch: {}\nx: *t\n"
    data = read_spec_text(text, "anchors.yaml")
    assert isinstance(data, dict)
    assert data["x"] == {"lr": 0.1, "epochs": 3}


@pytest.mark.parametrize(("text", "is_json"), [("{}", False), ("", False), ("{}", True)])
def test_an_empty_spec_is_refused_naming_what_it_needs(text: str, is_json: bool) -> None:
    with pytest.raises(SpecError, match=r"the spec is empty: name at least its data"):
        read_spec_text(text, "empty", is_json=is_json)
