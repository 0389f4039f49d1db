"""The recipe against what a user would pick instead, at equal compute, on several problems.

For each problem and seed, in one run:

- **recipe**: ``hpsearch run`` with the spec's defaults (the targeted stage off, so every method
  gets the same final training). Its search compute in trial-epochs (sanity checks, range test,
  coarse, refine: every stage before the final training) is the budget of every baseline;
- **random**: Optuna's RandomSampler, no pruning;
- **tpe-median**: Optuna's TPESampler with its MedianPruner;
- **tpe-asha**: TPESampler with the SuccessiveHalvingPruner (ASHA);
- **tpe-hyperband**: TPESampler with the HyperbandPruner;
- **one-epoch**: N random configurations trained one epoch each, then the best
  ``ONE_EPOCH_KEEP`` trained for the whole trial length (arXiv 2307.15422), N set by the budget.

The baselines search the spec's ranges (``search.lr``, ``search.weight_decay``, ``search.extra``)
log-uniformly (uniformly where the spec says ``log: false``), each trial the refine length with
the spec's own schedule: what a user who does not run the recipe would set up. Then each method's
choice (its best trial) gets the same final training (the recipe's ``run_final``) and one test
evaluation.

Every epoch of every trial is a point on a "best validation accuracy so far" curve over the
trial-epochs spent. Printed per problem and method: the best validation accuracy within the
budget and the test accuracy after the final training (mean and 95 % interval over seeds), and
the trial-epochs to reach two targets (median over seeds; "never" when half the seeds did not):
random search's median final best, and the strongest baseline's. Then ``speedup vs random`` (at
random's target) and ``speedup vs best baseline`` (at the strongest baseline's target, against the
baseline that reached it in the fewest trial-epochs), and at the end
``test accuracy: recipe A, best baseline B`` (means over the problems; per problem, the baseline
with the best mean test accuracy).

    python bench/search.py                 # every problem, seeds 0-4 (about 45 minutes here)
    python bench/search.py --quick         # digits-wide, seeds 0-2 (under 10 minutes here)
    python bench/search.py --problems shapes --seeds 0 1 2 3 4 --device cuda
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from scipy import stats  # type: ignore[import-untyped]

from hpsearch.data import DataBundle, load_data
from hpsearch.device import resolve_device
from hpsearch.local import run_search
from hpsearch.recipe import spec_config
from hpsearch.scheduling import optuna_name
from hpsearch.spec import StudySpec, load_spec, param_name, spec_with
from hpsearch.stages import run_final
from hpsearch.storage import Store
from hpsearch.training import Trainer

Curve = list[tuple[float, float | None]]  # (trial-epochs spent so far, val accuracy or None)
SEARCH_STAGES = ("sanity", "range_test", "coarse")
ONE_EPOCH_KEEP = 3  # configurations the one-epoch screening trains in full

# The problems. digits: the spec's own, well-chosen ranges. digits-wide: the ranges of a user who
# does not know the scale (seed 002's "0.001 ~ 1000") and three more dimensions. shapes: a
# CIFAR-shaped problem (32x32 colour, 10 classes) cut to fit this CPU: 2,000 images, the
# residual network at widths 8-16-32, the wide LR and weight-decay ranges, a budget of 100
# trial-epochs for the recipe (and so for every method).
WIDE = {
    "search.lr": {"low": 1e-6, "high": 10.0},
    "search.weight_decay": {"low": 1e-8, "high": 1e-1},
    "search.extra": {
        "model.dropout": {"low": 0.0, "high": 0.5, "log": False},
        "train.label_smoothing": {"low": 0.0, "high": 0.2, "log": False},
        "train.batch_size": {"low": 32, "high": 256, "log": True},
    },
}
PROBLEMS: dict[str, tuple[str, dict[str, Any]]] = {
    "digits": ("digits", {}),
    "digits-wide": ("digits", WIDE),
    "shapes": (
        "shapes",
        {
            "dataset.size": 2000,
            "model.widths": [8, 16, 32],
            "train.batch_size": 64,
            "recipe.final.epochs": 15,
            "recipe.final.early_stopping_patience": 5,
            "search.lr": WIDE["search.lr"],
            "search.weight_decay": WIDE["search.weight_decay"],
            "budget.trial_epochs": 100,  # the recipe sizes its rounds to it
        },
    ),
}
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {  # Optuna's defaults, each
    "random": optuna.pruners.NopPruner,
    "tpe-median": optuna.pruners.MedianPruner,
    "tpe-asha": optuna.pruners.SuccessiveHalvingPruner,
    "tpe-hyperband": optuna.pruners.HyperbandPruner,
}
METHODS = ("recipe", "random", "tpe-median", "tpe-asha", "tpe-hyperband", "one-epoch")


@dataclass
class Run:
    """One method on one problem and seed."""

    curve: Curve
    val: float = 0.0  # the chosen configuration's validation accuracy after the final training
    test: float = 0.0  # ... and its test accuracy
    params: dict[str, Any] = field(default_factory=dict)


def problem_spec(problem: str, seed: int, overrides: Sequence[str] = ()) -> StudySpec:
    """The problem's spec for ``seed``; ``overrides`` (``key.path=value``) change the recipe's."""
    name, updates = PROBLEMS[problem]
    return spec_with(
        load_spec(name, overrides),
        {**updates, "seed": seed, "name": f"bench-{seed}", "recipe.final.targeted_stage": False},
    )


def run_recipe(problem: str, seed: int, device: str, overrides: Sequence[str]) -> Run:
    """The whole recipe; its search curve rebuilt from the stored stages and trials, in order."""
    spec = problem_spec(problem, seed, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        summary = run_search(spec, url, device=device).json_data()
        store = Store(url)
        curve: Curve = []
        for stage in summary["stages"]:
            name = stage["name"]
            searched = name in SEARCH_STAGES or name.startswith("refine-")
            if stage["status"] == "pending" or not searched:
                continue
            accuracies: list[float] = []
            if name == "coarse" or name.startswith("refine-"):
                study = optuna.load_study(
                    study_name=optuna_name(spec.name, name), storage=store.url
                )
                for trial in sorted(study.trials, key=lambda t: t.number):
                    history = trial.user_attrs.get("history", [])
                    # a continued trial's first epochs are its parent's, counted with it
                    continued = trial.user_attrs.get("continues") is not None
                    start = trial.user_attrs["resume"]["epoch"] if continued else 0
                    accuracies += [m["val_accuracy"] for m in history[start:]]
            _extend(curve, accuracies, stage.get("trial_epochs", 0.0))
        store.close()
    best = summary["best"]
    return Run(curve, best["val_accuracy"], best["test_accuracy"], best["params"])


def _extend(curve: Curve, accuracies: Sequence[float], spent: float) -> None:
    """Add a stage's epochs to ``curve``; what it spent without a validation accuracy (sanity
    checks, range test, diverged trials) as one step without one."""
    start = curve[-1][0] if curve else 0.0
    curve += [(start + i + 1, acc) for i, acc in enumerate(accuracies)]
    leftover = spent - len(accuracies)
    if leftover > 0:
        curve.append(((curve[-1][0] if curve else 0.0) + leftover, None))


def suggest(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    """A configuration over the spec's search space (by spec path; each drawn under the Optuna
    name the recipe's trials give it)."""
    params: dict[str, Any] = {}
    for path, searched in spec.search.dimensions().items():
        low, high, log = searched.low, searched.high, searched.log
        if searched.integer:
            params[path] = trial.suggest_int(param_name(path), int(low), int(high), log=log)
        else:
            params[path] = trial.suggest_float(param_name(path), low, high, log=log)
    return params


