"""Request dependencies: the store, the stage machine, and token checks."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.settings import Settings
from hpsearch.recipe import StageMachine
from hpsearch.scheduling import Scheduler
from hpsearch.storage import Store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


def get_machine(request: Request) -> StageMachine:
    machine: StageMachine = request.app.state.machine
    return machine


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
MachineDep = Annotated[StageMachine, Depends(get_machine)]
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def _matches(token: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(token.encode(), expected.encode())


def require_admin(request: Request, settings: SettingsDep) -> None:
    """Study management: the admin token (the worker token gets 403)."""
    if settings.open:
        return
    token = _bearer(request)
    if _matches(token, settings.admin_token):
        return
    if _matches(token, settings.worker_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the worker token cannot manage studies")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
    )


def require_worker(request: Request, settings: SettingsDep) -> None:
    """The trial protocol: the worker token (or the admin token)."""
    if settings.open:
        return
    token = _bearer(request)
    if not (_matches(token, settings.worker_token) or _matches(token, settings.admin_token)):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
        )


AdminDep = Depends(require_admin)
WorkerDep = Depends(require_worker)
