"""Commands that talk to a server: ``launch``, ``status``, and ``up`` (a server and local workers
in one command, the one-machine demo).

They speak HTTP only (``hpsearch.client``): the core never imports the server or the workers. ``up``
starts them as processes (``python -m hpsearch serve``, ``python -m workers``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hpsearch.cli._main import EXIT_FAILED, main, run_reporting_errors
from hpsearch.cli._view import SearchView, print_result
from hpsearch.client import ServerError, ServiceClient
from hpsearch.errors import HPSearchError
from hpsearch.spec import StudySpec, load_spec

_SERVER = click.option(
    "--server",
    envvar="HPSEARCH_SERVER",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The server's URL (or HPSEARCH_SERVER).",
)
_TOKEN = click.option(
    "--token", envvar="HPSEARCH_ADMIN_TOKEN", help="Admin token (or HPSEARCH_ADMIN_TOKEN)."
)
_SPEC = click.option("--spec", "spec_path", required=True, help="Study spec file, or a name.")
_SET = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec field."
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object last.")


@main.command()
@_SPEC
@_SET
@_SERVER
@_TOKEN
@_JSON
def launch(
    spec_path: str, overrides: tuple[str, ...], server: str, token: str | None, as_json: bool
) -> None:
    """Launch a study on a server; its workers take it from there."""
    spec = run_reporting_errors(lambda: load_spec(spec_path, overrides), as_json)
    with ServiceClient(server, token) as client:
        created = run_reporting_errors(lambda: client.launch(spec), as_json)
    if as_json:
        click.echo(json.dumps(created))
    else:
        click.echo(f"launched study {created['name']!r} (id {created['id']}) on {server}")
        click.echo(f"watch it: hpsearch status {created['id']} --server {server}")


@main.command()
@click.argument("study", required=False)
@_SERVER
@_TOKEN
@_JSON
def status(study: str | None, server: str, token: str | None, as_json: bool) -> None:
    """The server's studies, or one STUDY (id or name): its stages and best trial."""
    with ServiceClient(server, token) as client:
        if study is None:
            studies = run_reporting_errors(client.studies, as_json)
            _print(studies, as_json, lambda console: _studies_table(console, studies))
            return
        view = run_reporting_errors(lambda: client.study(study), as_json)

    def show(console: Console) -> None:
        console.print(SearchView.render(view))
        if view["state"] in ("completed", "failed"):
            print_result(console, view, f"on {server}")

    _print(view, as_json, show)


def _print(data: Any, as_json: bool, show: Any) -> None:
    if as_json:
        click.echo(json.dumps(data))
    else:
        show(Console())


def _studies_table(console: Console, studies: list[dict[str, Any]]) -> None:
    if not studies:
        console.print("no studies yet: launch one with 'hpsearch launch --spec FILE'")
        return
    table = Table("id", "name", "state", "stage", "complete", "pruned", "failed", "best val")
    for s in studies:
        trials, best = s["trials"], s["best_val_accuracy"]
        table.add_row(
            str(s["id"]),
            s["name"],
            s["state"],
            s["stage"] or "",
            str(trials.get("complete", 0)),
            str(trials.get("pruned", 0)),
            str(trials.get("failed", 0)),
            f"{best:.4f}" if best is not None else "",
        )
    console.print(table)


