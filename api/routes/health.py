"""Liveness and monitoring: is the server up and its database reachable; Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import StoreDep, WorkerDep
from api.metrics import CONTENT_TYPE, Metrics
from hpsearch import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(store: StoreDep) -> dict[str, Any]:
    """Up, with the number of studies the database holds."""
    return {"status": "ok", "version": __version__, "studies": store.count_studies()}


@router.get("/metrics", dependencies=[WorkerDep], response_class=Response)  # any token
def metrics(request: Request) -> Response:
    """Prometheus text format: trials, studies, live workers, active leases, request latency."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