class Budget:
    """The trial-epochs a baseline may spend, and its curve."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.curve: Curve = []

    @property
    def spent(self) -> float:
        return self.curve[-1][0] if self.curve else 0.0

    def train(
        self,
        spec: StudySpec,
        data: DataBundle,
        params: Mapping[str, Any],
        epochs: int,
        trial: optuna.Trial | None = None,
    ) -> tuple[float | None, bool]:
        """Train ``params`` for ``epochs`` (each epoch reported to ``trial``'s pruner); its best
        validation accuracy (None: diverged) and whether it was pruned."""
        best: list[float] = []
        pruned = False

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            nonlocal pruned
            self.curve.append((self.spent + 1, metrics["val_accuracy"]))
            best.append(metrics["val_accuracy"])
            if trial is not None:
                trial.report(metrics["val_accuracy"], epoch)
                pruned = trial.should_prune()
            return self.spent >= self.total or pruned

        run_spec = spec_with(spec, {**params, "train.epochs": epochs})
        try:
            Trainer(run_spec, data, data.mean.device).fit(report=report)
        except Exception:  # a diverged configuration: its epochs are spent all the same
            return None, False
        return (max(best) if best else None), pruned


def optuna_search(
    spec: StudySpec, data: DataBundle, budget: Budget, sampler: Any, pruner: Any
) -> dict[str, Any]:
    """Trials of the refine length until the budget is spent; the best trial's parameters."""
    epochs = round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    chosen: tuple[float, dict[str, Any]] = (-1.0, {})
    while budget.spent < budget.total:
        trial = study.ask()
        params = suggest(trial, spec)
        value, pruned = budget.train(spec, data, params, epochs, trial)
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
            continue
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        study.tell(trial, value)
        if value > chosen[0]:
            chosen = (value, params)
    return chosen[1] or _any_params(spec)


def one_epoch(spec: StudySpec, data: DataBundle, budget: Budget, seed: int) -> dict[str, Any]:
    """Screen random configurations one epoch each; train the best few for the trial length."""
    epochs = round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    screened: list[tuple[float, dict[str, Any]]] = []
    while budget.spent < budget.total - ONE_EPOCH_KEEP * epochs:
        trial = study.ask()
        params = suggest(trial, spec)
        value, _ = budget.train(spec, data, params, 1)
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
            continue
        study.tell(trial, value)
        screened.append((value, params))
    screened.sort(key=lambda s: -s[0])
    chosen: tuple[float, dict[str, Any]] = (-1.0, {})
    for _, params in screened[:ONE_EPOCH_KEEP]:
        value, _ = budget.train(spec, data, params, epochs)
        if value is not None and value > chosen[0]:
            chosen = (value, params)
    return chosen[1] or _any_params(spec)


def _any_params(spec: StudySpec) -> dict[str, Any]:
    """Every trial diverged: the spec's own configuration."""
    return spec_config(spec)


def run_baseline(problem: str, seed: int, method: str, total: float, device: str) -> Run:
    spec = problem_spec(problem, seed)
    torch_device = resolve_device(device)
    data = load_data(spec.dataset, spec.seed, torch_device)
    budget = Budget(total)
    if method == "one-epoch":
        params = one_epoch(spec, data, budget, seed)
    else:
        samplers = optuna.samplers
        sampler = samplers.RandomSampler if method == "random" else samplers.TPESampler
        params = optuna_search(spec, data, budget, sampler(seed=seed), PRUNERS[method]())
    final = run_final(spec, [params], data, torch_device).final
    return Run(budget.curve, final.val_accuracy, final.test_accuracy, params)


def _init_worker() -> None:
    torch.set_num_threads(1)  # one core per process: the pool runs as many as there are cores
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def best(curve: Curve) -> float:
    return max((acc for _, acc in curve if acc is not None), default=0.0)


def epochs_to(curve: Curve, target: float) -> float:
    """Trial-epochs spent when the best-so-far first reaches ``target`` (inf if never)."""
    return next((spent for spent, acc in curve if acc is not None and acc >= target), math.inf)


def interval(values: Sequence[float]) -> str:
    """Mean and the half-width of its 95 % t-interval."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return f"{mean:.4f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.4f} ± {half:.4f}"


def median_epochs(runs: Sequence[Run], target: float) -> float:
    """The median over seeds of the trial-epochs to ``target`` (inf when half never got there)."""
    return float(np.median([epochs_to(run.curve, target) for run in runs]))


def report(problem: str, runs: Mapping[str, list[Run]], budgets: Sequence[float]) -> str:
    """The problem's table and its two speedups; the best baseline's test accuracy last."""
    baselines = [m for m in METHODS if m != "recipe"]
    t_random = float(np.median([best(r.curve) for r in runs["random"]]))
    strongest = max(baselines, key=lambda m: float(np.median([best(r.curve) for r in runs[m]])))
    t_strong = float(np.median([best(r.curve) for r in runs[strongest]]))
    lines = [
        f"== {problem}: {len(budgets)} seeds, budget {interval(budgets)} trial-epochs; targets: "
        f"random's median best {t_random:.4f}, {strongest}'s {t_strong:.4f}",
        f"{'method':14s} {'best val':>17s} {'test acc':>17s} {'to random':>10s} "
        f"{'to strongest':>12s}",
    ]
    for method in METHODS:
        done = runs[method]
        lines.append(
            f"{method:14s} {interval([best(r.curve) for r in done]):>17s} "
            f"{interval([r.test for r in done]):>17s} {median_epochs(done, t_random):>10.0f} "
            f"{median_epochs(done, t_strong):>12.0f}"
        )
    recipe_r = median_epochs(runs["recipe"], t_random)
    recipe_s = median_epochs(runs["recipe"], t_strong)
    fastest = min(baselines, key=lambda m: median_epochs(runs[m], t_strong))
    lines.append(f"speedup vs random: {_ratio(median_epochs(runs['random'], t_random), recipe_r)}")
    lines.append(
        f"speedup vs best baseline: {_ratio(median_epochs(runs[fastest], t_strong), recipe_s)} "
        f"({fastest})"
    )
    return "\n".join(lines)


def _ratio(baseline: float, recipe: float) -> str:
    if math.isinf(recipe):
        return "0.00 (the recipe did not reach the target in half the seeds)"
    if math.isinf(baseline):
        return "inf (the baseline did not reach the target in half the seeds)"
    return f"{baseline / recipe:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="digits-wide, seeds 0 1 2")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change the recipe's spec (e.g. recipe.coarse.pruner=successive_halving)",
    )
    args = parser.parse_args()
    if args.quick:
        args.problems, args.seeds = ["digits-wide"], [0, 1, 2]
    units = [(p, s) for p in args.problems for s in args.seeds]
    recipes: dict[tuple[str, int], Run] = {}
    jobs: dict[tuple[str, int, str], Future[Run]] = {}
    with ProcessPoolExecutor(args.jobs, initializer=_init_worker) as pool:
        started = {
            pool.submit(run_recipe, p, s, args.device, args.overrides): (p, s) for p, s in units
        }
        for done in as_completed(started):  # a seed's baselines start once its budget is known
            problem, seed = started[done]
            recipes[(problem, seed)] = run = done.result()
            for method in METHODS[1:]:
                jobs[(problem, seed, method)] = pool.submit(
                    run_baseline, problem, seed, method, run.curve[-1][0], args.device
                )
        runs = {k: f.result() for k, f in jobs.items()}
    budgets = {unit: run.curve[-1][0] for unit, run in recipes.items()}
    recipe_tests, baseline_tests = [], []
    for problem in args.problems:
        by_method = {m: [runs[(problem, s, m)] for s in args.seeds] for m in METHODS[1:]}
        by_method["recipe"] = [recipes[(problem, s)] for s in args.seeds]
        print(report(problem, by_method, [budgets[(problem, s)] for s in args.seeds]), flush=True)
        tests = {m: float(np.mean([r.test for r in by_method[m]])) for m in METHODS}
        recipe_tests.append(tests.pop("recipe"))
        baseline_tests.append(max(tests.values()))
    print(
        f"test accuracy: recipe {np.mean(recipe_tests):.4f}, "
        f"best baseline {np.mean(baseline_tests):.4f}"
    )


if __name__ == "__main__":
    main()
