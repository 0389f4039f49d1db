"""The hpsearch server: REST routes, the worker protocol and dashboard pages (FastAPI), and the
``hpsearch serve`` and ``hpsearch up`` commands.

Imports ``hpsearch``; never imported by it, and never imports ``workers``. The names below load
on first use, so ``hpsearch up --help`` does not start FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from api.app import create_app
    from api.settings import Settings

_EXPORTS = {"create_app": "api.app", "Settings": "api.settings"}
__all__ = ["Settings", "create_app"]


__getattr__ = lazy_exports(__name__, _EXPORTS)
