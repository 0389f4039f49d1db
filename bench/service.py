"""The service under load: simulated workers against a real server, and Optuna used directly.

For each backend (a SQLite file, the PostgreSQL at HPSEARCH_TEST_POSTGRES) and each number of
worker processes N, in one run and on a fresh database each:

- ours: ``hpsearch serve`` (one process on SQLite; ``--server-processes`` on PostgreSQL) and N
  ``workers.simulate.SimulatedWorker`` processes, which speak the real protocol (claim, one report
  per epoch, finish) but train nothing; a study of ``--trials`` coarse trials of ``--epochs``
  epochs each, median pruning, launched through the REST API and run through every stage;
- baseline: N processes driving one Optuna study directly through Optuna's RDBStorage on the same
  kind of database: ``ask`` (and two ``suggest_float``), ``report`` + ``should_prune`` per epoch,
  ``tell``, with the same pruner. The same trials: trial k has the parameters ours gives its
  coarse trial k (our sampler, our search space, our seeded first trial), its epochs take as long,
  and its made-up accuracies are the same, so both sides do the same work.

Both start timing when every process is ready (imports and connections done). Printed per row:
p50 and p95 latency of each call (claim / report / finish, and ask / report / tell), the p95 over
all calls, trial lifecycles per second, the epochs reported (pruning decides how many), and
``ratio`` (ours / baseline trial lifecycles per second). Trial lifecycles per second count the
time from the first trial begun to the last one ended; ours also runs the sanity-check,
range-test and final items before and after its trials, and the whole run's time is printed
beside it.

    python bench/service.py                               # 1, 8, 32 workers on both backends
    python bench/service.py --workers 32 --backends postgresql --epoch-seconds 2

With ``--epoch-seconds 0`` (the default) workers call back-to-back: a saturation test, whose
latencies are mostly queueing (32 callers with nothing else to do). ``--epoch-seconds S`` makes
each simulated epoch take 0.5 S to 1.5 S, as training does: latencies are then the server's own.
A worker told there is nothing to do (a 204: the study is between stages, or its last trials are
out) asks again after ``--poll-seconds`` (2 s, jittered, as ``hpsearch worker``).
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
import optuna
import psycopg

from hpsearch.recipe import make_sampler
from hpsearch.spec import StudySpec

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


def run_processes(
    target: Any, n: int, args: tuple[Any, ...], done: Any = None
) -> tuple[float, list[Any]]:
    """Start ``n`` processes of ``target(barrier, queue, stop, index, *args)``, each putting
    (timings, errors, when its first trial began, when its last trial ended, when its last item
    ended) on the queue, all as ``time.perf_counter()`` (one clock for all processes). Given
    ``done``, a check called every second, ``stop`` is set once it says so. Returns when they were
    all ready and their results."""
    context = multiprocessing.get_context("spawn")
    barrier, queue, stop = context.Barrier(n + 1), context.Queue(), context.Event()
    processes = [
        context.Process(target=target, args=(barrier, queue, stop, i, *args)) for i in range(n)
    ]
    for p in processes:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    if done is not None:
        while not done():
            time.sleep(1.0)
        stop.set()
    results = [queue.get() for _ in processes]
    for p in processes:
        p.join()
    return started, results


# --- ours ---------------------------------------------------------------------------------------


def simulated_worker(
    barrier: Barrier,
    queue: Any,
    stop: Any,
    index: int,
    base: str,
    epoch_seconds: float,
    poll: float,
) -> None:
    from workers.simulate import SimulatedWorker

    token = TOKENS["HPSEARCH_WORKER_TOKEN"]
    worker = SimulatedWorker(base, token, f"sim-{index}", epoch_seconds, poll)
    worker.client.ping()  # connected before the clock starts
    barrier.wait()
    try:
        worker.run(stop=stop)  # until the study is over, however long it has nothing to hand out
    finally:
        ends = (worker.first_trial, worker.last_trial, worker.last_finish)
        queue.put((dict(worker.timings), worker.errors, *ends))
        worker.close()


def study_spec(trials: int, epochs: int) -> dict[str, Any]:
    """The study both sides run: ``trials`` coarse trials, no refine rounds."""
    return {
        "name": "bench",
        "recipe": {"coarse": {"trials": trials, "epochs": epochs}, "refine": {"rounds": 0}},
    }


def ours(
    backend: str,
    n: int,
    trials: int,
    epochs: int,
    processes: int,
    epoch_seconds: float,
    poll: float,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKENS['HPSEARCH_ADMIN_TOKEN']}"}
    with fresh_database(backend) as url, server(url, processes) as base:
        spec = study_spec(trials, epochs)
        created = httpx.post(f"{base}/api/studies", json=spec, headers=headers)
        created.raise_for_status()
        address = f"{base}/api/studies/{created.json()['id']}"

        def over() -> bool:
            state: str = httpx.get(address, headers=headers).json()["state"]
            return state != "running"

        args = (base, epoch_seconds, poll)
        started, results = run_processes(simulated_worker, n, args, done=over)
        study = httpx.get(address, headers=headers).json()
    assert study["state"] == "completed", study["state"]
    return summarize(started, results)


# --- the baseline: Optuna's own RDBStorage ------------------------------------------------------


class OurTrials(optuna.samplers.BaseSampler):
    """Trial 0: the configuration ours seeds first (the range test's LR, the spec's weight
    decay); every later trial: what our random sampler draws for its number. A sampler rather
    than ``enqueue_trial``, whose queued trial two SQLite processes can both start."""

    def __init__(self, spec: StudySpec) -> None:
        from workers.simulate import SUGGESTED_LR

        self.first = {"lr": SUGGESTED_LR, "weight_decay": spec.train.weight_decay}
        self.rest = make_sampler("random", spec.seed, "coarse")

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        if trial.number == 0:
            return self.first[name]
        return self.rest.sample_independent(study, trial, name, distribution)


def optuna_worker(
    barrier: Barrier,
    queue: Any,
    stop: Any,
    index: int,
    url: str,
    trials: int,
    epochs: int,
    epoch_seconds: float,
    counter: Any,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = StudySpec.model_validate(study_spec(trials, epochs))
    study = optuna.load_study(
        study_name="bench",
        storage=optuna_storage(url),
        sampler=OurTrials(spec),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    timings: Timings = {"ask": [], "report": [], "tell": []}
    errors: list[str] = []
    barrier.wait()
    first = time.perf_counter()
    try:
        while True:
            with counter.get_lock():
                if counter.value >= trials:
                    break
                counter.value += 1
            one_trial(study, spec, epoch_seconds, timings)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        with counter.get_lock():
            counter.value = trials  # the others stop too: this run's figures are void
    last = time.perf_counter()
    queue.put((timings, errors, first, last, last))


def one_trial(study: Any, spec: StudySpec, epoch_seconds: float, timings: Timings) -> None:
    from workers.simulate import LR_RANGE, simulated_accuracy

    started = time.perf_counter()
    trial = study.ask()
    weight_decay = spec.search.weight_decay
    params = {
        "lr": trial.suggest_float("lr", *LR_RANGE, log=True),
        "weight_decay": trial.suggest_float(
            "weight_decay", weight_decay.low, weight_decay.high, log=True
        ),
    }
    timings["ask"].append(time.perf_counter() - started)
    jitter = random.Random(trial.number)  # as the simulated workers: epochs differ in length
    pruned, value = False, 0.0
    for epoch in range(1, spec.recipe.coarse.epochs + 1):
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
    if url.startswith("sqlite"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url)


def baseline(
    backend: str, n: int, trials: int, epochs: int, epoch_seconds: float
) -> dict[str, Any]:
    """The same trials as ours, by number (``OurTrials``, in the same search space); each epoch
    of trial k takes as long as in ours."""
    with fresh_database(backend) as url:
        url = url.replace("postgresql://", "postgresql+psycopg://")
        optuna.create_study(study_name="bench", storage=optuna_storage(url), direction="maximize")
        counter = multiprocessing.get_context("spawn").Value("i", 0)
        args = (url, trials, epochs, epoch_seconds, counter)
        started, results = run_processes(optuna_worker, n, args)
    return summarize(started, results)


# --- reporting ----------------------------------------------------------------------------------


def merge(parts: list[Timings]) -> Timings:
    merged: Timings = {}
    for part in parts:
        for kind, values in part.items():
            merged.setdefault(kind, []).extend(values)
    return merged


def summarize(started: float, results: list[Any]) -> dict[str, Any]:
    """Calls by kind, errors, the trial window (the first trial begun to the last one ended:
    what trial lifecycles per second count) and the whole run, from the moment all were ready."""
    return {
        "timings": merge([r[0] for r in results]),
        "errors": [e for r in results for e in r[1]],
        "trial_seconds": max(r[3] for r in results) - min(r[2] for r in results),
        "seconds": max(r[4] for r in results) - started,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def describe(result: dict[str, Any], trials: int) -> str:
    calls = [f"{kind} {1000 * percentile(v, 0.5):.1f}/{1000 * percentile(v, 0.95):.1f}"
             for kind, v in result["timings"].items()]  # fmt: skip
    everything = [x for v in result["timings"].values() for x in v]
    rate = trials / result["trial_seconds"]
    return (
        f"{', '.join(calls)} ms (p50/p95); all calls p95 {1000 * percentile(everything, 0.95):.1f}"
        f" ms; {rate:.1f} trials/s ({result['trial_seconds']:.1f} s of trials,"
        f" {result['seconds']:.1f} s in all); {len(result['timings'].get('report', []))} epochs"
        " reported"
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
        default=2.0,
        help="how long a worker waits after being told there is nothing to do (as the daemon)",
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
            ratio = theirs["trial_seconds"] / mine["trial_seconds"]
            print(f"{backend}, {n} workers ({processes} server processes):")
            for side, result in (("ours:    ", mine), ("baseline:", theirs)):
                errors = result["errors"]
                first = f" (the first: {errors[0]})" if errors else ""
                print(f"  {side} {describe(result, args.trials)}; errors {len(errors)}{first}")
            print(f"  ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
