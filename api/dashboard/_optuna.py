"""optuna-dashboard at ``/optuna``: Optuna's generic views of the same storage.

optuna-dashboard expects to own the site's root: its page loads ``/static/bundle.js``, its
scripts call ``/api/...`` (ours!) and route under ``/dashboard``. Here it runs as a WSGI app
under ``/optuna`` (a2wsgi), and three small rewrites keep it there: its page loads its bundle and
a small shim from ``/optuna/static``, the shim sends its ``/api/`` calls to ``/optuna/api/``,
and its bundle's route prefix ``/dashboard`` becomes ``/optuna/dashboard``. Access is the
dashboard's: the admin token, from the session cookie or a bearer header; a change made with the
cookie alone must carry ``X-Requested-With: hpsearch``, as on our own API (the shim adds it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from api.dashboard._pages import viewer
from api.deps import presented_token
from api.settings import Settings

# Found, not imported: importing it pulls in scikit-learn and SciPy, seconds of a server's start.
_SPEC = importlib.util.find_spec("optuna_dashboard")
assert _SPEC is not None, "optuna-dashboard is a dependency"
assert _SPEC.origin is not None
_PACKAGE = Path(_SPEC.origin).parent
_SHIM = """// optuna-dashboard calls its API at /api/...; here it lives under /optuna, and a change
// it makes with the session cookie must say it comes from the dashboard (X-Requested-With).
(() => {
  const f = window.fetch;
  window.fetch = (input, init) => {
    if (typeof input !== "string" || !input.startsWith("/api/")) return f(input, init);
    const headers = new Headers(init && init.headers);
    headers.set("X-Requested-With", "hpsearch");
    return f("/optuna" + input, { ...init, headers });
  };
})();
"""


class OptunaDashboard:
    """The ASGI app mounted at /optuna (the storage is the server's, opened at start-up)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._wsgi: WSGIMiddleware | None = None
        self._page = (
            (_PACKAGE / "index.html")
            .read_text()
            .replace(
                '<script defer src="/static/bundle.js"></script>',
                '<script src="/optuna/static/prefix.js"></script>\n'
                '    <script defer src="/optuna/static/bundle.js"></script>',
            )
        )
        self._bundle: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        settings: Settings = self.app.state.settings
        # the pages' rule: the sign-in form, or 403 for a worker token; then the API's rule for
        # a change made with the session cookie alone (403 without the dashboard's header)
        if viewer(request, settings) != "open":
            presented_token(request)
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        response = self._rewritten(path)
        if response is not None:
            await response(scope, receive, send)
            return
        await self._app()(scope, receive, send)  # type: ignore[arg-type]

    def _rewritten(self, path: str) -> Response | None:
        if path in ("/", ""):
            return RedirectResponse("/optuna/dashboard", 302)
        if path == "/dashboard" or path.startswith("/dashboard/"):
            return Response(self._page, media_type="text/html")
        if path == "/static/prefix.js":
            return Response(_SHIM, media_type="text/javascript")
        if path == "/static/bundle.js":
            if self._bundle is None:
                text = (_PACKAGE / "public" / "bundle.js").read_text()
                self._bundle = text.replace(
                    'url_prefix:"/dashboard"', 'url_prefix:"/optuna/dashboard"'
                ).encode()
            return Response(self._bundle, media_type="text/javascript")
        return None

    def _app(self) -> WSGIMiddleware:
        if self._wsgi is None:  # on first use (the store exists once the app has started)
            import optuna_dashboard
            from optuna.artifacts import FileSystemArtifactStore

            store = self.app.state.store
            storage: Any = store.optuna
            store.artifacts.root.mkdir(parents=True, exist_ok=True)
            artifacts = FileSystemArtifactStore(store.artifacts.root)  # the models it lists
            self._wsgi = WSGIMiddleware(optuna_dashboard.wsgi(storage, artifact_store=artifacts))
        return self._wsgi
