"""The shapes of every request and answer between the server and its clients, defined here only:
the API's routes declare them (``/openapi.json`` documents them under these names) and
:mod:`hpsearch.client` returns them, so a worker, the CLI and the server read one model of each.

The trial protocol (workers): :class:`ClaimRequest` answered by a :class:`LeaseRead` (the one
form of a lease, from the scheduler to the worker), :class:`ReportRequest` by a
:class:`ReportAnswer`, :class:`HeartbeatRequest` by a :class:`HeartbeatAnswer`,
:class:`FinishRequest` by a :class:`FinishAnswer`. Study management (people, the CLI):
:class:`StudyCreated`, :class:`StudyListItem`, :class:`StudyRead` (a :class:`StudySummary` with
the study's id and spec), pages of trials, workers, datasets. Every error is an
:class:`ErrorBody`.

Pydantic only (no web framework, no database, no PyTorch): a worker imports this to read what
the server sends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hpsearch.results import Diagnosis, Kind, Outcome, StageResult, TrialCounts, WorkItem
from hpsearch.spec import Objective, StudySpec, read_stored_spec

Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]  # no bools, no strings
WorkerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="the worker's id; calls on a work item must come from the worker that "
        "claimed it (another worker's call is 409)",
    ),
]
# A parameter's value as Optuna gives it back: a float or an integer, or a categorical choice
ParamValue = bool | int | float | str | None


class _Body(BaseModel):
    # NaN and infinities are refused in every float field (no database stores them as JSON)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- the trial protocol --------------------------------------------------------------------------


class ClaimRequest(_Body):
    worker: WorkerId
    host: str | None = Field(None, max_length=256)
    devices: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=64)
    # the module prefixes this worker may import for a ``python:`` model (its --allow-module);
    # it is handed no item of a study whose model it may not build. Absent (a worker older than
    # this field): none
    modules: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=64
    )


class HeartbeatRequest(_Body):
    worker: WorkerId


class ReportRequest(_Body):
    worker: WorkerId
    epoch: int = Field(ge=1, le=100_000)
    metrics: dict[str, Finite]

    @field_validator("metrics")
    @classmethod
    def _has_val_accuracy(cls, metrics: dict[str, float]) -> dict[str, float]:
        if "val_accuracy" not in metrics:
            raise ValueError("must include val_accuracy")
        if not 0.0 <= metrics["val_accuracy"] <= 1.0:
            raise ValueError("val_accuracy must lie in [0, 1]")
        return metrics


class FinishRequest(Outcome):
    """A work item's outcome (``hpsearch.results.Outcome``: a single stage's result typed by its
    ``kind``), and the worker that delivers it."""

    worker: WorkerId

    @property
    def outcome(self) -> Outcome:
        return Outcome.model_validate(self.model_dump(exclude={"worker"}))


class LeaseRead(_Body):
    """A work item handed to a worker, under a lease it renews with every report and heartbeat."""

    id: int = Field(description="the work item's id in the calls that follow")
    lease_seconds: float
    item: WorkItem


class ReportAnswer(BaseModel):
    prune: bool = Field(description="stop the trial now: pruned, or its study stopped")


class HeartbeatAnswer(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    go_on: bool = Field(alias="continue", description="false: give the item up (its study stopped)")


class FinishAnswer(BaseModel):
    applied: bool = Field(description="false: a repeated finish, acknowledged, not applied again")


class FileReceived(BaseModel):
    bytes: int = Field(description="the size of the file kept")


# --- studies -------------------------------------------------------------------------------------


class StudyCreated(BaseModel):
    id: int
    name: str
    state: str


class StudyListItem(BaseModel):
    id: int
    name: str
    state: str  # running / stopped / completed / failed
    stage: str | None  # the stage in progress, for a running study
    trials: dict[str, int]  # counts by state: complete, pruned, failed, running, ...
    best_val_accuracy: float | None
    objective: str = "accuracy"  # the spec's search.objective, what the search maximises
    best_value: float | None = None  # the best objective on validation so far
    created_at: str
    updated_at: str


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageView(_View):
    """One stage: where it stands, what it spent, and its result (None until it has one)."""

    name: str  # sanity, range_test, coarse, refine-1, ..., final, targeted
    status: str  # pending, running, passed, failed, skipped, completed
    started_at: str | None = None
    finished_at: str | None = None
    trial_epochs: float = 0.0
    seconds: float = 0.0
    counts: TrialCounts | None = None  # a search round's trials by state, as they stand now
    result: StageResult | None = None


class BestView(_View):
    params: dict[str, float]  # by Optuna's parameter names (lr, weight_decay, ...)
    # before the final training, None when the objective is another metric (trials are
    # ranked by their objective only)
    val_accuracy: float | None
    test_accuracy: float | None  # once the final training has been evaluated
    objective: Objective = "accuracy"  # the spec's search.objective, what the search maximises
    # the objective on validation: the final training's, or the best trial's
    value: float | None = None


class Compute(_View):
    trial_epochs: float
    seconds: float


class StudySummary(_View):
    study: str
    state: str  # running, stopped, completed, failed
    message: str | None  # why it failed
    stages: list[StageView]
    best: BestView
    warnings: list[str]  # e.g. the best value sits on the edge of its searched range
    diagnosis: Diagnosis | None
    compute: dict[str, Compute]  # by stage

    def json_data(self) -> dict[str, Any]:
        """The summary as JSON data (what ``hpsearch run --json`` prints)."""
        return self.model_dump(mode="json")


class StudyRead(StudySummary):
    """A study: its id and spec, and its summary (every stage with its typed result)."""

    id: int
    spec: StudySpec

    @classmethod
    def from_json(cls, data: object) -> StudyRead:
        """A study as the server sent it. Its spec, stored by an earlier version, may fail
        today's rules: it is read as it is then (``hpsearch.spec.read_stored_spec``)."""
        try:
            return cls.model_validate(data)
        except ValidationError:
            if not isinstance(data, dict) or "spec" not in data:
                raise
            spec, _ = read_stored_spec(data["spec"], "the server's study")
            return cls.model_validate(data | {"spec": spec})  # an instance is not checked again


