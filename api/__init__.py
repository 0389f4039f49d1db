"""The hpsearch server: REST routes, the worker protocol and dashboard pages (FastAPI).

Imports ``hpsearch``; never imported by it, and never imports ``workers``.
"""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
