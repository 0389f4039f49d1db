from __future__ import annotations

import pytest

from hpsearch.recipe import narrow
from hpsearch.spec import SearchRange


def test_narrowing_spans_the_points_widened_by_the_margin() -> None:
    previous = {
        "lr": SearchRange(low=1e-4, high=1.0),
        "weight_decay": SearchRange(low=1e-6, high=1e-2),
    }
    points = [{"lr": 0.01, "weight_decay": 1e-4}, {"lr": 0.04, "weight_decay": 1e-5}]
    narrowed = narrow(points, previous, margin=2.0)
    assert narrowed["lr"].low == pytest.approx(0.005)
    assert narrowed["lr"].high == pytest.approx(0.08)
    assert narrowed["weight_decay"].low == pytest.approx(5e-6)
    assert narrowed["weight_decay"].high == pytest.approx(2e-4)


def test_narrowed_ranges_stay_inside_and_keep_every_point() -> None:
    previous = {
        "lr": SearchRange(low=0.01, high=0.1),
        "model.dropout": SearchRange(low=0.0, high=0.5, log=False),
    }
    points = [{"lr": 0.011, "model.dropout": 0.1}, {"lr": 0.09, "model.dropout": 0.45}]
    narrowed = narrow(points, previous, margin=2.0)
    for name, r in narrowed.items():
        assert previous[name].low <= r.low < r.high <= previous[name].high
        assert all(r.contains(p[name]) for p in points)
    assert narrowed["model.dropout"].log is False


def test_points_on_one_edge_keep_a_usable_range() -> None:
    previous = {"lr": SearchRange(low=0.01, high=0.1)}
    narrowed = narrow([{"lr": 0.1}, {"lr": 0.1}], previous, margin=2.0)
    assert narrowed["lr"].low == pytest.approx(0.05)
    assert narrowed["lr"].high == pytest.approx(0.1)
