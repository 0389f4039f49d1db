"""The API's documentation: its OpenAPI schema, and the pages ``/docs`` and ``/redoc``.

The schema is FastAPI's, but for invalid input: FastAPI declares its own 422 body (``detail``
a list) while ours is ``ErrorBody`` like every other error, so a generated client parses it.

FastAPI's own pages load their scripts from a CDN: a blank page on a machine without one. Here
they load Swagger UI 5 and ReDoc 2 (both read the OpenAPI 3.1 that FastAPI writes) from the files
the installed ``fastapi-offline`` ships, the way the dashboard loads plotly.js from ``plotly``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.schemas import ErrorBody

# Found, not imported: only its files are used (its FastAPI factory is not ours).
_SPEC = importlib.util.find_spec("fastapi_offline")
assert _SPEC is not None, "fastapi-offline is a dependency"
assert _SPEC.origin is not None
ASSETS = Path(_SPEC.origin).parent / "static"
_VENDOR = "/vendor/docs"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_OUR_ERROR = f"#/components/schemas/{ErrorBody.__name__}"


def mount_docs(app: FastAPI) -> None:
    """Our error body in the schema; ``/docs`` and ``/redoc`` for an app made with
    ``docs_url=None, redoc_url=None``."""
    app.openapi = _with_our_422(app.openapi)  # type: ignore[method-assign]
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    app.mount(_VENDOR, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{_VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{_VENDOR}/swagger-ui.css",
            swagger_favicon_url=f"{_VENDOR}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{_VENDOR}/redoc.standalone.js",
            redoc_favicon_url=f"{_VENDOR}/favicon.png",
            with_google_fonts=False,
        )


def _with_our_422(fastapis: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema, with ``ErrorBody`` wherever FastAPI declared its validation error.

    FastAPI adds that 422 to each route with parameters or a body, unless the route declares a
    422 itself; it builds the schema once and keeps it, so this edits the one it keeps."""

    def openapi() -> dict[str, Any]:
        schema = fastapis()
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            media = operation["responses"].get("422", {}).get("content", {}).get("application/json")
            if media is not None and media.get("schema") == {"$ref": _FASTAPI_422}:
                media["schema"] = {"$ref": _OUR_ERROR}
                operation["responses"]["422"]["description"] = "invalid input"
        components = schema["components"]["schemas"]
        assert ErrorBody.__name__ in components, "each router declares its errors with ErrorBody"
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        return schema

    return openapi
