"""How well short, cheap trials rank configurations: rank correlation of one- and three-epoch
measures with a full-length trial, on problems that separate methods.

For each problem, N configurations are drawn at random from the problem's search ranges
(Optuna's RandomSampler over ``search.lr``, ``search.weight_decay``, ``search.extra``:
log-uniformly, uniformly where the spec says ``log: false``), and each is trained, with the
spec's seed (the same initial weights for every run of a configuration), four ways:

- **reference**: the trial length (``--epochs``; default the recipe's refine trial length,
  ``round(recipe.coarse.epochs * recipe.refine.epochs_factor)``, 9 here) with a cosine schedule
  and the spec's warmup, what the final ranking cares about: its best validation accuracy;
- **constant**: a constant LR, no warmup, the trial length: its validation accuracy after epoch 1
  and after epoch 3, both read from the one run's reports (stopped there: at a constant LR and
  without warmup the first epochs do not depend on the run's length);
- **cosine-1**, **cosine-3**: the cosine schedule compressed into a run of 1 and of 3 epochs
  (separate runs, no warmup): the validation accuracy after the last epoch.

No early stopping in any run. A diverged configuration (an exception from the Trainer, or a NaN
accuracy) counts with the accuracy of chance (0.1): for the reference whatever epoch it diverged
at; for a short measure when it diverged at or before the epoch the measure reads.

Printed per problem: the reference's spread, then for each short measure (its cost in
trial-epochs) Spearman's rho with the reference and its 95 % bootstrap interval (percentile,
configurations resampled), rho over the reference's top half only (where a search's choice is
made), the overlap of its top 5 with the reference's top 5, whether its top 5 hold the
reference's best, and how many runs diverged. The last lines, one per problem: the measure that
ranks best (on a tie, the cheaper), and its paired bootstrap margin over the runner-up.

    python bench/fidelity.py             # clutter and textures, 50 configs: 1,600 training epochs
    python bench/fidelity.py --configs 10 --problems textures

The figures go in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch
from problems import GENERATORS, write_problem
from scipy import stats  # type: ignore[import-untyped]
from search import DATA, PROBLEMS, problem_spec, suggest

from hpsearch.data import DataBundle, load_data
from hpsearch.device import resolve_device
from hpsearch.spec import StudySpec, spec_with
from hpsearch.training import Trainer

CHANCE = 0.1  # the accuracy a diverged run counts with (ten classes)
SHORT = (1, 3)  # the epochs the short measures read
TOP = 5  # the top-k compared
BOOTSTRAP = 2000  # resamples for the intervals
DEFAULT_PROBLEMS = ("clutter", "textures")


@dataclass(frozen=True)
class Kind:
    """One way a configuration is trained."""

    name: str
    schedule: str
    epochs: int
    warmup: bool  # the spec's warmup (True) or none
    stop_after: int | None = None  # stop the run after this epoch (its reports read so far)


@dataclass(frozen=True)
class Measure:
    """A short measure: the validation accuracy after ``epoch`` of the ``kind`` run."""

    name: str
    kind: str
    epoch: int


MEASURES = [Measure(f"constant, epoch {k}", "constant", k) for k in SHORT] + [
    Measure(f"cosine over {k} epoch{'s' * (k > 1)}", f"cosine-{k}", k) for k in SHORT
]


@dataclass
class Trained:
    """One run: the validation accuracy of each epoch it reported, and why it stopped early."""

    accuracies: list[float]
    error: str | None = None  # the exception's type when it diverged


def kinds(epochs: int) -> list[Kind]:
    """The runs of each configuration, the longest first."""
    return [
        Kind("reference", "cosine", epochs, warmup=True),
        Kind("constant", "constant", epochs, warmup=False, stop_after=max(SHORT)),
        *(Kind(f"cosine-{k}", "cosine", k, warmup=False) for k in SHORT),
    ]


_DATA: dict[tuple[str, int, str], DataBundle] = {}  # per worker process: each problem's data


def _data(problem: str, spec: StudySpec, device: str) -> DataBundle:
    key = (problem, spec.seed, device)
    if key not in _DATA:
        _DATA[key] = load_data(spec.dataset, spec.seed, resolve_device(device))
    return _DATA[key]


def train(problem: str, seed: int, params: Mapping[str, Any], kind: Kind, device: str) -> Trained:
    """Train ``params`` the ``kind`` way; every epoch's validation accuracy until it stopped."""
    spec = problem_spec(problem, seed)
    updates: dict[str, Any] = {
        **params,
        "train.epochs": kind.epochs,
        "train.schedule": kind.schedule,
        "train.early_stopping_patience": None,
    }
    if not kind.warmup:
        updates["train.warmup_epochs"] = 0.0
    run_spec = spec_with(spec, updates)
    data = _data(problem, spec, device)
    accuracies: list[float] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        accuracies.append(float(metrics["val_accuracy"]))
        return kind.stop_after is not None and epoch >= kind.stop_after

    try:
        Trainer(run_spec, data, data.mean.device).fit(report=report)
    except Exception as error:  # diverged: chance from here on
        return Trained(accuracies, type(error).__name__)
    return Trained(accuracies)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else CHANCE


