"""hpsearch: hyperparameter search for regularized CNNs, following the coarse-to-fine recipe."""

from hpsearch.errors import DatasetNotFoundError, DivergedError, HPSearchError, SpecError
from hpsearch.spec import StudySpec, load_spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "DatasetNotFoundError",
    "DivergedError",
    "HPSearchError",
    "SpecError",
    "StudySpec",
    "__version__",
    "load_spec",
    "parse_spec",
]
