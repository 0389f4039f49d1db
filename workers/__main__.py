"""``python -m workers``: the same as ``hpsearch worker``, with the same one-line errors."""

import sys

import click

from workers.cli import worker

try:
    worker.main(prog_name="python -m workers", standalone_mode=False)
except click.UsageError as exc:  # a bad option: click's usage message, as everywhere
    exc.show()
    sys.exit(exc.exit_code)
except click.ClickException as exc:
    click.echo(f"error: {exc.format_message()}", err=True)
    sys.exit(exc.exit_code)
except (click.Abort, KeyboardInterrupt):
    click.echo("error: interrupted", err=True)
    sys.exit(130)
