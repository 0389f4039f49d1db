"""The FastAPI application: ``create_app(settings)`` wires the store, the routes and errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import anyio
import optuna
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from optuna.exceptions import StorageInternalError
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.dashboard import SignInNeeded, WorkerRefused, error_page, mount_dashboard
from api.docs import mount_docs
from api.errors import status_of
from api.figures import Charts
from api.metrics import Metrics, RequestTimer
from api.routes import charts, datasets, health, studies, trials, workers
from api.settings import Settings
from hpsearch import __version__
from hpsearch.errors import HPSearchError, SpecError
from hpsearch.protocol import ErrorBody, Problem
from hpsearch.scheduling import Scheduler, StageMachine, database_unavailable
from hpsearch.storage import Store

log = logging.getLogger("hpsearch.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from ``HPSEARCH_*`` variables)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study opened
        store = Store(settings.storage, settings.artifact_dir)  # creates our tables if missing
        await anyio.to_thread.run_sync(store.warm)
        app.state.store = store
        app.state.machine = StageMachine(store, max_retries=settings.max_retries)
        app.state.scheduler = Scheduler(app.state.machine, settings.lease_seconds)
        app.state.metrics.watch(app.state.scheduler)
        app.state.charts = Charts(app.state.machine)
        reaper = asyncio.create_task(_reap_forever(app.state.scheduler, settings.lease_seconds))
        yield
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
        store.close()

    app = FastAPI(
        title="hpsearch",
        version=__version__,
        description="Hyperparameter search for regularized CNNs, the coarse-to-fine recipe.",
        lifespan=lifespan,
        docs_url=None,  # served by mount_docs from installed files, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AllowedMethods, router=app.router)
    app.add_middleware(RequestTimer, metrics=app.state.metrics)
    app.include_router(health.router)
    app.include_router(studies.router)
    app.include_router(trials.router)
    app.include_router(workers.router)
    app.include_router(charts.router)
    app.include_router(datasets.router)
    mount_dashboard(app)
    mount_docs(app)
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(WorkerRefused, _worker_refused)
    app.add_exception_handler(HPSearchError, _hpsearch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(sa.exc.InterfaceError, _database_unavailable)
    app.add_exception_handler(StorageInternalError, _database_unavailable)
    return app


async def _reap_forever(scheduler: Scheduler, lease_seconds: float) -> None:
    """Fail expired leases a few times per lease period (claims reap too, on the way)."""
    while True:
        await asyncio.sleep(min(5.0, lease_seconds / 4))
        try:
            reaped = await run_in_threadpool(scheduler.reap)
        except Exception as exc:  # a database blip must not end the reaper; the next round retries
            if database_unavailable(exc):  # expected, and recovered from: one line is enough
                log.warning("reaping expired leases failed, retrying: %s", _first_line(exc))
            else:
                log.exception("reaping expired leases failed")
            continue
        if reaped:
            log.info("reaped %d expired leases", reaped)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


async def _sign_in(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)


async def _worker_refused(request: Request, exc: Exception) -> Response:
    return error_page(request, 403, "Not for the worker token", str(exc))


async def _hpsearch_error(request: Request, exc: Exception) -> Response:
    status = status_of(exc)
    if _wants_page(request):
        return error_page(
            request, status, "Not found" if status == 404 else "Cannot show that", str(exc)
        )
    problems = None
    if isinstance(exc, SpecError):
        problems = [Problem(field=f, message=m) for f, m in exc.problems]
    retry = {"Retry-After": "2"} if status == 503 else None  # as the schema says every 503 has
    return _error(status, str(exc), problems, retry)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database dropped the connection or is down: the caller should retry (workers do).

    Nothing is half-recorded by such a failure that a retry or the reaper does not complete."""
    log.warning(
        "%s %s: database unavailable: %s", request.method, request.url.path, _first_line(exc)
    )
    detail = "the database is unavailable right now; retry shortly"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "2"})


def _wants_page(request: Request) -> bool:
    """A person's browser asking for a dashboard page (not the API)."""
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _wants_page(request) and request.method == "GET":  # a mistyped page address
        return error_page(request, 404, "Not found", f"there is no page at {request.url.path}")
    problems = [
        Problem(field=".".join(str(p) for p in e["loc"]), message=e["msg"]) for e in exc.errors()
    ]
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return _error(422, detail, problems)


def _error(
    status: int,
    detail: str,
    problems: list[Problem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error as the schema declares it (``ErrorBody``)."""
    body = ErrorBody(detail=detail, problems=problems).model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


UPLOADS = re.compile(r"^/api/(datasets/|trials/\d+/files/)")  # their own, larger, limits


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class AllowedMethods:
    """A path served by other methods than the request's: 405 with an ``Allow`` header naming
    every method its routes take (Starlette names only the first route's), and ``OPTIONS``
    answered 204 with that header (RFC 9110 9.3.7)."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and (allowed := self._allowed(scope)):
            await self._answer(scope, receive, send, allowed)
            return
        # every other request is routed once, as ever; only a 405 the router answered is
        # replaced (nothing is matched twice on the way of a request that is served)
        replacing = False

        async def send_or_replace(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = self._allowed(scope)
                if allowed:
                    replacing = True
                    await self._answer(scope, receive, send, allowed)
                    return
            if not replacing:
                await send(message)

        await self.app(scope, receive, send_or_replace)

    def _allowed(self, scope: Scope) -> set[str]:
        """The methods the routes (mounts aside: they take any) take at the request's path."""
        routes = [r for r in self.router.routes if not isinstance(r, Mount)]
        return {
            method
            for method in METHODS
            if any(r.matches({**scope, "method": method})[0] == Match.FULL for r in routes)
        }

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, allowed: set[str]) -> None:
        header = {"Allow": ", ".join(sorted(allowed | {"OPTIONS"}))}
        if scope["method"] == "OPTIONS":
            response: Response = Response(status_code=204, headers=header)
        else:
            detail = f"{scope['method']} is not allowed here; {header['Allow']} are"
            response = JSONResponse({"detail": detail}, status_code=405, headers=header)
        await response(scope, receive, send)


class BodyLimit:
    """Answer 413 to a request body over ``max_bytes``, declared or streamed, before it is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if UPLOADS.match(scope["path"]):  # datasets and model files: their own limits
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_body, send)


class _TooLarge(Exception):
    pass


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
