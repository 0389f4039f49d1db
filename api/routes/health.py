"""Liveness: is the server up and its database reachable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import StoreDep
from hpsearch import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(store: StoreDep) -> dict[str, Any]:
    """Up, with the number of studies the database holds."""
    return {"status": "ok", "version": __version__, "studies": store.count_studies()}