def reference_value(run: Trained) -> float:
    """The reference's best validation accuracy; chance if it diverged."""
    if run.error is not None or not run.accuracies:
        return CHANCE
    return _finite(max(run.accuracies))


def measure_value(run: Trained, epoch: int) -> float:
    """The accuracy after ``epoch``; chance if the run diverged before reporting it."""
    return _finite(run.accuracies[epoch - 1]) if len(run.accuracies) >= epoch else CHANCE


def draw(problem: str, seed: int, n: int) -> list[dict[str, Any]]:
    """``n`` random configurations over the problem's search ranges (seeded per problem)."""
    spec = problem_spec(problem, seed)
    sequence = np.random.SeedSequence([seed, list(PROBLEMS).index(problem)])
    sampler_seed = int(sequence.generate_state(1)[0] % 2**31)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sampler_seed))
    return [suggest(study.ask(), spec) for _ in range(n)]


def bootstrap_rhos(
    reference: np.ndarray, measures: Mapping[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Spearman's rho of each measure with the reference over the same ``BOOTSTRAP`` resamples
    of the configurations (NaN where a resample leaves either side constant)."""
    n = len(reference)
    picks = rng.integers(0, n, (BOOTSTRAP, n))

    def centred_ranks(values: np.ndarray) -> np.ndarray:
        ranks = stats.rankdata(values[picks], axis=1)
        return np.asarray(ranks - ranks.mean(axis=1, keepdims=True))

    ref = centred_ranks(reference)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, values in measures.items():
            m = centred_ranks(values)
            denom = np.sqrt((ref**2).sum(axis=1) * (m**2).sum(axis=1))
            out[name] = np.where(denom > 0, (ref * m).sum(axis=1) / denom, np.nan)
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (NaN when either side is constant or there are under 3 points)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.spearmanr(x, y)[0])


def interval(samples: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of the finite ``samples`` (NaN if none)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def top(values: np.ndarray, k: int) -> set[int]:
    """The indices of the ``k`` highest values (ties: the earlier configuration)."""
    return {int(i) for i in np.argsort(-values, kind="stable")[:k]}


def report(
    problem: str,
    epochs: int,
    reference: np.ndarray,
    measures: Mapping[str, np.ndarray],
    diverged: Mapping[str, int],
    errors: Sequence[str],
    seed: int,
) -> tuple[str, str]:
    """The problem's table, and its verdict line."""
    n = len(reference)
    k = min(TOP, n)
    rng = np.random.default_rng([seed, 1])
    boot = bootstrap_rhos(reference, measures, rng)
    best_set = {int(i) for i in np.flatnonzero(reference == reference.max())}
    ref_top = top(reference, k)
    upper = reference >= np.median(reference)  # the reference's top half (ties kept)
    kinds_of = {m.name: m.kind for m in MEASURES}
    cost = {m.name: m.epoch for m in MEASURES}
    failures = f"; exceptions: {', '.join(sorted(set(errors)))}" if errors else ""
    lines = [
        f"== {problem}: {n} configurations (seed {seed}); reference: cosine over {epochs} epochs, "
        f"best validation accuracy: median {np.median(reference):.4f}, best {reference.max():.4f},"
        f" at chance {int(np.sum(reference <= CHANCE))}, diverged {diverged['reference']}"
        f"{failures}",
        f"{'measure':24s} {'epochs':>6s} {'Spearman rho [95 % interval]':>29s} "
        f"{'rho top half':>12s} {f'top-{k} overlap':>13s} {f'best in top-{k}':>13s} "
        f"{'diverged':>8s}",
    ]
    rhos: dict[str, float] = {}
    for name, values in measures.items():
        rho = rhos[name] = spearman(values, reference)
        low, high = interval(boot[name])
        half = spearman(values[upper], reference[upper])
        overlap = len(top(values, k) & ref_top)
        holds = "yes" if top(values, k) & best_set else "no"
        lines.append(
            f"{name:24s} {cost[name]:>6d} {f'{rho:+.3f} [{low:+.3f}, {high:+.3f}]':>29s} "
            f"{half:>+12.3f} {f'{overlap}/{k}':>13s} {holds:>13s} "
            f"{diverged[kinds_of[name]]:>8d}"
        )
    # the highest rho first; on a tie, the cheaper measure
    ordered = sorted(rhos, key=lambda m: (-rhos[m] if math.isfinite(rhos[m]) else 2.0, cost[m]))
    first, second = ordered[0], ordered[1]
    low, high = interval(boot[first] - boot[second])
    separated = "separated" if low > 0 else "not separated"
    verdict = (
        f"verdict {problem}: {first} ranks best (rho {rhos[first]:+.3f}); over {second} "
        f"({rhos[second]:+.3f}) by {rhos[first] - rhos[second]:+.3f} "
        f"[95 % paired bootstrap {low:+.3f}, {high:+.3f}]: {separated}"
    )
    return "\n".join(lines), verdict


def _init_worker() -> None:
    torch.set_num_threads(1)  # one core per process: the pool runs as many as there are cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--problems", nargs="+", choices=list(PROBLEMS), default=list(DEFAULT_PROBLEMS)
    )
    parser.add_argument("--configs", type=int, default=50, help="configurations per problem")
    parser.add_argument(
        "--epochs", type=int, default=None, help="the reference's length (default: refine's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="draws the configurations; spec seed")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = parser.parse_args()
    if args.configs < 3:
        parser.error("--configs: at least 3 (a rank correlation needs them)")
    if args.epochs is not None and args.epochs < max(SHORT):
        parser.error(f"--epochs: at least {max(SHORT)} (the longest short measure)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for problem in args.problems:
        if problem in GENERATORS:
            write_problem(problem, DATA)
    plan: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    for problem in args.problems:
        spec = problem_spec(problem, args.seed)
        refine = round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor)
        plan[problem] = (args.epochs or refine, draw(problem, args.seed, args.configs))
    runs: dict[tuple[str, int, str], Trained] = {}
    jobs: dict[Future[Trained], tuple[str, int, str]] = {}
    with ProcessPoolExecutor(args.jobs, initializer=_init_worker) as pool:
        units = [
            (problem, i, kind)
            for problem, (epochs, configs) in plan.items()
            for kind in kinds(epochs)
            for i in range(len(configs))
        ]
        units.sort(key=lambda u: -u[2].epochs)  # the longest runs first
        for problem, i, kind in units:
            params = plan[problem][1][i]
            job = pool.submit(train, problem, args.seed, params, kind, args.device)
            jobs[job] = (problem, i, kind.name)
        for done in as_completed(jobs):
            runs[jobs[done]] = done.result()
    verdicts = []
    for problem, (epochs, configs) in plan.items():
        n = len(configs)
        ref_runs = [runs[(problem, i, "reference")] for i in range(n)]
        reference = np.array([reference_value(r) for r in ref_runs])
        measures = {
            m.name: np.array([measure_value(runs[(problem, i, m.kind)], m.epoch) for i in range(n)])
            for m in MEASURES
        }
        diverged = {
            kind.name: sum(runs[(problem, i, kind.name)].error is not None for i in range(n))
            for kind in kinds(epochs)
        }
        errors = [r.error for (p, _, _), r in runs.items() if p == problem and r.error]
        table, verdict = report(problem, epochs, reference, measures, diverged, errors, args.seed)
        print(table, flush=True)
        verdicts.append(verdict)
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
