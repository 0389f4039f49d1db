"""What work items are and what they produce: one typed shape for each, defined here only.

A :class:`WorkItem` carries everything needed to do one piece of a study's work (the full spec,
with a trial's parameters applied), so whoever does it needs no database; an :class:`Outcome` is
what comes back. Each recipe stage's result has one model: the stage that makes it returns it,
the stage machine reads it, the server checks a worker's outcome against it (a malformed one is
refused naming the field), stores it, and serves it (``GET /api/studies/{id}`` documents every
field), the simulated worker fakes it and the dashboard draws it.

Pydantic only: the server, the CLI and the simulated worker import this without PyTorch.
Results stored by earlier versions are read with :func:`stored_result`, which never fails.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from hpsearch.results._base import (
    DiagnosisVerdict,
    EpochRecord,
    Finite,
    Kind,
    MaybeFinite,
    OutcomeState,
    Verdict,
    _Model,
)
from hpsearch.results._final import (
    Candidate,
    ClassMetrics,
    Diagnosis,
    Ensemble,
    EnsembleMember,
    FinalItemResult,
    FinalResult,
    ModelFile,
    SplitMetrics,
    TargetedResult,
)
from hpsearch.spec import SearchRange, StudySpec, read_stored_spec

# --- stage 1: sanity checks ----------------------------------------------------------------------


class _Check(_Model):
    verdict: Verdict
    passed: bool
    advice: str  # what to do about a failure, in words


class InitialLossCheck(_Check):
    check: Literal["initial_loss"] = "initial_loss"
    expected: Finite  # ln(C)
    classes: int
    measured: MaybeFinite = None  # absent when the head does not fit the classes
    relative_error: MaybeFinite = None
    tolerance: MaybeFinite = None


class OverfitCheck(_Check):
    check: Literal["overfit"] = "overfit"
    lr: Finite
    images: int
    steps: int
    curve: list[MaybeFinite]  # the training loss of each step
    train_accuracy: Finite
    pass_accuracy: Finite
    first_loss: MaybeFinite = None
    last_loss: MaybeFinite = None
    val_accuracy: MaybeFinite = None
    chance: MaybeFinite = None
    val_z: MaybeFinite = None


class SanityResult(_Model):
    """The sanity checks: the initial loss against ln(C), and overfitting a small sample."""

    kind: Literal["sanity"] = "sanity"
    passed: bool
    verdict: Verdict  # the first failed check's, or "passed"
    advice: str
    checks: list[Annotated[InitialLossCheck | OverfitCheck, Field(discriminator="check")]]


# --- stage 2: the learning-rate range test -------------------------------------------------------


class LrCurve(_Model):
    lr: list[Finite]
    loss: list[Finite]
    smoothed: list[Finite]


class LrRange(_Model):
    low: Finite = Field(gt=0)
    high: Finite = Field(gt=0)


class LrCheck(_Model):
    """A fresh model trained at the suggested LR: does its loss fall?"""

    lr: Finite
    iterations: int
    loss_before: MaybeFinite
    loss_after: MaybeFinite
    required_drop: Finite
    passed: bool
    curve: list[MaybeFinite]


class RangeTestResult(_Model):
    kind: Literal["range_test"] = "range_test"
    passed: bool
    verdict: str
    curve: LrCurve
    stopped: str  # why the sweep ended
    lr_steepest: Finite
    lr_min_loss: Finite
    suggested_lr: Finite
    range: LrRange  # handed to the coarse stage
    check: LrCheck


# --- stages 3 and 4: search rounds ---------------------------------------------------------------


class TrialSummary(_Model):
    number: int
    value: MaybeFinite
    params: dict[str, Finite]


class TrialCounts(_Model):
    """Trials by state; a failed trial whose parameters were retried counts as ``retried``."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    retried: int = 0
    running: int = 0
    waiting: int = 0


class SearchRound(_Model):
    """A coarse or refine round: its setup when it starts, its summary added when it ends."""

    ranges: dict[str, SearchRange]
    epochs: int
    trials: int
    previous_ranges: dict[str, SearchRange] | None = None  # refine: what was narrowed
    narrowed_from: list[int] | None = None  # refine: the trials the ranges span
    best_so_far: TrialSummary | None = None  # refine: the best before this round
    counts: TrialCounts | None = None  # at its end
    best: TrialSummary | None = None
    budget_exhausted: bool | None = None
    gain: MaybeFinite = None  # refine: best validation objective gained by this round
    # refine: the trials of the round before that it continues (their numbers there)
    continued: list[int] = Field(default_factory=list)

    @property
    def extended(self) -> dict[str, Literal["lower", "upper"]]:
        """Refine: the sides of the round before's ranges this round searched past (where the
        best so far lay on that edge), by parameter."""
        sides: dict[str, Literal["lower", "upper"]] = {}
        for name, r in self.ranges.items():
            before = (self.previous_ranges or {}).get(name)
            if before is not None and r.high > before.high:
                sides[name] = "upper"
            elif before is not None and r.low < before.low:
                sides[name] = "lower"
        return sides


