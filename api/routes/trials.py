"""The worker protocol: claim a work item, report each epoch, heartbeat, send the model files
it made, finish."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import SchedulerDep, SettingsDep, WorkerDep
from api.schemas import ItemId, binary_body, error_responses
from api.uploads import receive_body
from hpsearch.errors import ArtifactError
from hpsearch.results import Outcome, WorkItem

router = APIRouter(
    prefix="/api/trials",
    tags=["worker protocol"],
    dependencies=[WorkerDep],
    responses=error_responses(400, 401, 403, 413, 503),  # and 422: every route takes a body
)
# a call on a work item: 404 for an item never handed out, 409 for another worker's item
_ITEM = error_responses(404, 409)

Finite = Annotated[float, Field(allow_inf_nan=False)]


WorkerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="the worker's id; calls on a work item must come from the worker that "
        "claimed it (another worker's call is 409)",
    ),
]


SHA256 = r"^[0-9a-f]{64}$"
WorkerQuery = Annotated[str, Query(min_length=1, max_length=128, description="the worker's id")]


class _Body(BaseModel):
    # NaN and infinities are refused in every float field (no database stores them as JSON)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ClaimRequest(_Body):
    worker: WorkerId
    host: str | None = Field(None, max_length=256)
    devices: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=64)


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


class LeaseRead(_Body):
    """A work item handed to a worker, under a lease it renews with every report and heartbeat."""

    id: int = Field(description="the work item's id in the calls that follow")
    lease_seconds: float
    item: WorkItem


@router.post(
    "/claim",
    response_model=LeaseRead,
    responses={204: {"description": "nothing to do right now"}},
)
def claim(body: ClaimRequest, scheduler: SchedulerDep) -> Any:
    """The next work item under a lease, or 204 when there is nothing to do."""
    lease = scheduler.claim(body.worker, body.host, body.devices)
    if lease is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return LeaseRead(id=lease.id, lease_seconds=lease.lease_seconds, item=lease.item)


@router.post("/{item_id}/report", responses=_ITEM)
def report(item_id: ItemId, body: ReportRequest, scheduler: SchedulerDep) -> dict[str, bool]:
    """Record an epoch's metrics; the answer says whether to stop (prune) now."""
    return {"prune": scheduler.report(item_id, body.worker, body.epoch, body.metrics)}


@router.post("/{item_id}/heartbeat", responses=_ITEM)
def heartbeat(item_id: ItemId, body: HeartbeatRequest, scheduler: SchedulerDep) -> dict[str, bool]:
    """Renew the lease; ``continue: false`` means give the item up (its study stopped)."""
    return {"continue": scheduler.heartbeat(item_id, body.worker)}


@router.post("/{item_id}/finish", responses=_ITEM)
def finish(item_id: ItemId, body: FinishRequest, scheduler: SchedulerDep) -> dict[str, bool]:
    """Deliver the outcome; a repeated finish is acknowledged and never applied twice."""
    outcome = Outcome.model_validate(body.model_dump(exclude={"worker"}))
    return {"applied": scheduler.finish(item_id, body.worker, outcome)}


@router.put(
    "/{item_id}/files/{sha256}",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(404, 409, 413, 422, 507),
    openapi_extra=binary_body(
        "a model file the item made (hpsearch.trained), as named by its finish"
    ),
)
async def upload_file(
    item_id: ItemId,
    sha256: Annotated[str, Path(pattern=SHA256, description="the file's sha256, hex")],
    worker: WorkerQuery,
    request: Request,
    scheduler: SchedulerDep,
    settings: SettingsDep,
) -> dict[str, int]:
    """Receive a model file of the caller's active work item, streamed and checked against its
    sha256 (422 if it differs: nothing is kept); its finish may then name it. Sending the same
    file again replaces it."""
    artifacts = await run_in_threadpool(scheduler.receiving, item_id, worker)
    try:
        dest = artifacts.received(sha256)
        size = await receive_body(request, dest, sha256, settings.max_artifact_bytes, "model file")
    except OSError as exc:  # a full disk: the item fails with the reason, the worker goes on
        raise ArtifactError(f"the server cannot keep the model file: {exc}", 507) from None
    return {"bytes": size}


@router.put(
    "/{item_id}/checkpoint",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(404, 409, 413, 422, 507),
    openapi_extra=binary_body("a checkpoint of the trial's run (hpsearch.training)"),
)
async def upload_checkpoint(
    item_id: ItemId,
    worker: WorkerQuery,
    epoch: Annotated[int, Query(ge=1, le=100_000, description="epochs the checkpoint holds")],
    sha256: Annotated[str, Query(pattern=SHA256, description="the file's sha256, hex")],
    request: Request,
    scheduler: SchedulerDep,
    settings: SettingsDep,
) -> dict[str, int]:
    """Keep a checkpoint of the caller's active trial, checked against its sha256 as it
    arrives; it replaces the one before. If the worker goes away, the trial's retry goes on
    from it (at epoch ``epoch + 1``)."""
    artifacts = await run_in_threadpool(scheduler.receiving, item_id, worker)
    try:
        size = await receive_body(
            request, artifacts.received(sha256), sha256, settings.max_artifact_bytes, "checkpoint"
        )
    except OSError as exc:  # a full disk: the trial trains on, without a checkpoint
        raise ArtifactError(f"the server cannot keep the checkpoint: {exc}", 507) from None
    await run_in_threadpool(scheduler.keep_checkpoint, item_id, worker, epoch, sha256)
    return {"bytes": size}


@router.get(
    "/{item_id}/checkpoint",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ITEM},
)
def get_checkpoint(item_id: ItemId, worker: WorkerQuery, scheduler: SchedulerDep) -> FileResponse:
    """The checkpoint a retried trial goes on from (its item's ``resume_epoch``); 404 when it
    has none. Its sha256 is in the ``X-Sha256`` header."""
    path, sha256 = scheduler.checkpoint_to_resume(item_id, worker)
    return FileResponse(path, headers={"X-Sha256": sha256})
