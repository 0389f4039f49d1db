"""The dashboard's pages. Each is a small HTML shell with its first data embedded as JSON (so it
shows at once); its script draws it and keeps it up to date by polling the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import (
    SESSION_COOKIE,
    MachineDep,
    SchedulerDep,
    SettingsDep,
    StudyDep,
    request_token,
    role_of,
)
from api.routes.studies import list_studies
from api.settings import Settings
from hpsearch import __version__, views
from hpsearch.errors import HPSearchError
from hpsearch.spec import param_name

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
# HTML pages, redirects and an icon: no JSON body, so no response_model (tests/api/test_routes.py)
router = APIRouter(include_in_schema=False)
# the dashboard's scripts only load from here; plotly.js needs eval for some of its traces
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"
)


class SignInNeeded(HPSearchError):
    """A page was asked for without the admin token: off to the sign-in form."""

    def __init__(self) -> None:
        super().__init__("sign in with the admin token")


class WorkerRefused(HPSearchError):
    """The worker token on a page: 403."""

    def __init__(self) -> None:
        super().__init__("the worker token cannot read the dashboard: sign in with the admin token")


def viewer(request: Request, settings: SettingsDep) -> str:
    """Who looks: "admin" (or "open", a server without tokens). Others are sent to sign in;
    the worker token is refused (403): it is for machines."""
    if settings.open:
        return "open"
    token = request_token(request)
    role = role_of(token, settings) if token else None
    if role == "admin":
        return role
    if role == "worker":
        raise WorkerRefused()
    raise SignInNeeded()


ViewerDep = Annotated[str, Depends(viewer)]


def error_page(request: Request, status: int, heading: str, message: str) -> HTMLResponse:
    response = page(request, "error.html", heading, {}, heading=heading, message=message)
    response.status_code = status
    return response


def page(
    request: Request, name: str, title: str, data: dict[str, Any], **context: Any
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    response = templates.TemplateResponse(
        request,
        name,
        {
            "title": title,
            "data": json.dumps(data),
            "version": __version__,
            "signed_in": not settings.open and SESSION_COOKIE in request.cookies,
            **context,
        },
    )
    response.headers["Content-Security-Policy"] = _CSP
    return response


@router.get("/", response_class=HTMLResponse)
def studies_page(request: Request, machine: MachineDep, who: ViewerDep) -> HTMLResponse:
    return page(request, "studies.html", "Studies", {"studies": _dump(list_studies(machine))})


# ``who`` before the study: FastAPI solves dependencies in this order, and a visitor who has not
# signed in is sent to the sign-in form before any study is looked up (not told it is missing)
@router.get("/studies/{study}", response_class=HTMLResponse)
def study_page(
    request: Request, who: ViewerDep, record: StudyDep, machine: MachineDep
) -> HTMLResponse:
    data = {
        "id": record.id,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "summary": views.summary(machine, record.id).json_data(),
        # the table's first page, as the page's script asks for it (complete, best first)
        "table": views.trial_page(
            machine, record, state="complete", sort="value", limit=20
        ).model_dump(mode="json"),
        "params": [param_name(path) for path in record.spec.search.dimensions()],
    }
    return page(request, "study.html", record.name, data)


@router.get("/studies/{study}/trials/{stage}/{number}", response_class=HTMLResponse)
def trial_page(
    request: Request,
    who: ViewerDep,
    record: StudyDep,
    stage: Annotated[str, PathParam(pattern=r"^(coarse|refine-\d+)$")],
    number: Annotated[int, PathParam(ge=0, le=2**31 - 1)],
    machine: MachineDep,
) -> HTMLResponse:
    trial = views.trial_detail(machine, record, stage, number)
    data = {"study_id": record.id, "study": record.name, "trial": trial.model_dump(mode="json")}
    return page(request, "trial.html", f"{record.name} {stage} #{number}", data)


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, scheduler: SchedulerDep, who: ViewerDep) -> HTMLResponse:
    data = {"workers": _dump(scheduler.workers.list()), "lease_seconds": scheduler.lease_seconds}
    return page(request, "workers.html", "Workers", data)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/", problem: str | None = None) -> HTMLResponse:
    data = {"next": _local(next), "problem": problem}
    return page(request, "login.html", "Sign in", data)


@router.post("/login")
def login(
    token: Annotated[str, Form(max_length=4096)], settings: SettingsDep, next: str = "/"
) -> Response:
    """Check the token; the admin one opens a session (an HttpOnly, SameSite=Strict cookie)."""
    role = role_of(token.strip(), settings)
    if role != "admin":
        why = "that is the worker token: it is for machines" if role else "not this server's token"
        return RedirectResponse(f"/login?next={quote(_local(next))}&problem={quote(why)}", 303)
    response = RedirectResponse(_local(next), 303)
    response.set_cookie(
        SESSION_COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 24 * 3600
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _local(path: str) -> str:
    """Only paths on this server are followed after signing in (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _dump(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in items]


_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#111827"/>'
    '<path d="M3 12 L6 7 L9 9 L13 3" stroke="#22c55e" stroke-width="2" fill="none"/></svg>'
)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(_ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})
