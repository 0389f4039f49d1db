"""The service under load: simulated workers against a real server, and Optuna used directly.

For each backend (a SQLite file, the PostgreSQL at HPSEARCH_TEST_POSTGRES) and each number of
worker processes N, in one run and on a fresh database each:

- ours: ``hpsearch serve`` (one process on SQLite; ``--server-processes`` on PostgreSQL) and N
  ``workers.simulate.SimulatedWorker`` processes, which speak the real protocol (claim, one report
  per epoch, finish) but train nothing; a study of ``--trials`` coarse trials of ``--epochs``
  epochs each, median pruning, launched through the REST API;
- baseline: N processes driving one Optuna study directly through Optuna's RDBStorage on the same
  kind of database: ``ask`` (and two ``suggest_float``), ``report`` + ``should_prune`` per epoch,
  ``tell``; the same trials, the same made-up accuracies, the same pruner.

Both start timing when every process is ready (imports and connections done). Printed per row:
p50 and p95 latency of each call (claim / report / finish, and ask / report / tell), the p95 over
all calls, trial lifecycles per second, the epochs reported (pruning decides how many), and
``ratio`` (ours / baseline lifecycles per second).

    python bench/service.py                               # 1, 8, 32 workers on both backends
    python bench/service.py --workers 32 --backends postgresql --epoch-seconds 2 --trials 300

With ``--epoch-seconds 0`` (the default) workers call back-to-back: a saturation test, whose
latencies are mostly queueing (32 callers with nothing else to do). ``--epoch-seconds S`` makes
each simulated epoch take 0.5 S to 1.5 S, as training does: latencies are then the server's own.
A worker told there is nothing to do (a 204: the study is between stages) asks again after
``--poll-seconds`` (0.5 s; ``hpsearch worker`` waits 2 s).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import httpx
import psycopg

POSTGRES = os.environ.get("HPSEARCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
HPSEARCH = str(Path(sys.executable).parent / "hpsearch")
TOKENS = {"HPSEARCH_ADMIN_TOKEN": "bench-admin", "HPSEARCH_WORKER_TOKEN": "bench-worker"}
Timings = dict[str, list[float]]


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"hpsearch_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(url: str, processes: int) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [HPSEARCH, "serve", "--storage", url, "--port", str(port)]
    command += ["--workers", str(processes)] if processes > 1 else []
    process = subprocess.Popen(
        command, env=os.environ | TOKENS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


def run_processes(target: Any, n: int, args: tuple[Any, ...]) -> tuple[float, list[Any]]:
    """Start ``n`` processes of ``target(barrier, queue, *args)``, each putting (timings, errors,
    when it finished its last trial) on the queue; time them from the moment all are ready to the
    last trial finished. Returns (seconds, their results)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(n + 1)
    queue = context.Queue()
    processes = [context.Process(target=target, args=(barrier, queue, i, *args)) for i in range(n)]
    for p in processes:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    results = [queue.get() for _ in processes]
    seconds = max(r[2] for r in results) - started  # perf_counter: one clock for all processes
    for p in processes:
        p.join()
    return seconds, results


# --- ours ---------------------------------------------------------------------------------------


def simulated_worker(
    barrier: Barrier, queue: Any, index: int, base: str, epoch_seconds: float, poll: float
) -> None:
    from workers.simulate import SimulatedWorker

    token = TOKENS["HPSEARCH_WORKER_TOKEN"]
    worker = SimulatedWorker(base, token, f"sim-{index}", epoch_seconds, poll)
    worker.client.ping()  # connected before the clock starts
    barrier.wait()
    try:
        worker.run(idle_seconds=10.0)  # between stages there may be nothing to do for a while
    finally:
        queue.put((dict(worker.timings), worker.errors, worker.last_finish))
        worker.close()


def ours(
    backend: str,
    n: int,
    trials: int,
    epochs: int,
    processes: int,
    epoch_seconds: float,
    poll: float,
) -> dict[str, Any]:
    with fresh_database(backend) as url, server(url, processes) as base:
        spec = {
            "name": "bench",
            "recipe": {"coarse": {"trials": trials, "epochs": epochs}, "refine": {"rounds": 0}},
        }
        headers = {"Authorization": f"Bearer {TOKENS['HPSEARCH_ADMIN_TOKEN']}"}
        created = httpx.post(f"{base}/api/studies", json=spec, headers=headers)
        created.raise_for_status()
        seconds, results = run_processes(simulated_worker, n, (base, epoch_seconds, poll))
        study = httpx.get(f"{base}/api/studies/{created.json()['id']}", headers=headers).json()
    timings = merge([r[0] for r in results])
    errors = sum(len(r[1]) for r in results)
    assert study["state"] == "completed", study["state"]
    return {"timings": timings, "seconds": seconds, "errors": errors}


