"""Several trials per device: ``hpsearch worker --slots N`` against N = 1, on the same study.

For each N, in one run and on a fresh SQLite database each: ``hpsearch serve``, a study launched
through the REST API (the spec's recipe with ``--trials`` coarse trials and no refine round), and
one ``hpsearch worker --devices DEVICE --slots N --burst`` that works until the study is done.
From the coarse stage's Optuna trials (every trial ends before the final stage starts): trials
per hour and trial-epochs per hour, each from the first trial's start to the last one's end.
Trial-epochs per hour is the work rate (pruning ends some trials early, and with N trials at once
it may end others than with one); ``ratio`` is the best N's trial-epochs per hour over N = 1's.

    python bench/slots.py                                   # digits on the CPU, N = 1, 2
    python bench/slots.py --spec shapes --set dataset.size=2000 --set model.widths=[8,16,32]
    python bench/slots.py --slots 1 2 4 8 --device all --spec shapes   # on a GPU
    python bench/slots.py --repeats 2                       # each N twice, for the spread
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import optuna
from service import HPSEARCH, TOKENS, server  # the same server start as the service bench

from hpsearch.spec import load_spec, spec_with

HEADERS = {"Authorization": f"Bearer {TOKENS['HPSEARCH_ADMIN_TOKEN']}"}


def one_run(spec: dict[str, Any], slots: int, device: str) -> dict[str, float]:
    """Run the study with one worker of ``slots`` slots; the coarse stage's rates."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'slots.db'}"
        with server(url, processes=1) as base:
            created = httpx.post(f"{base}/api/studies", json=spec, headers=HEADERS, timeout=120)
            created.raise_for_status()
            command = [HPSEARCH, "worker", "--server", base, "--devices", device]
            command += ["--slots", str(slots), "--burst", "--spool", str(Path(tmp) / "spool")]
            env = os.environ | {"HPSEARCH_WORKER_TOKEN": TOKENS["HPSEARCH_WORKER_TOKEN"]}
            subprocess.run(
                command,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=3600,
            )
            address = f"{base}/api/studies/{created.json()['id']}"
            state = httpx.get(address, headers=HEADERS).json()["state"]
        trials = optuna.load_study(study_name=f"{spec['name']}:coarse", storage=url).trials
    assert state == "completed", state
    ended = [t for t in trials if t.datetime_start and t.datetime_complete]
    first = min(t.datetime_start for t in ended if t.datetime_start)
    last = max(t.datetime_complete for t in ended if t.datetime_complete)
    span = (last - first).total_seconds()
    epochs = sum(len(t.intermediate_values) for t in ended)
    return {
        "trials": len(ended),
        "epochs": epochs,
        "seconds": span,
        "trials_per_hour": 3600 * len(ended) / span,
        "epochs_per_hour": 3600 * epochs / span,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="digits")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu", help="the worker's --devices: cpu, all, 0,1")
    parser.add_argument("--trials", type=int, default=24, help="coarse trials of the study")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    args = parser.parse_args()
    spec = spec_with(
        load_spec(args.spec, args.overrides),
        {"name": "slots", "recipe.coarse.trials": args.trials, "recipe.refine.rounds": 0},
    ).model_dump(mode="json")
    rates: dict[int, list[float]] = {n: [] for n in args.slots}
    for repeat in range(args.repeats):
        for n in args.slots:
            run = one_run(spec, n, args.device)
            rates[n].append(run["epochs_per_hour"])
            print(
                f"{args.spec}, {args.device}, slots {n} (run {repeat + 1}): "
                f"{run['trials']:.0f} trials, {run['epochs']:.0f} trial-epochs in "
                f"{run['seconds']:.1f} s: {run['trials_per_hour']:.0f} trials/h, "
                f"{run['epochs_per_hour']:.0f} trial-epochs/h",
                flush=True,
            )
    mean = {n: sum(r) / len(r) for n, r in rates.items()}
    best = max(mean, key=lambda n: mean[n])
    spread = {n: f"{min(r):.0f}-{max(r):.0f}" for n, r in rates.items()}
    each = ", ".join(f"{n}: {mean[n]:.0f} ({spread[n]})" for n in mean)
    print(f"trial-epochs/h by slots (mean, range): {each}")
    print(f"best: {best} slots; ratio: {mean[best] / mean[args.slots[0]]:.2f}")


if __name__ == "__main__":
    main()
