"""The worker protocol: claim a work item, report each epoch, heartbeat, finish."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import SchedulerDep, WorkerDep
from api.schemas import ItemId
from hpsearch.recipe import Outcome

router = APIRouter(prefix="/api/trials", tags=["worker protocol"], dependencies=[WorkerDep])

Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimRequest(_Body):
    worker: str = Field(min_length=1, max_length=128, description="the worker's id")
    host: str | None = Field(None, max_length=256)
    devices: list[str] = Field(default_factory=list, max_length=64)


class ReportRequest(_Body):
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


class FinishRequest(_Body):
    state: Literal["passed", "failed", "completed", "pruned"]
    value: Finite | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    history: list[dict[str, Any]] = Field(default_factory=list)
    reason: str | None = Field(None, max_length=4000)
    retryable: bool = False
    trial_epochs: float = Field(0.0, ge=0)
    seconds: float = Field(0.0, ge=0)


@router.post("/claim", responses={204: {"description": "nothing to do right now"}})
def claim(body: ClaimRequest, scheduler: SchedulerDep) -> Any:
    """The next work item under a lease, or 204 when there is nothing to do."""
    lease = scheduler.claim(body.worker, body.host, body.devices)
    if lease is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return lease.as_dict()


@router.post("/{item_id}/report")
def report(item_id: ItemId, body: ReportRequest, scheduler: SchedulerDep) -> dict[str, bool]:
    """Record an epoch's metrics; the answer says whether to stop (prune) now."""
    return {"prune": scheduler.report(item_id, body.epoch, body.metrics)}


@router.post("/{item_id}/heartbeat")
def heartbeat(item_id: ItemId, scheduler: SchedulerDep) -> dict[str, bool]:
    """Renew the lease; ``continue: false`` means give the item up."""
    return {"continue": scheduler.heartbeat(item_id)}


@router.post("/{item_id}/finish")
def finish(item_id: ItemId, body: FinishRequest, scheduler: SchedulerDep) -> dict[str, bool]:
    """Deliver the outcome; a repeated finish is acknowledged and never applied twice."""
    return {"applied": scheduler.finish(item_id, Outcome(**body.model_dump()))}
