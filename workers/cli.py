"""``hpsearch worker`` (also ``python -m workers``): run trials for a server, on this machine.

With several GPUs it starts one process per GPU, each seeing only its own (CUDA_VISIBLE_DEVICES),
and passes signals on to them; with ``--slots N``, N processes per device (on a CPU, each with
its share of the cores).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from hpsearch.client import ProtocolClient, Refused
from workers._spool import Spool


@click.command()
@click.option("--server", required=True, help="The server's URL, e.g. http://10.0.0.5:8000.")
@click.option(
    "--token", envvar="HPSEARCH_WORKER_TOKEN", help="Worker token (or HPSEARCH_WORKER_TOKEN)."
)
@click.option(
    "--devices", default="all", show_default=True, help="all, cpu, or GPU indices such as 0,1."
)
@click.option(
    "--slots",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Trial processes per device: small models leave most of a GPU idle. On a CPU, each "
    "process gets its share of the cores.",
)
@click.option("--max-trials", type=click.IntRange(min=1), help="Exit after this many work items.")
@click.option("--burst", is_flag=True, help="Exit as soon as there is nothing to claim.")
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(path_type=Path),
    help="Undelivered results wait here, a folder per worker id (~/.cache/hpsearch/spool).",
)
@click.option("--id", "worker_id", help="Worker id (default: host-pid).")
@click.option(
    "--checkpoint-seconds",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Send a running trial's checkpoint to the server at most this often (0: after every "
    "epoch); a trial whose worker dies goes on from its latest one.",
)
@click.option(
    "--allow-module",
    "allowed",
    multiple=True,
    metavar="PREFIX",
    help="Build python:MODULE:CALLABLE models whose module is PREFIX or inside it, e.g. "
    "mypkg.models (repeatable). Importing a module runs its code: none is allowed by default.",
)
def worker(
    server: str,
    token: str | None,
    devices: str,
    slots: int,
    max_trials: int | None,
    burst: bool,
    spool_dir: Path | None,
    worker_id: str | None,
    checkpoint_seconds: float,
    allowed: tuple[str, ...],
) -> None:
    """Claim work items from a server and train them until stopped."""
    # the worker's own lines (hpsearch.*) from INFO; libraries' only when they warn
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("hpsearch").setLevel(logging.INFO)
    from hpsearch.errors import HPSearchError
    from hpsearch.models import allow_modules

    try:
        allow_modules(allowed)
    except HPSearchError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-module") from None
    from hpsearch.device import resolve_device  # PyTorch: loaded by the worker, not by hpsearch
    from workers._daemon import Worker

    gpus = _gpu_list(devices)
    if len(gpus) > 1 or slots > 1:
        options = {
            "--server": server,
            "--max-trials": max_trials,
            "--spool": spool_dir,
            "--checkpoint-seconds": checkpoint_seconds,
            "--allow-module": allowed,
        }
        sys.exit(_processes_per_device(gpus, slots, options, burst, worker_id, token))
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    device = resolve_device(f"cuda:{gpus[0]}" if gpus else "cpu")
    try:
        spool = Spool((spool_dir or Path.home() / ".cache" / "hpsearch" / "spool") / worker_id)
    except RuntimeError as exc:  # another worker runs under this id
        raise click.ClickException(f"{exc}; give each worker its own --id") from None
    adopted = spool.adopt_orphans()
    if adopted:
        click.echo(f"[{worker_id}] delivering {adopted} result(s) a stopped worker left behind")
    client = ProtocolClient(server, token, worker_id)
    daemon = Worker(client, device, spool, burst=burst, max_trials=max_trials)
    daemon.checkpoint_seconds = checkpoint_seconds
    daemon.install_signal_handlers()
    try:
        done = daemon.run()
    except Refused as exc:  # 401/403: a wrong token, not a reason to retry
        raise click.ClickException(
            f"the server refused the worker: HTTP {exc.status}: {exc.detail}"
        ) from None
    finally:
        client.close()
        spool.close()
    click.echo(f"[{worker_id}] exiting after {done} work items")


def _gpu_list(devices: str) -> list[str]:
    if devices == "cpu":
        return []
    if devices == "all":
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    wanted = [d.strip() for d in devices.split(",") if d.strip()]
    if not all(d.isdigit() for d in wanted):
        raise click.BadParameter(f"{devices!r}: use all, cpu, or GPU indices such as 0,1")
    return wanted


def _processes_per_device(
    gpus: list[str],
    slots: int,
    options: Mapping[str, object],
    burst: bool,
    worker_id: str | None,
    token: str | None = None,
) -> int:
    """``slots`` worker processes per GPU, each seeing only its GPU (so each trains on its
    ``cuda:0``), or ``slots`` on the CPU (no GPUs), each with its share of the cores; each with
    an id of its own; signals are passed on to all of them."""
    base = worker_id or socket.gethostname()
    children = []
    threads = max(1, (os.cpu_count() or 1) // slots)
    for device in gpus or ["cpu"]:
        for slot in range(slots):
            # the same ids on every start: one row, one spool each
            name = f"{base}-gpu{device}" if device != "cpu" else f"{base}-cpu"
            name += f"-{slot}" if slots > 1 else ""
            command = [sys.executable, "-m", "workers", "--devices", "0" if gpus else "cpu"]
            command += ["--id", name]
            for flag, value in options.items():
                values = value if isinstance(value, tuple) else () if value is None else (value,)
                for one in values:  # a repeatable option, once per value
                    command += [flag, str(one)]
            command += ["--burst"] if burst else []
            env = dict(os.environ)
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = device
            else:
                env["OMP_NUM_THREADS"] = str(threads)  # PyTorch's threads: the share of cores
            if token:  # given as --token: the children get it as the variable, not in `ps`
                env["HPSEARCH_WORKER_TOKEN"] = token
            children.append(subprocess.Popen(command, env=env))

    def forward(signum: int, frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)
