"""``hpsearch serve``: the API under uvicorn (registered on the ``hpsearch`` command through the
``hpsearch.commands`` entry point, so the core never imports the server)."""

from __future__ import annotations

import logging

import click
import uvicorn

from api.app import create_app
from api.settings import Settings, check_can_serve


@click.command()
@click.option(
    "--storage",
    default=None,
    help="Database URL (default: HPSEARCH_STORAGE or sqlite:///hpsearch.db).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(storage: str | None, host: str, port: int) -> None:
    """Serve the REST API (OpenAPI at /docs) over the given storage."""
    settings = Settings()
    if storage:
        settings = settings.model_copy(update={"storage": storage})
    problem = check_can_serve(settings, host)
    if problem is not None:
        raise click.ClickException(problem)
    log = logging.getLogger("hpsearch.serve")
    if settings.open:
        click.echo(f"hpsearch: no tokens set: the API on {host}:{port} is open to anyone here")
    log.info("serving %s", settings.storage)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
