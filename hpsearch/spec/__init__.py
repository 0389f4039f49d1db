"""The study spec: pydantic models, loading from YAML/JSON, and overrides."""

from hpsearch.spec._load import apply_overrides, load_spec, parse_spec, read_spec_text, spec_with
from hpsearch.spec._model import (
    MAX_EPOCHS,
    MAX_ROUNDS,
    MAX_TRIALS,
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
from hpsearch.spec._stored import read_stored_spec

__all__ = [
    "MAX_EPOCHS",
    "MAX_ROUNDS",
    "MAX_TRIALS",
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
    "read_stored_spec",
    "spec_with",
]
