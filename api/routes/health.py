"""Liveness and monitoring: is the server up and its database reachable; Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import StoreDep, WorkerDep
from api.metrics import CONTENT_TYPE, Metrics
from api.schemas import error_responses
from hpsearch import __version__
from hpsearch.protocol import Health

router = APIRouter(tags=["health"], responses=error_responses(503))  # both read the database
_PROMETHEUS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}


@router.get("/healthz", response_model=Health)
def healthz(store: StoreDep) -> Health:
    """Up, with the number of studies the database holds."""
    return Health(status="ok", version=__version__, studies=store.count_studies())


@router.get(
    "/metrics",
    dependencies=[WorkerDep],  # any token
    response_class=Response,
    response_model=None,  # Prometheus text, not JSON
    responses=_PROMETHEUS | error_responses(401),
)
def metrics(request: Request) -> Response:
    """Prometheus text format: trials, studies, live workers, active leases, request latency."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
