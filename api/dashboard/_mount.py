"""Wiring the dashboard into the app: page routes, static files, optuna-dashboard at /optuna."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.dashboard._optuna import OptunaDashboard
from api.dashboard._pages import router

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data"


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/vendor/plotly", StaticFiles(directory=PLOTLY_JS), name="plotly")
    app.mount("/optuna", OptunaDashboard(app), name="optuna")
