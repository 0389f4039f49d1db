"""The study spec: pydantic models, loading from YAML/JSON, and overrides."""

from hpsearch.spec._load import apply_overrides, load_spec, parse_spec, read_spec_text, spec_with
from hpsearch.spec._model import (
    AugmentSpec,
    BudgetSpec,
    CoarseSpec,
    DatasetSpec,
    Dimension,
    FinalSpec,
    ModelSpec,
    RangeTestSpec,
    RecipeSpec,
    RefineSpec,
    SanitySpec,
    SearchSpec,
    StudySpec,
    TrainSpec,
)

__all__ = [
    "AugmentSpec",
    "BudgetSpec",
    "CoarseSpec",
    "DatasetSpec",
    "Dimension",
    "FinalSpec",
    "ModelSpec",
    "RangeTestSpec",
    "RecipeSpec",
    "RefineSpec",
    "SanitySpec",
    "SearchSpec",
    "StudySpec",
    "TrainSpec",
    "apply_overrides",
    "load_spec",
    "parse_spec",
    "read_spec_text",
    "spec_with",
]
