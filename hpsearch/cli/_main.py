"""The ``hpsearch`` command group and how its commands report errors.

A user never sees a traceback for a problem they can fix: typed errors print as one ``error:``
message (and, with ``--json``, as one JSON object) with a non-zero exit status.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from hpsearch import __version__
from hpsearch.errors import DivergedError, HPSearchError, SpecError

T = TypeVar("T")

EXIT_FAILED = 1  # the work itself failed (diverged, data missing, ...)
EXIT_USAGE = 2  # the request was wrong (invalid spec, bad option): click uses 2 as well
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpsearch")
def main() -> None:
    """Hyperparameter search for regularized CNNs, following the coarse-to-fine recipe."""


def run_reporting_errors(work: Callable[[], T], as_json: bool) -> T:
    """Run ``work``; turn typed errors into a message and an exit status instead of a traceback."""
    try:
        return work()
    except HPSearchError as exc:
        status = EXIT_USAGE if isinstance(exc, SpecError) else EXIT_FAILED
        _print_error(exc, as_json)
        sys.exit(status)
    except KeyboardInterrupt:
        _print_error(HPSearchError("interrupted"), as_json)
        sys.exit(EXIT_INTERRUPTED)


def _print_error(exc: HPSearchError, as_json: bool) -> None:
    click.echo(f"error: {exc}", err=True)
    if as_json:
        error: dict[str, object] = {"type": _error_type(exc), "message": str(exc)}
        if isinstance(exc, DivergedError):
            error["epoch"] = exc.epoch
        if isinstance(exc, SpecError):
            error["problems"] = [{"field": f, "message": m} for f, m in exc.problems]
        click.echo(json.dumps({"error": error}))


def _error_type(exc: HPSearchError) -> str:
    name = type(exc).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_") or "error"