# --- trials --------------------------------------------------------------------------------------


class TrialView(BaseModel):
    """A search trial, as a page lists it."""

    number: int
    stage: str  # coarse, refine-1, ...
    state: str  # complete, pruned, failed, running, waiting
    value: float | None  # the validation objective
    params: dict[str, ParamValue]  # by Optuna's parameter names
    epochs: int  # reported so far
    duration: float | None  # seconds, once finished
    started_at: str | None
    worker: str | None
    reason: str | None  # a failed trial's
    retry_of: int | None = None  # the trial whose parameters this one retries
    seeded: bool = False  # a configuration the recipe chose, not the sampler


class TrialDetail(TrialView):
    """One trial in full: every epoch's metrics, its intermediate values, its attributes."""

    distributions: dict[str, str]
    intermediate_values: dict[str, float | None]
    history: list[dict[str, Any]]  # epochs as recorded (hpsearch.results.EpochRecord)
    completed_at: str | None
    user_attrs: dict[str, Any]  # Optuna's user attributes, as stored


class TrialPage(BaseModel):
    total: int  # trials that match, on every page
    trials: list[TrialView]


class TrialPoints(BaseModel):
    """Every search trial as a point, in columns (for scatter plots of tens of thousands): one
    column per parameter besides these, named by it."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, list[ParamValue]] = Field(init=False)

    stage: list[str] = Field(default_factory=list)
    number: list[int] = Field(default_factory=list)
    state: list[str] = Field(default_factory=list)
    value: list[float | None] = Field(default_factory=list)


class Figure(BaseModel):
    """A plotly figure as JSON (``plotly.io.from_json`` reads it back)."""

    model_config = ConfigDict(extra="allow")

    data: list[dict[str, Any]]
    layout: dict[str, Any]


# --- workers and datasets ------------------------------------------------------------------------


class CurrentItem(BaseModel):
    id: int  # its lease
    study_id: int
    study: str
    stage: str
    kind: Kind
    trial_number: int | None
    params: dict[str, float]


class WorkerRead(BaseModel):
    id: str
    host: str | None
    devices: list[str]
    first_seen: str
    last_seen: str
    alive: bool  # heard from lately
    items_done: int
    current: CurrentItem | None  # the item it holds now


class DatasetRead(BaseModel):
    sha256: str
    kind: Literal["folder", "arrays", "model"]  # model: the weights a model.init_from names
    name: str  # where it was pushed from
    bytes: int
    uploaded_at: str
    studies: list[str]  # the studies whose spec names it


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    studies: int  # how many the database holds


# --- errors --------------------------------------------------------------------------------------


class Problem(BaseModel):
    field: str = Field(description="where: a dotted path such as query.limit or train.lr")
    message: str


class ErrorBody(BaseModel):
    """The body of every error the API answers (4xx and 5xx)."""

    detail: str = Field(description="what was wrong, in words")
    problems: list[Problem] | None = Field(None, description="invalid input: each fault by field")
