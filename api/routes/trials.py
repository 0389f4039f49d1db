"""The worker protocol: claim a work item, report each epoch, heartbeat, send the model files
it made, finish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from api.deps import SchedulerDep, SettingsDep, WorkerDep
from api.schemas import (
    ClaimRequest,
    FileReceived,
    FinishAnswer,
    FinishRequest,
    HeartbeatAnswer,
    HeartbeatRequest,
    ItemId,
    LeaseRead,
    ReportAnswer,
    ReportRequest,
    binary_body,
    error_responses,
)
from api.uploads import receive_body
from hpsearch.errors import ArtifactSpaceError

router = APIRouter(
    prefix="/api/trials",
    tags=["worker protocol"],
    dependencies=[WorkerDep],
    responses=error_responses(400, 401, 403, 413, 503),  # and 422: every route takes a body
)
# a call on a work item: 404 for an item never handed out, 409 for another worker's item
_ITEM = error_responses(404, 409)

SHA256 = r"^[0-9a-f]{64}$"
WorkerQuery = Annotated[str, Query(min_length=1, max_length=128, description="the worker's id")]


@router.post(
    "/claim",
    response_model=LeaseRead,
    responses={204: {"description": "nothing to do right now"}},
)
def claim(body: ClaimRequest, scheduler: SchedulerDep) -> LeaseRead | Response:
    """The next work item under a lease, or 204 when there is nothing to do."""
    lease = scheduler.claim(body.worker, body.host, body.devices, modules=body.modules)
    return Response(status_code=status.HTTP_204_NO_CONTENT) if lease is None else lease


@router.post("/{item_id}/report", response_model=ReportAnswer, responses=_ITEM)
def report(item_id: ItemId, body: ReportRequest, scheduler: SchedulerDep) -> ReportAnswer:
    """Record an epoch's metrics; the answer says whether to stop (prune) now."""
    return ReportAnswer(prune=scheduler.report(item_id, body.worker, body.epoch, body.metrics))


@router.post("/{item_id}/heartbeat", response_model=HeartbeatAnswer, responses=_ITEM)
def heartbeat(item_id: ItemId, body: HeartbeatRequest, scheduler: SchedulerDep) -> HeartbeatAnswer:
    """Renew the lease; ``continue: false`` means give the item up (its study stopped)."""
    return HeartbeatAnswer(go_on=scheduler.heartbeat(item_id, body.worker))


@router.post("/{item_id}/finish", response_model=FinishAnswer, responses=_ITEM)
def finish(item_id: ItemId, body: FinishRequest, scheduler: SchedulerDep) -> FinishAnswer:
    """Deliver the outcome; a repeated finish is acknowledged and never applied twice."""
    return FinishAnswer(applied=scheduler.finish(item_id, body.worker, body.outcome))


@router.put(
    "/{item_id}/files/{sha256}",
    status_code=status.HTTP_201_CREATED,
    response_model=FileReceived,
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
) -> FileReceived:
    """Receive a model file of the caller's active work item, streamed and checked against its
    sha256 (422 if it differs: nothing is kept); its finish may then name it. Sending the same
    file again replaces it."""
    artifacts = await run_in_threadpool(scheduler.receiving, item_id, worker)
    try:
        dest = artifacts.received(sha256)
        size = await receive_body(request, dest, sha256, settings.max_artifact_bytes, "model file")
    except OSError as exc:  # a full disk: the item fails with the reason, the worker goes on
        raise ArtifactSpaceError(f"the server cannot keep the model file: {exc.strerror}") from None
    return FileReceived(bytes=size)


@router.put(
    "/{item_id}/checkpoint",
    status_code=status.HTTP_201_CREATED,
    response_model=FileReceived,
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
) -> FileReceived:
    """Keep a checkpoint of the caller's active trial, checked against its sha256 as it
    arrives; it replaces the one before. If the worker goes away, the trial's retry goes on
    from it (at epoch ``epoch + 1``)."""
    artifacts = await run_in_threadpool(scheduler.receiving, item_id, worker)
    try:
        size = await receive_body(
            request, artifacts.received(sha256), sha256, settings.max_artifact_bytes, "checkpoint"
        )
    except OSError as exc:  # a full disk: the trial trains on, without a checkpoint
        raise ArtifactSpaceError(f"the server cannot keep the checkpoint: {exc.strerror}") from None
    await run_in_threadpool(scheduler.keep_checkpoint, item_id, worker, epoch, sha256)
    return FileReceived(bytes=size)


@router.get(
    "/{item_id}/checkpoint",
    response_class=FileResponse,
    response_model=None,  # a file, streamed: no JSON body to declare
    responses={200: {"content": {"application/octet-stream": {}}}, **_ITEM},
)
def get_checkpoint(item_id: ItemId, worker: WorkerQuery, scheduler: SchedulerDep) -> FileResponse:
    """The checkpoint a retried trial goes on from (its item's ``resume_epoch``); 404 when it
    has none. Its sha256 is in the ``X-Sha256`` header."""
    path, sha256 = scheduler.checkpoint_to_resume(item_id, worker)
    return FileResponse(path, headers={"X-Sha256": sha256})
