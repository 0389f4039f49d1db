"""The base of every result model, and one epoch's metrics."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["sanity", "range_test", "trial", "final"]
OutcomeState = Literal["passed", "failed", "completed", "pruned"]
Verdict = Literal[
    "passed",
    "head mismatch",
    "initial loss off",
    "diverged",
    "not learning",
    "labels look random",
    "not memorizing",
]
DiagnosisVerdict = Literal["overfitting", "still improving", "underfitting", "good fit"]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # no bools, no strings
MaybeFinite = Finite | None  # a loss that blew up is recorded as None


class _Model(BaseModel):
    # NaN and infinities are refused: every database must store results as valid JSON
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


# --- per-epoch metrics ---------------------------------------------------------------------------


class EpochRecord(_Model):
    """One epoch of a training run: what a worker reports, and a run's history."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, frozen=True)

    epoch: int = Field(ge=1, le=100_000)
    val_accuracy: Finite = Field(ge=0.0, le=1.0)
    train_loss: MaybeFinite = None
    train_accuracy: MaybeFinite = None
    val_loss: MaybeFinite = None
    lr: MaybeFinite = None
    seconds: MaybeFinite = None
    # absent from epochs recorded before these were measured; val_roc_auc is None when the
    # validation split holds one class only (hpsearch.metrics)
    val_balanced_accuracy: MaybeFinite = Field(None, ge=0.0, le=1.0)
    val_macro_f1: MaybeFinite = Field(None, ge=0.0, le=1.0)
    val_roc_auc: MaybeFinite = Field(None, ge=0.0, le=1.0)
