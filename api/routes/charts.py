"""Data for charts: every trial as a point, and Optuna's own figures of a study."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import AdminDep, MachineDep, StudyDep
from api.figures import ChartKind, Charts
from api.schemas import error_responses
from hpsearch.protocol import Figure, TrialPoints
from hpsearch.views import trial_points

router = APIRouter(
    prefix="/api/studies",
    tags=["charts"],
    dependencies=[AdminDep],
    responses=error_responses(401, 403, 404, 503),
)


@router.get("/{study}/points", response_model=TrialPoints)
def points(record: StudyDep, machine: MachineDep) -> TrialPoints:
    """Every search trial in columns: stage, number, state, value, and each parameter."""
    return trial_points(machine, record)


@router.get("/{study}/charts/{kind}", response_model=Figure)
def chart(
    record: StudyDep,
    kind: ChartKind,
    request: Request,
    machine: MachineDep,
    stage: Annotated[str | None, Query(pattern=r"^(coarse|refine-\d+)$")] = None,
) -> Figure:
    """A plotly figure (JSON) from Optuna's visualization module: ``history`` (every round),
    ``importance`` (fANOVA) or ``intermediate`` (validation accuracy per epoch)."""
    charts: Charts = request.app.state.charts
    return charts.figure(record, kind, stage)
