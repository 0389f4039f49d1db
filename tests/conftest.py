"""Shared fixtures: small specs and data that keep the suite fast on a 2-core CPU."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hpsearch.data import DataBundle, load_data
from hpsearch.spec import StudySpec, parse_spec

CPU = torch.device("cpu")


def make_spec(**sections: Any) -> StudySpec:
    """A digits spec with a small fast model; keyword arguments replace whole sections."""
    data: dict[str, Any] = {
        "name": "test",
        "dataset": {"name": "digits"},
        "model": {"widths": [16, 32], "norm": "batch"},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_spec(data)


@pytest.fixture(scope="session")
def digits_data() -> DataBundle:
    """The digits splits on the CPU (read-only: tests must not modify the tensors)."""
    return load_data(make_spec().dataset, seed=0, device=CPU)
