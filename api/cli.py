"""``hpsearch serve``: the API under uvicorn (registered on the ``hpsearch`` command through the
``hpsearch.commands`` entry point, so the core never imports the server)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import click
import uvicorn

from api.app import create_app
from api.settings import Settings, check_can_serve
from hpsearch.errors import StorageError
from hpsearch.storage import Store


@click.command()
@click.option(
    "--storage",
    default=None,
    help="Database URL (default: HPSEARCH_STORAGE or sqlite:///hpsearch.db).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    "processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (PostgreSQL only; about one per CPU core).",
)
@click.option("--access-log", is_flag=True, help="Log every request (workers call every epoch).")
def serve(storage: str | None, host: str, port: int, processes: int, access_log: bool) -> None:
    """Serve the REST API (OpenAPI at /docs) over the given storage."""
    settings = Settings()
    if storage:
        settings = settings.model_copy(update={"storage": storage})
    problem = check_can_serve(settings, host, processes)
    if problem is not None:
        raise click.ClickException(problem)
    try:  # a storage that cannot be opened is one error line, not a server's traceback
        Store(settings.storage).close()
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    log = logging.getLogger("hpsearch.serve")
    if settings.open:
        click.echo(f"hpsearch: no tokens set: the API on {host}:{port} is open to anyone here")
    log.info("serving %s", settings.storage)
    if processes == 1:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level="info", access_log=access_log
        )
        return
    # Each process builds its own app from the environment (a factory, by import string), and
    # writes its request metrics where a scrape of any of them reads all of them.
    os.environ["HPSEARCH_STORAGE"] = settings.storage
    metrics_dir = tempfile.mkdtemp(prefix="hpsearch-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _run_processes(host, port, processes, access_log)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_processes(host: str, port: int, processes: int, access_log: bool) -> None:
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level="info",
        access_log=access_log,
    )
