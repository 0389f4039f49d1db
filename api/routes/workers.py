"""The workers the server has heard from."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, SchedulerDep
from api.schemas import WorkerRead, error_responses

router = APIRouter(
    prefix="/api/workers",
    tags=["workers"],
    dependencies=[AdminDep],
    responses=error_responses(401, 403, 503),
)


@router.get("", response_model=list[WorkerRead])
def list_workers(scheduler: SchedulerDep, alive: bool = False) -> list[WorkerRead]:
    """Every worker (``alive=true``: only those heard from lately): host, devices, when last
    seen, items done, and the item it holds now."""
    return scheduler.workers.list(alive_only=alive)
