"""Data for charts: every trial as a point, and Optuna's own figures of a study."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.charts import ChartKind, Charts
from api.deps import AdminDep, MachineDep
from api.schemas import StudyId
from hpsearch.recipe import trial_points

router = APIRouter(prefix="/api/studies", tags=["charts"], dependencies=[AdminDep])


@router.get("/{study_id}/points")
def points(study_id: StudyId, machine: MachineDep) -> dict[str, Any]:
    """Every search trial in columns: stage, number, state, value, and each parameter."""
    return trial_points(machine, machine.store.get_study(study_id))


@router.get("/{study_id}/charts/{kind}")
def chart(
    study_id: StudyId,
    kind: ChartKind,
    request: Request,
    machine: MachineDep,
    stage: Annotated[str | None, Query(pattern=r"^(coarse|refine-\d+)$")] = None,
) -> dict[str, Any]:
    """A plotly figure (JSON) from Optuna's visualization module: ``history`` (every round),
    ``importance`` (fANOVA) or ``intermediate`` (validation accuracy per epoch)."""
    charts: Charts = request.app.state.charts
    return charts.figure(machine.store.get_study(study_id), kind, stage)