# --- the baseline: Optuna's own RDBStorage ------------------------------------------------------


def optuna_worker(
    barrier: Barrier,
    queue: Any,
    index: int,
    url: str,
    trials: int,
    epochs: int,
    epoch_seconds: float,
    counter: Any,
) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="bench",
        storage=optuna_storage(url),
        sampler=optuna.samplers.RandomSampler(seed=index),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    timings: Timings = {"ask": [], "report": [], "tell": []}
    errors: list[str] = []
    jitter = random.Random(index)  # as the simulated workers: epochs differ in length
    barrier.wait()
    try:
        while True:
            with counter.get_lock():
                if counter.value >= trials:
                    break
                counter.value += 1
            one_trial(study, epochs, epoch_seconds, jitter, timings)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        with counter.get_lock():
            counter.value = trials  # the others stop too: this run's figures are void
    queue.put((timings, errors, time.perf_counter()))


def one_trial(
    study: Any, epochs: int, epoch_seconds: float, jitter: random.Random, timings: Timings
) -> None:
    import optuna

    from workers.simulate import simulated_accuracy

    started = time.perf_counter()
    trial = study.ask()
    params = {
        "lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }
    timings["ask"].append(time.perf_counter() - started)
    pruned, value = False, 0.0
    for epoch in range(1, epochs + 1):
        time.sleep(epoch_seconds * jitter.uniform(0.5, 1.5))
        value = simulated_accuracy(params, epoch)
        started = time.perf_counter()
        trial.report(value, epoch)
        pruned = trial.should_prune()
        timings["report"].append(time.perf_counter() - started)
        if pruned:
            break
    started = time.perf_counter()
    if pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, value)
    timings["tell"].append(time.perf_counter() - started)


def optuna_storage(url: str) -> Any:
    """Optuna's RDBStorage, set up as well as ours: SQLite waits up to a minute for a lock
    (Python's default of 5 s fails under a few dozen writers), PostgreSQL via psycopg 3."""
    import optuna

    if url.startswith("sqlite"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url)


def baseline(
    backend: str, n: int, trials: int, epochs: int, epoch_seconds: float
) -> dict[str, Any]:
    import optuna

    with fresh_database(backend) as url:
        url = url.replace("postgresql://", "postgresql+psycopg://")
        optuna.create_study(study_name="bench", storage=optuna_storage(url), direction="maximize")
        counter = multiprocessing.get_context("spawn").Value("i", 0)
        args = (url, trials, epochs, epoch_seconds, counter)
        seconds, results = run_processes(optuna_worker, n, args)
    errors = sum(len(r[1]) for r in results)
    return {"timings": merge([r[0] for r in results]), "seconds": seconds, "errors": errors}


# --- reporting ----------------------------------------------------------------------------------


def merge(parts: list[Timings]) -> Timings:
    merged: Timings = {}
    for part in parts:
        for kind, values in part.items():
            merged.setdefault(kind, []).extend(values)
    return merged


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def describe(result: dict[str, Any], trials: int) -> str:
    calls = [f"{kind} {1000 * percentile(v, 0.5):.1f}/{1000 * percentile(v, 0.95):.1f}"
             for kind, v in result["timings"].items()]  # fmt: skip
    everything = [x for v in result["timings"].values() for x in v]
    rate = trials / result["seconds"]
    return (
        f"{', '.join(calls)} ms (p50/p95); all calls p95 {1000 * percentile(everything, 0.95):.1f}"
        f" ms; {rate:.1f} trials/s; {len(result['timings'].get('report', []))} epochs reported"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--epoch-seconds",
        type=float,
        default=0.0,
        help="time each simulated epoch takes (0: workers call back-to-back, a saturation test)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.5,
        help="how long a worker waits after being told there is nothing to do (the daemon: 2 s)",
    )
    parser.add_argument(
        "--server-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="hpsearch serve --workers on PostgreSQL (SQLite always has one)",
    )
    args = parser.parse_args()
    print(
        f"{args.trials} trials of {args.epochs} epochs, {args.epoch_seconds} s per epoch; "
        f"cores: {os.cpu_count()}"
    )
    for backend in args.backends:
        processes = args.server_processes if backend == "postgresql" else 1
        for n in args.workers:
            mine = ours(
                backend, n, args.trials, args.epochs, processes, args.epoch_seconds,
                args.poll_seconds,
            )  # fmt: skip
            theirs = baseline(backend, n, args.trials, args.epochs, args.epoch_seconds)
            ratio = (args.trials / mine["seconds"]) / (args.trials / theirs["seconds"])
            print(f"{backend}, {n} workers ({processes} server processes):")
            print(f"  ours:     {describe(mine, args.trials)}; errors {mine['errors']}")
            print(f"  baseline: {describe(theirs, args.trials)}; errors {theirs['errors']}")
            print(f"  ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
