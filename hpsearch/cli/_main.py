"""The ``hpsearch`` command group and how its commands report errors.

A user never sees a traceback for a problem they can fix: typed errors print as one ``error:``
message (and, with ``--json``, as one JSON object) with a non-zero exit status.

``hpsearch --help`` and a command given a bad spec answer at once: the command modules import
PyTorch, Optuna, SQLAlchemy, rich and httpx inside the commands that use them, and the plugin
commands (``serve``, ``worker``: FastAPI, uvicorn) are imported only when one of them runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import NoReturn, TypeVar

import click

from hpsearch import __version__
from hpsearch.errors import DivergedError, HPSearchError, SpecError

T = TypeVar("T")

EXIT_FAILED = 1  # the work itself failed (diverged, data missing, ...)
EXIT_USAGE = 2  # the request was wrong (invalid spec, bad option): click uses 2 as well
EXIT_INTERRUPTED = 130

PLUGIN_GROUP = "hpsearch.commands"
# What ``hpsearch --help`` says of the plugin commands this distribution ships, so that listing
# them does not import the server or the worker (a test holds these to the commands' own help).
PLUGIN_HELP = {
    "serve": "Serve the REST API (OpenAPI at /docs) over the given storage.",
    "worker": "Claim work items from a server and train them until stopped.",
    "up": "A server on a database plus local workers: launch the study, follow it to the end.",
}


class CommandGroup(click.Group):
    """The core's commands, plus the plugin commands of other packages (the ``hpsearch.commands``
    entry points: the server and the worker import the core, never the reverse), each imported
    only when it runs. Errors of a command that click would print as ``Error: ...`` print as
    ``error: ...`` like every other error; click's usage errors (bad options) stay click's."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        plugin = _plugins().get(cmd_name)
        return _load(plugin) if plugin is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's list of commands, without importing a plugin whose help is known."""
        listed = [(name, self._listed(ctx, name)) for name in self.list_commands(ctx)]
        rows = [(name, command) for name, command in listed if not command.hidden]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in rows])

    def _listed(self, ctx: click.Context, name: str) -> click.Command:
        if name in self.commands:
            return self.commands[name]
        if name in PLUGIN_HELP:  # a stand-in that only shows the help
            return click.Command(name, short_help=PLUGIN_HELP[name])
        try:
            return self.get_command(ctx, name) or click.Command(name, hidden=True)
        except click.ClickException as exc:
            return click.Command(name, short_help=f"(unavailable: {exc.format_message()})")

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError:
            raise
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)


def _plugins() -> dict[str, EntryPoint]:
    return {plugin.name: plugin for plugin in entry_points(group=PLUGIN_GROUP)}


def _load(plugin: EntryPoint) -> click.Command:
    try:
        command = plugin.load()
    except Exception as exc:  # a broken install: say which command and why, not a traceback
        raise click.ClickException(
            f"the {plugin.name!r} command ({plugin.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(command, click.Command):
        raise click.ClickException(f"{plugin.value} is not a click command")
    return command


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def fail(message: str, status: int = EXIT_FAILED, as_json: bool = False) -> NoReturn:
    """Print ``message`` as the one ``error:`` line (and a JSON error) and exit with ``status``."""
    _print_error(HPSearchError(message), as_json)
    sys.exit(status)


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
    if type(exc) is HPSearchError:
        return "error"
    name = type(exc).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_") or "error"
