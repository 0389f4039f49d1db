"""The ``hpsearch`` command line."""

from hpsearch.cli import _run, _train  # noqa: F401  (they register their commands on ``main``)
from hpsearch.cli._main import main

__all__ = ["main"]
