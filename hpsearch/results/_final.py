"""Stage 5's results: the final training, its test metrics and model files, the ensemble,
the targeted stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hpsearch.results._base import DiagnosisVerdict, EpochRecord, Finite, MaybeFinite, _Model
from hpsearch.spec import Objective

# --- stage 5: final training, its diagnosis, the targeted stage ---------------------------------


class Diagnosis(_Model):
    verdict: DiagnosisVerdict
    advice: str  # the verdict's, then what the weak classes call for (if any)
    gap: Finite  # train - validation accuracy over the last epochs
    train_accuracy: MaybeFinite = None
    val_accuracy: MaybeFinite = None
    val_loss_rising: bool = False
    recent_gain: MaybeFinite = None
    weak_classes: list[str] = Field(default_factory=list)  # far below the average on test


class ClassMetrics(_Model):
    """One class of a split: how often its predictions are right, how much of it is found."""

    name: str
    precision: Finite = Field(ge=0.0, le=1.0)  # 0 when the class is never predicted
    recall: Finite = Field(ge=0.0, le=1.0)  # 0 when the class is absent (support 0)
    f1: Finite = Field(ge=0.0, le=1.0)
    support: int = Field(ge=0)  # examples of the class in the split


class SplitMetrics(_Model):
    """A split's evaluation (``hpsearch.metrics.evaluate``): the four scalars a search may
    maximise, per-class metrics, and the confusion matrix."""

    accuracy: Finite = Field(ge=0.0, le=1.0)
    balanced_accuracy: Finite = Field(ge=0.0, le=1.0)
    macro_f1: Finite = Field(ge=0.0, le=1.0)
    roc_auc: MaybeFinite = Field(None, ge=0.0, le=1.0)  # None: the split holds one class only
    classes: list[ClassMetrics]  # in class order
    confusion: list[list[int]]  # counts; rows: the true class, columns: the predicted one


class ModelFile(_Model):
    """A trained model saved as a file (``hpsearch.trained``): made by the worker, sent to the
    server before the finish that names it (checked against its sha256), then kept in the
    study's artifact store under ``artifact_id``."""

    kind: Literal["final", "ensemble", "member", "checkpoint"]
    filename: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=2**40)
    artifact_id: str | None = Field(None, max_length=64)  # set once the server keeps it


class EnsembleMember(_Model):
    params: dict[str, Finite]
    val_accuracy: Finite
    epoch: int | None = None  # snapshots: the epoch of the final run whose weights it is
    model: ModelFile | None = None  # the member alone, as one file (a kept ensemble's)


class Ensemble(_Model):
    """The average of k models' probabilities: kept (and tested) only if it raised the
    validation objective over the chosen model alone."""

    k: int
    members: list[EnsembleMember]
    test_accuracy: MaybeFinite = None  # None: not kept, so never tested
    trial_epochs: Finite
    model: ModelFile | None = None  # one file averaging the members (absent: not saved)
    kind: Literal["top_k", "snapshots"] = "top_k"
    kept: bool = True  # stored before the validation check: kept
    val_value: MaybeFinite = None  # the ensemble's validation objective
    val_gain: MaybeFinite = None  # over the chosen model alone


class FinalResult(_Model):
    params: dict[str, Finite]  # by spec path: train.lr, train.weight_decay, ...
    history: list[EpochRecord]
    best_epoch: int
    weights_epoch: int
    val_accuracy: Finite
    train_accuracy: Finite
    test_accuracy: Finite
    test_loss: Finite
    tta_flip: bool  # the test accuracy is of flip TTA (tta == "flip")
    diagnosis: Diagnosis
    trial_epochs: Finite
    seconds: Finite
    ensemble: Ensemble | None = None
    # absent from results stored before objectives and test metrics were kept
    objective: Objective | None = None  # the spec's search.objective
    val_value: MaybeFinite = None  # the objective on validation, of the weights kept
    test_metrics: SplitMetrics | None = None  # of the chosen model (not the ensemble)
    model: ModelFile | None = None  # the chosen model (absent: not saved, or stored before)
    tta: Literal["none", "flip", "crops"] = "none"  # the views the test metrics average
    tta_gain: MaybeFinite = None  # validation objective with the asked TTA minus without it


class Candidate(_Model):
    params: dict[str, Finite]
    val_accuracy: Finite
    epochs: int
    history: list[EpochRecord]
    val_value: MaybeFinite = None  # the objective on validation (absent: stored before it)


class TargetedResult(_Model):
    """One more stage when the diagnosis calls for it; kept only if validation improves."""

    action: str
    ran: bool
    reason: str
    improved: bool
    candidates: list[Candidate]
    trial_epochs: Finite
    seconds: Finite
    baseline_val_accuracy: MaybeFinite = None
    chosen: Candidate | None = None
    baseline_val_value: MaybeFinite = None  # the final training's objective on validation


class FinalItemResult(_Model):
    """What a final item produces: the final training, and the targeted stage if any."""

    kind: Literal["final"] = "final"
    final: FinalResult
    targeted: TargetedResult | None = None
