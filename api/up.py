"""``hpsearch up``: a server and local workers in one command, the one-machine demo.

A command of the server's package (plugged into ``hpsearch`` through the ``hpsearch.commands``
entry point, like ``serve``): it starts the server and the workers as processes of the
``hpsearch`` command (``hpsearch serve``, ``hpsearch worker``) and follows the study over HTTP,
like any other client. Nothing here is imported before the command runs (``hpsearch --help``
stays quick); the server's own modules are not imported at all.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from hpsearch.cli.common import JSON, SET, SPEC, run_reporting_errors, with_data_on_server
from hpsearch.errors import HPSearchError

if TYPE_CHECKING:
    from hpsearch.cli.common import SearchView
    from hpsearch.client import ServiceClient
    from hpsearch.spec import StudySpec


@click.command()
@SPEC
@SET
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
@JSON
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
    from hpsearch.spec import load_spec  # pydantic, and below the rest: not for hpsearch --help

    spec = run_reporting_errors(lambda: load_spec(spec_path, overrides), as_json)
    from hpsearch.cli.common import SearchView, exit_unless_completed, print_result
    from hpsearch.client import ServiceClient
    from hpsearch.models import python_module

    port = port or _default_port()
    url = f"http://127.0.0.1:{port}"
    n_workers = n_workers or _default_workers()
    log = run_reporting_errors(lambda: _open_log(log_path), as_json)
    with log, _processes() as started:
        since = log.tell()
        started.append(_serve(storage, port, log, spec))
        check_server = partial(_check_alive, started[0], log, since)
        with ServiceClient(url, os.environ.get("HPSEARCH_ADMIN_TOKEN")) as client:
            run_reporting_errors(lambda: _wait_for(client, check_server), as_json)
            study_id = run_reporting_errors(lambda: _open_study(client, spec), as_json)
            if not as_json:
                click.echo(f"hpsearch: dashboard at {url}/  (REST API at {url}/docs)")
                click.echo(f"hpsearch: {n_workers} worker(s); server and worker logs in {log_path}")
            module = python_module(spec.model.arch)  # your own model's: the workers may run it
            started += [_work(url, i, n_workers, log, module) for i in range(n_workers)]
            with nullcontext() if as_json else SearchView() as view:
                result = run_reporting_errors(
                    lambda: _follow(client, study_id, view, check_server), as_json
                )
            if view is not None:
                print_result(view.console, result, f"served from {url}")
            if keep and not as_json:
                click.echo(f"hpsearch: still serving {url}/ (Ctrl-C to stop)")
                _wait_forever(started)
    if as_json:
        click.echo(json.dumps(result))
    exit_unless_completed(result)


def _open_log(path: str) -> IO[bytes]:
    try:
        return open(path, "ab")
    except OSError as exc:
        raise HPSearchError(f"cannot write the log {path}: {exc.strerror}") from None


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


def _serve(storage: str, port: int, log: IO[bytes], spec: StudySpec) -> subprocess.Popen[bytes]:
    """The server, allowed to read the spec's own local data and init model (your machine: a
    served study names them by path, as ``hpsearch run`` does)."""
    command = [sys.executable, "-m", "hpsearch", "serve", "--storage", storage]
    env = os.environ.copy()
    roots = [r for r in (env.get("HPSEARCH_DATA_ROOTS", ""), *_local_roots(spec)) if r]
    env["HPSEARCH_DATA_ROOTS"] = os.pathsep.join(roots)
    return subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=log)


def _local_roots(spec: StudySpec) -> list[str]:
    """The folders of the local files the spec names (its data, its init model)."""
    from hpsearch.spec import STUDY_PREFIX
    from hpsearch.uploads import PREFIX

    roots = []
    for path in (spec.dataset.path, spec.model.init_from):
        if path is None or path.startswith((PREFIX, STUDY_PREFIX)):
            continue
        real = Path(os.path.realpath(Path(path).expanduser()))
        roots.append(str(real if real.is_dir() else real.parent))
    return roots


def _work(
    url: str, index: int, count: int, log: IO[bytes], module: str | None = None
) -> subprocess.Popen[bytes]:
    """Worker ``index`` of ``count``: GPU ``index`` (round robin) if there are GPUs, else the CPU
    with its share of the cores; allowed to run the study's own ``module``, if it has one."""
    import torch

    gpus = torch.cuda.device_count()
    devices = str(index % gpus) if gpus else "cpu"
    env = os.environ.copy()
    if not gpus:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
    command = [sys.executable, "-m", "hpsearch", "worker", "--server", url, "--devices", devices]
    command += ["--id", f"{socket.gethostname()}-up{index}"]
    command += ["--allow-module", module] if module else []
    return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def _wait_for(client: ServiceClient, check_server: Callable[[], None]) -> None:
    deadline = time.monotonic() + 120
    while not client.healthy():
        check_server()
        if time.monotonic() > deadline:
            raise HPSearchError(f"the server did not answer at {client.server} within 120 s")
        time.sleep(0.2)


# how the lines of a server's last words start: ours, or an exception's
_ERROR_LINE = re.compile(r"(error: |\w[\w.]*(Error|Exception): )")


def _check_alive(server: subprocess.Popen[bytes], log: IO[bytes], since: int) -> None:
    """Raise if the server has exited, with the error it wrote to the log after ``since`` (its
    last error line, else its last line)."""
    if server.poll() is None:
        return
    with open(log.name, "rb") as written:
        written.seek(max(since, written.seek(0, os.SEEK_END) - 65536))  # the tail will do
        lines = [line.strip() for line in written.read().decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    said = [line for line in lines if _ERROR_LINE.match(line)] or lines
    last = f": {said[-1].removeprefix('error: ')}" if said else ""
    raise HPSearchError(
        f"the server exited with status {server.returncode}{last} (its log: {log.name})"
    )


def _open_study(client: ServiceClient, spec: StudySpec) -> int:
    """Launch the study, or pick up the one of that name (resuming it if it was stopped)."""
    from hpsearch.client import ServerError
    from hpsearch.spec import check_same_spec

    spec = with_data_on_server(client, spec, upload=False, say=False)  # workers see the path
    try:
        return client.launch(spec).id
    except ServerError as exc:
        if exc.status != 409:
            raise
    study_id = client.study_id(spec.name)
    stored = client.study(study_id)
    # the same check, and words, as hpsearch run's
    check_same_spec(stored.spec.model_dump(mode="json"), spec)
    if stored.state == "stopped":
        client.resume(study_id)
    return study_id


def _follow(
    client: ServiceClient,
    study_id: int,
    view: SearchView | None,
    check_server: Callable[[], None] = lambda: None,
    poll_seconds: float = 1.0,
) -> dict[str, Any]:
    """Poll the study until it ends, showing each summary on ``view``; its final summary. While
    the server does not answer, ``check_server()`` raises if it is gone for good."""
    from hpsearch.client import ServerError

    while True:
        try:
            read = client.study(study_id)
        except ServerError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            check_server()  # a moment of unavailability, unless the server is gone: look again
        else:
            summary = read.model_dump(mode="json")  # what the view draws, and --json prints
            if view is not None:
                view.update(summary)
            if read.state != "running":
                return summary
        time.sleep(poll_seconds)


def _wait_forever(started: list[subprocess.Popen[bytes]]) -> None:
    try:
        while started[0].poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        return
