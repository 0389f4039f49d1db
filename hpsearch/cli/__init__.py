"""The ``hpsearch`` command line."""

from hpsearch.cli._main import main

__all__ = ["main"]
