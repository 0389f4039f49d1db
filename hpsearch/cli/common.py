"""What commands of the other packages (``hpsearch up`` from the server's) share with the core's:
the options that take a spec, the one ``error:`` line, and the view of a study as it runs (rich
loads with the view, on first use, so ``--help`` stays quick)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.cli._data import with_data_on_server
from hpsearch.cli._main import EXIT_FAILED, fail, run_reporting_errors
from hpsearch.cli._service import JSON, SET, SPEC
from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from hpsearch.cli._view import SearchView, exit_unless_completed, print_result

_VIEW = ("SearchView", "exit_unless_completed", "print_result")

__all__ = [
    "EXIT_FAILED",
    "JSON",
    "SET",
    "SPEC",
    "SearchView",
    "exit_unless_completed",
    "fail",
    "print_result",
    "run_reporting_errors",
    "with_data_on_server",
]


__getattr__ = lazy_exports(__name__, dict.fromkeys(_VIEW, "hpsearch.cli._view"))
