"""The ``hpsearch`` command line."""

from hpsearch.cli import _train  # noqa: F401  (registers ``hpsearch train`` on ``main``)
from hpsearch.cli._main import main

__all__ = ["main"]