class StageNote(_Model):
    """A stage with no result of its kind: skipped, or failed before it had one, and why."""

    reason: str


ItemResult = Annotated[
    SanityResult | RangeTestResult | FinalItemResult, Field(discriminator="kind")
]
StageResult = (
    SanityResult | RangeTestResult | SearchRound | FinalResult | TargetedResult | StageNote
)


# --- work items and their outcomes ---------------------------------------------------------------


class WorkItem(_Model):
    """One piece of a study's work, with everything needed to do it."""

    study_id: int
    study: str
    stage: str
    kind: Kind
    spec: StudySpec  # the full study spec for this item, parameters applied
    params: dict[str, float] = Field(default_factory=dict)  # trial: by Optuna parameter name
    trial_id: int | None = None
    trial_number: int | None = None
    configs: list[dict[str, float]] = Field(default_factory=list)  # final: spec paths, best first
    epoch_budget: float | None = None  # final: trial-epochs left for a targeted stage
    # a retried trial: the epoch of the checkpoint it goes on from (it trains the next one first;
    # GET /api/trials/{id}/checkpoint serves it)
    resume_epoch: int | None = Field(None, ge=1)
    # a trial a later round may continue: it keeps its last weights as a checkpoint
    keep_final: bool = False
    # a trial that continues one of the round before (its number there) from its checkpoint (at
    # resume_epoch), to this round's epochs
    continues: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItem:
        return cls.model_validate(data)


class Outcome(_Model):
    """What doing a work item came to; a worker's finish is this and its id."""

    state: OutcomeState
    value: MaybeFinite = Field(None, ge=0.0, le=1.0)  # a trial's best val objective
    result: ItemResult | None = None  # a single stage's result (as ``kind`` says)
    history: list[EpochRecord] = Field(default_factory=list, max_length=100_000)  # a trial's
    reason: str | None = Field(None, max_length=4000)  # failed: why, in words
    retryable: bool = False  # failed for a reason that is not the configuration's fault
    trial_epochs: Finite = Field(0.0, ge=0)
    seconds: Finite = Field(0.0, ge=0)

    def files(self) -> list[ModelFile]:
        """The model files this outcome names: each must reach the server before its finish."""
        result = self.result
        if not isinstance(result, FinalItemResult):
            return []
        final, ensemble = result.final, result.final.ensemble
        found = [final.model]
        if ensemble is not None:
            found += [ensemble.model, *(member.model for member in ensemble.members)]
        return [f for f in found if f is not None]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls.model_validate(data)


# --- reading what earlier versions stored --------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def stored_result(model: type[M], data: dict[str, Any]) -> M | StageNote:
    """A stored stage result as ``model``; a row that does not fit (written by an earlier
    version, or by hand) reads as a note saying so, never as an error: a study stays readable."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        if set(data) == {"reason"} and isinstance(data["reason"], str):
            return StageNote(reason=data["reason"])
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return StageNote(
            reason=f"a stored result this version cannot read ({where}: {first['msg']})"
        )


def stored_item(data: dict[str, Any]) -> WorkItem:
    """A work item kept with its lease. Its spec, written by an earlier version, may fail
    today's rules: it is read as it is then (``hpsearch.spec.read_stored_spec``), and whoever
    would run it refuses it with the problems found."""
    try:
        return WorkItem.model_validate(data)
    except ValidationError:
        if "spec" not in data:
            raise
        spec, _ = read_stored_spec(data["spec"], "a stored work item")
        return WorkItem.model_validate(data | {"spec": spec})  # an instance is not checked again


def stored_outcome(data: dict[str, Any], kind: str) -> Outcome:
    """An outcome kept with its lease, as stored by this version or an earlier one (whose stage
    results had no ``kind``, and whose trials had an empty result)."""
    data = dict(data)
    result = data.get("result")
    if not result:
        data["result"] = None
    elif isinstance(result, dict) and "kind" not in result:
        data["result"] = result | {"kind": kind}
    try:
        return Outcome.model_validate(data)
    except ValidationError:  # recorded as a failure its item may be retried for
        reason = "an outcome stored by an earlier version that this one cannot read"
        return Outcome(state="failed", reason=reason, retryable=True)


__all__ = [
    "Candidate",
    "ClassMetrics",
    "Diagnosis",
    "DiagnosisVerdict",
    "Ensemble",
    "EnsembleMember",
    "EpochRecord",
    "FinalItemResult",
    "FinalResult",
    "Finite",
    "InitialLossCheck",
    "ItemResult",
    "Kind",
    "LrCheck",
    "LrCurve",
    "LrRange",
    "MaybeFinite",
    "ModelFile",
    "Outcome",
    "OutcomeState",
    "OverfitCheck",
    "RangeTestResult",
    "SanityResult",
    "SearchRound",
    "SplitMetrics",
    "StageNote",
    "StageResult",
    "TargetedResult",
    "TrialCounts",
    "TrialSummary",
    "Verdict",
    "WorkItem",
    "stored_item",
    "stored_outcome",
    "stored_result",
]
