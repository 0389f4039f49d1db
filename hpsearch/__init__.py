"""hpsearch: hyperparameter search for regularized CNNs, following the coarse-to-fine recipe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.errors import DatasetNotFoundError, DivergedError, HPSearchError, SpecError
from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from hpsearch.spec import StudySpec, load_spec, parse_spec
    from hpsearch.trained import TrainedModel, load_model

__version__ = "0.1.0"

# The spec's names load on first use: pydantic takes a while to build the models, and
# ``hpsearch --help`` (whose modules are in this package) should not wait for it.
_LAZY = {
    "StudySpec": "hpsearch.spec",
    "load_spec": "hpsearch.spec",
    "parse_spec": "hpsearch.spec",
    "TrainedModel": "hpsearch.trained",
    "load_model": "hpsearch.trained",
}

__all__ = [
    "DatasetNotFoundError",
    "DivergedError",
    "HPSearchError",
    "SpecError",
    "StudySpec",
    "TrainedModel",
    "__version__",
    "load_model",
    "load_spec",
    "parse_spec",
]


__getattr__ = lazy_exports(__name__, _LAZY)
