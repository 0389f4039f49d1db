"""Request dependencies: the store, the stage machine, and token checks.

A token comes as ``Authorization: Bearer <token>`` (scripts, workers), or from the dashboard's
session cookie, set by its sign-in form. A request that changes something on the strength of the
cookie alone must also carry ``X-Requested-With: hpsearch`` (the dashboard's own scripts send it;
a form or link on another site cannot), besides the cookie being ``SameSite=Strict``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.schemas import ID_MAX, StudyKey
from api.settings import Settings
from hpsearch.errors import StudyNotFoundError
from hpsearch.scheduling import Scheduler, StageMachine
from hpsearch.storage import Store, StudyRecord

SESSION_COOKIE = "hpsearch_session"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


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


def get_study(study: StudyKey, store: StoreDep) -> StudyRecord:
    """The study a path names: by id when the key is all digits, else by name; 404 if none."""
    if not study.isdigit():
        return store.get_study(study)
    if not 1 <= int(study) <= ID_MAX:  # no such id can exist (and the database would refuse it)
        raise StudyNotFoundError(int(study))
    return store.get_study(int(study))


StudyDep = Annotated[StudyRecord, Depends(get_study)]


class NotSignedIn(HTTPException):
    """401: no token, or not a token of this server."""

    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def bearer_token(request: Request) -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, if it has a non-empty one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def request_token(request: Request) -> str | None:
    """The token a request carries: its bearer header's, else its session cookie's."""
    return bearer_token(request) or request.cookies.get(SESSION_COOKIE) or None


def presented_token(request: Request) -> str:
    """The request's token; 401 without one, 403 for a cookie-only change from elsewhere."""
    token = request_token(request)
    if token is None:
        raise NotSignedIn("missing bearer token: send 'Authorization: Bearer <token>'")
    if (
        bearer_token(request) is None
        and request.method not in _SAFE_METHODS
        and (request.headers.get("x-requested-with") != "hpsearch")
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a change made with the session cookie must come from the dashboard "
            "(X-Requested-With: hpsearch)",
        )
    return token


def role_of(token: str, settings: Settings) -> str | None:
    """``admin``, ``worker``, or None for a token this server does not know."""
    if _matches(token, settings.admin_token):
        return "admin"
    if _matches(token, settings.worker_token):
        return "worker"
    return None


def _matches(token: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(token.encode(), expected.encode())


def require_admin(request: Request, settings: SettingsDep) -> None:
    """Study management and the dashboard: the admin token (the worker token gets 403)."""
    if settings.open:
        return
    role = role_of(presented_token(request), settings)
    if role == "worker":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the worker token cannot manage studies")
    if role != "admin":
        raise NotSignedIn("invalid token")


def require_worker(request: Request, settings: SettingsDep) -> None:
    """The trial protocol: the worker token (or the admin token)."""
    if settings.open:
        return
    if role_of(presented_token(request), settings) is None:
        raise NotSignedIn("invalid token")


AdminDep = Depends(require_admin)
WorkerDep = Depends(require_worker)