@main.command()
@_SPEC
@_SET
@click.option(
    "--storage",
    default="sqlite:///hpsearch.db",
    show_default=True,
    help="Database URL for the server.",
)
@click.option("--workers", "n_workers", type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default 8000, or a free one).")
@click.option("--keep", is_flag=True, help="Keep serving after the study ends (Ctrl-C stops).")
@click.option(
    "--log",
    "log_path",
    default="hpsearch-up.log",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where the server's and the workers' output goes.",
)
@_JSON
def up(
    spec_path: str,
    overrides: tuple[str, ...],
    storage: str,
    n_workers: int | None,
    port: int | None,
    keep: bool,
    log_path: str,
    as_json: bool,
) -> None:
    """A server on a database plus local workers: launch the study, follow it to the end.

    Run the same command again to resume an interrupted study.
    """
    spec = run_reporting_errors(lambda: load_spec(spec_path, overrides), as_json)
    port = port or _default_port()
    url = f"http://127.0.0.1:{port}"
    n_workers = n_workers or _default_workers()
    with open(log_path, "ab") as log, _processes() as started:
        started.append(_serve(storage, port, log))
        with ServiceClient(url, os.environ.get("HPSEARCH_ADMIN_TOKEN")) as client:
            run_reporting_errors(lambda: _wait_for(client, started[0]), as_json)
            study_id = run_reporting_errors(lambda: _open_study(client, spec), as_json)
            if not as_json:
                click.echo(f"hpsearch: dashboard at {url}/  (REST API at {url}/docs)")
                click.echo(f"hpsearch: {n_workers} worker(s); server and worker logs in {log_path}")
            started += [_work(url, i, n_workers, log) for i in range(n_workers)]
            result = run_reporting_errors(lambda: _follow(client, study_id, as_json), as_json)
            if keep and not as_json:
                click.echo(f"hpsearch: still serving {url}/ (Ctrl-C to stop)")
                _wait_forever(started)
    if as_json:
        click.echo(json.dumps(result))
    if result["state"] != "completed":
        sys.exit(EXIT_FAILED)


def _default_port() -> int:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8000)) != 0:
            return 8000
    with socket.socket() as s:  # 8000 is taken: any free port will do
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _default_workers() -> int:
    """One worker per GPU; on a CPU, one (it uses every core)."""
    import torch

    return max(1, torch.cuda.device_count())


@contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started inside (the server first) are stopped on the way out: the workers first,
    told twice (an item in progress is handed back to the server for a retry), then the server."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        workers, server = started[1:], started[:1]
        for signals in (workers, workers, server):
            for process in signals:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        for process in reversed(started):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _serve(storage: str, port: int, log: Any) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hpsearch", "serve", "--storage", storage]
    return subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log)


def _work(url: str, index: int, count: int, log: Any) -> subprocess.Popen[bytes]:
    """Worker ``index`` of ``count``: GPU ``index`` (round robin) if there are GPUs, else the CPU
    with its share of the cores."""
    import torch

    gpus = torch.cuda.device_count()
    devices = str(index % gpus) if gpus else "cpu"
    env = os.environ.copy()
    if not gpus:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
    command = [sys.executable, "-m", "workers", "--server", url, "--devices", devices]
    command += ["--id", f"{socket.gethostname()}-up{index}"]
    return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def _wait_for(client: ServiceClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not client.healthy():
        if server.poll() is not None:
            raise HPSearchError(f"the server exited with status {server.returncode}")
        if time.monotonic() > deadline:
            raise HPSearchError(f"the server did not answer at {client.server} within 120 s")
        time.sleep(0.2)


def _open_study(client: ServiceClient, spec: StudySpec) -> int:
    """Launch the study, or pick up the one of that name (resuming it if it was stopped)."""
    try:
        return int(client.launch(spec)["id"])
    except ServerError as exc:
        if exc.status != 409:
            raise
    study_id = client.study_id(spec.name)
    stored = client.study(study_id)
    if stored["spec"] != spec.model_dump(mode="json"):
        raise HPSearchError(
            f"the storage already holds a study named {spec.name!r} with a different spec; "
            "run it with the same spec to resume, or choose another name or --storage"
        )
    if stored["state"] == "stopped":
        client.resume(study_id)
    return study_id


def _follow(client: ServiceClient, study_id: int, quiet: bool) -> dict[str, Any]:
    """Poll the study until it ends, showing its stages live; returns its final summary."""
    view = None if quiet else SearchView()
    while True:
        try:
            summary = client.study(study_id)
        except ServerError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            summary = None  # a moment of unavailability: look again
        if view is not None and summary is not None:
            if not view.live.is_started:
                view.live.start()
            view.update(summary)
        if summary is not None and summary["state"] != "running":
            break
        time.sleep(1.0)
    if view is not None:
        view.live.stop()
        if not view.console.is_terminal:
            view.console.line()
        print_result(view.console, summary, f"served from {client.server}")
    return summary


def _wait_forever(started: list[subprocess.Popen[bytes]]) -> None:
    try:
        while started[0].poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        return
