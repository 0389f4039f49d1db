"""The recipe against what a user would pick instead, at equal compute, on problems that
separate methods.

For each problem and seed, in one run:

- **recipe**: ``hpsearch run`` with the spec's defaults (the targeted stage off, so every method
  gets the same final training), within the problem's ``budget.trial_epochs``: every stage
  before the final training (sanity checks, range test, coarse, refine) counts;
- **random**: Optuna's RandomSampler, no pruning;
- **tpe-median**: Optuna's TPESampler with its MedianPruner;
- **tpe-asha**: TPESampler with the SuccessiveHalvingPruner (ASHA);
- **tpe-hyperband**: TPESampler with the HyperbandPruner;
- **one-epoch**: N random configurations trained one epoch each, then the best
  ``ONE_EPOCH_KEEP`` trained for the whole trial length (arXiv 2307.15422), N set by the budget.

Every method has the same budget under the same rule: no new trial starts once it is spent (a
running one finishes). The baselines search the spec's ranges (``search.lr``,
``search.weight_decay``, ``search.extra``) log-uniformly (uniformly where the spec says ``log:
false``), each trial the refine length with the spec's own schedule (cosine): what a user who
does not run the recipe would set up. Then each method's choice (its best trial) gets the same
final training (the recipe's ``run_final``) and one test evaluation.

The problems (``bench/problems.py`` says how each is generated): clutter, noisy-labels and
textures separate methods; digits saturates and is kept as a row marked so. For each, the bench
prints what shows separation: (a) the validation images, (b) the best validation accuracy any
method reached (below 0.95), (c) a median configuration of the ranges (the median of random
search's completed trials) against that best.

Every epoch of every trial is a point on a "best validation accuracy so far" curve over the
trial-epochs spent. Printed per problem and method: the best validation accuracy at 25 %, 50 %
and 100 % of the budget and the test accuracy after the final training (mean and 95 % interval
over seeds), and the trial-epochs to reach two targets (median over seeds; "inf" when half the
seeds did not): random search's median final best, and the strongest baseline's. Then
``speedup vs random`` (at random's target) and ``speedup vs best baseline`` (at the strongest
baseline's target, against the baseline that reached it in the fewest trial-epochs), the share
of the budget the up-front stages took, and the paired test accuracy difference recipe - best
baseline (the baseline with the best mean test accuracy) over seeds: its mean, 95 % interval
and Wilcoxon signed-rank p. One plot per problem (median best-so-far against trial-epochs, a
25-75 % band per method) goes to ``docs/figures/search-<problem>.png``.

The baselines do not depend on the recipe, so their runs are kept in a cache (beside the
generated data, keyed by the spec fields a baseline reads, the data file, the seed, the method
and ``BASELINES_VERSION``): trying a lever of the recipe (``--set``) reruns the recipe only.
``--fresh`` ignores the cache.

    python bench/search.py                 # every problem, seeds 0-9 (about 1.8 h on 2 cores)
    python bench/search.py --quick         # textures, seeds 0-2 (3 min with the baselines cached)
    python bench/search.py --problems clutter --seeds 0 1 2 --set recipe.refine.sampler=tpe
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from problems import GENERATORS, write_problem
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
UP_FRONT = ("sanity", "range_test")
ONE_EPOCH_KEEP = 3  # configurations the one-epoch screening trains in full
FRACTIONS = (0.25, 0.5, 1.0)  # of the budget, where the best validation accuracy is read
DATA = Path(tempfile.gettempdir()) / "hpsearch-bench-problems"  # the generated array files
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"

# The problems. digits: the spec's own, well-chosen ranges; it saturates (270 validation images,
# every method within a few images of 100 %), kept as a row marked so. The three separating
# problems (bench/problems.py says how each is made): 16x16, 3,000 training and 2,000 validation
# images, a small CNN (widths 16-32), a budget of 60 trial-epochs for the recipe (and so for every
# method), a final training of 15 epochs. clutter searches the spec's ranges; noisy-labels adds
# dropout and label smoothing, which decide under label noise; textures the ranges of a user who
# does not know the scale (LR 1e-6 to 10).
SMALL = {
    "model.widths": [16, 32],
    "model.depth": 1,
    "train.batch_size": 64,
    "augment.translate": 1,
    "recipe.final.epochs": 15,
    "recipe.final.early_stopping_patience": 5,
    "budget.trial_epochs": 60,  # the recipe sizes its rounds to it
}
WIDE = {
    "search.lr": {"low": 1e-6, "high": 10.0},
    "search.weight_decay": {"low": 1e-8, "high": 1e-1},
}
REGULARIZERS = {
    "search.extra": {
        "model.dropout": {"low": 0.0, "high": 0.5, "log": False},
        "train.label_smoothing": {"low": 0.0, "high": 0.3, "log": False},
    }
}
PROBLEMS: dict[str, tuple[str, dict[str, Any]]] = {
    "clutter": ("digits", SMALL),
    "noisy-labels": ("digits", {**SMALL, **REGULARIZERS}),
    "textures": ("digits", {**SMALL, **WIDE}),
    "digits": ("digits", {"budget.trial_epochs": 150}),
}
BASELINES_VERSION = 1  # bump when a baseline's code changes: the cache then runs them again
QUICK = ("textures", (0, 1, 2))  # --quick: one separating problem, three seeds
SATURATED = {"digits"}  # kept to show it: no method can be told apart there
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
    up_front: float = 0.0  # the recipe's sanity checks and range test, in trial-epochs
    trials: list[float] = field(default_factory=list)  # each completed trial's best val accuracy
    val_images: int = 0


def problem_spec(problem: str, seed: int, overrides: Sequence[str] = ()) -> StudySpec:
    """The problem's spec for ``seed``; ``overrides`` (``key.path=value``) change the recipe's."""
    name, updates = PROBLEMS[problem]
    if problem in GENERATORS:
        path = str(DATA / f"{problem}.npz")
        updates = {**updates, "dataset": {"name": "arrays", "path": path}}
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
            if stage["status"] in ("pending", "skipped") or not searched:
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
    up_front = sum(s.get("trial_epochs", 0.0) for s in summary["stages"] if s["name"] in UP_FRONT)
    return Run(
        curve, best["val_accuracy"], best["test_accuracy"], best["params"], up_front=up_front
    )


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
        self.trials: list[float] = []  # each trial trained to its end: its best val accuracy

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
            return pruned  # the trial ends; no new one starts once the budget is spent

        run_spec = spec_with(spec, {**params, "train.epochs": epochs})
        try:
            Trainer(run_spec, data, data.mean.device).fit(report=report)
        except Exception:  # a diverged configuration: its epochs are spent all the same
            return None, False
        if best and not pruned and len(best) == epochs:
            self.trials.append(max(best))
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


def run_baseline(problem: str, seed: int, method: str, device: str) -> Run:
    """A baseline under the recipe's rule: no new trial once the budget is spent."""
    spec = problem_spec(problem, seed)
    total = float(spec.budget.trial_epochs or 0)
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
    return Run(
        budget.curve,
        final.val_accuracy,
        final.test_accuracy,
        params,
        trials=budget.trials,
        val_images=len(data.val),
    )


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


def best_by(curve: Curve, spent: float) -> float:
    """The best validation accuracy reached within ``spent`` trial-epochs."""
    return max((acc for at, acc in curve if acc is not None and at <= spent), default=0.0)


def paired(diffs: Sequence[float]) -> str:
    """Mean of paired differences, its 95 % t-interval and the Wilcoxon signed-rank p."""
    mean = float(np.mean(diffs))
    if len(diffs) < 2:
        return f"{mean:+.4f}"
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    p = stats.wilcoxon(diffs).pvalue if any(d != 0 for d in diffs) else 1.0
    return f"{mean:+.4f} [95 % interval {mean - half:+.4f}, {mean + half:+.4f}], Wilcoxon p {p:.3f}"


def report(problem: str, runs: Mapping[str, list[Run]], budgets: Sequence[float]) -> str:
    """The problem's separation, its table, the two speedups and the paired test difference."""
    baselines = [m for m in METHODS if m != "recipe"]
    t_random = float(np.median([best(r.curve) for r in runs["random"]]))
    strongest = max(baselines, key=lambda m: float(np.median([best(r.curve) for r in runs[m]])))
    t_strong = float(np.median([best(r.curve) for r in runs[strongest]]))
    nominal = float(problem_spec(problem, 0).budget.trial_epochs or max(budgets))
    shares = [r.up_front / nominal for r in runs["recipe"]]  # of the budget every method had
    top = max(best(r.curve) for m in METHODS for r in runs[m])
    configs = [v for r in runs["random"] for v in r.trials]
    median_config = float(np.median(configs)) if configs else 0.0
    saturated = " SATURATED (kept as a row: methods cannot be told apart)" * (problem in SATURATED)
    lines = [
        f"== {problem}: {len(budgets)} seeds, budget {nominal:g} trial-epochs (the recipe "
        f"spent {interval(budgets)}); up-front stages (sanity checks, range test) "
        f"{np.median(shares):.1%} of the budget (max {max(shares):.1%}){saturated}",
        f"separation: (a) validation images {runs['random'][0].val_images}; (b) best validation "
        f"accuracy of any method {top:.4f} ({'<' if top < 0.95 else '>='} 0.95); (c) a median "
        f"configuration of the ranges {median_config:.4f} ({len(configs)} random trials), "
        f"{100 * (top - median_config):.1f} points below the best",
        f"targets: random's median best {t_random:.4f}, {strongest}'s {t_strong:.4f}",
        f"{'method':14s} {'best val @25%':>17s} {'@50%':>17s} {'@100%':>17s} "
        f"{'test acc':>17s} {'to random':>10s} {'to strongest':>12s}",
    ]
    for method in METHODS:
        done = runs[method]
        at = [  # of the budget every method had; at 100 %, each run's end (a last trial's
            # epochs may run past it, for every method alike)
            interval([best_by(r.curve, f * nominal) if f < 1 else best(r.curve) for r in done])
            for f in FRACTIONS
        ]
        lines.append(
            f"{method:14s} {at[0]:>17s} {at[1]:>17s} {at[2]:>17s} "
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
    by_test = max(baselines, key=lambda m: float(np.mean([r.test for r in runs[m]])))
    diffs = [r.test - b.test for r, b in zip(runs["recipe"], runs[by_test], strict=True)]
    lines.append(
        f"test accuracy, recipe - best baseline ({by_test}), paired over seeds: {paired(diffs)}"
    )
    return "\n".join(lines)


def plot(problem: str, runs: Mapping[str, list[Run]], budgets: Sequence[float]) -> Path:
    """Median best-so-far validation accuracy against trial-epochs, a 25-75 % band per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.linspace(0, float(np.median(budgets)), 200)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for method in METHODS:
        curves = np.array(
            [[best_by(r.curve, x) or np.nan for x in xs] for r in runs[method]], dtype=float
        )
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no seed has a value there yet
            low, mid, high = np.nanpercentile(curves, [25, 50, 75], axis=0)
        (line,) = ax.plot(xs, mid, label=method, lw=2.2 if method == "recipe" else 1.4)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xlabel("trial-epochs spent")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"{problem}: median over {len(budgets)} seeds, 25-75 % band")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"search-{problem}.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _ratio(baseline: float, recipe: float) -> str:
    if math.isinf(recipe):
        return "0.00 (the recipe did not reach the target in half the seeds)"
    if math.isinf(baseline):
        return "inf (the baseline did not reach the target in half the seeds)"
    return f"{baseline / recipe:.2f}"


def _cache_key(problem: str, seed: int, method: str) -> str:
    """What a baseline's run depends on: the parts of the problem's spec a baseline reads (its
    data, model, training, ranges, budget, trial length and final training: never the recipe's
    own stages, whose levers ``--set`` and the defaults change), its data file, the seed, the
    method and ``BASELINES_VERSION``."""
    spec = problem_spec(problem, seed)
    read = spec.model_dump(
        mode="json", include={"seed", "dataset", "model", "augment", "train", "search"}
    )
    read |= {
        "trial_epochs": spec.budget.trial_epochs,
        "trial_length": round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor),
        "final": spec.recipe.final.model_dump(mode="json"),
    }
    data = (DATA / f"{problem}.npz").read_bytes() if problem in GENERATORS else b""
    what = f"{BASELINES_VERSION}|{problem}|{seed}|{method}|{json.dumps(read, sort_keys=True)}"
    return hashlib.sha256(what.encode() + data).hexdigest()


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--quick", action="store_true", help=f"{QUICK[0]}, seeds {QUICK[1]}")
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
    parser.add_argument(
        "--fresh", action="store_true", help="run the baselines again, not from the cache"
    )
    args = parser.parse_args()
    if args.quick:
        args.problems, args.seeds = [QUICK[0]], list(QUICK[1])
    for problem in args.problems:
        if problem in GENERATORS:
            write_problem(problem, DATA)
    cache_file = DATA / "baselines.json"
    cache = {} if args.fresh else _load_cache(cache_file)
    units = [(p, s) for p in args.problems for s in args.seeds]
    runs: dict[tuple[str, int, str], Run] = {}
    jobs: dict[Future[Run], tuple[str, int, str]] = {}
    with ProcessPoolExecutor(args.jobs, initializer=_init_worker) as pool:
        for problem, seed in units:  # the recipes first: they take longest
            job = pool.submit(run_recipe, problem, seed, args.device, args.overrides)
            jobs[job] = (problem, seed, "recipe")
        for problem, seed in units:
            for method in METHODS[1:]:
                key = _cache_key(problem, seed, method)
                if key in cache:
                    runs[(problem, seed, method)] = Run(**cache[key])
                    continue
                job = pool.submit(run_baseline, problem, seed, method, args.device)
                jobs[job] = (problem, seed, method)
        for done in as_completed(jobs):
            problem, seed, method = unit = jobs[done]
            runs[unit] = done.result()
            if method != "recipe":
                cache[_cache_key(problem, seed, method)] = asdict(runs[unit])
                cache_file.write_text(json.dumps(cache))
    recipe_tests, baseline_tests = [], []
    for problem in args.problems:
        by_method = {m: [runs[(problem, s, m)] for s in args.seeds] for m in METHODS}
        budgets = [r.curve[-1][0] for r in by_method["recipe"]]
        print(report(problem, by_method, budgets), flush=True)
        print(f"plot: {plot(problem, by_method, budgets)}", flush=True)
        if problem in SATURATED:
            continue
        tests = {m: float(np.mean([r.test for r in by_method[m]])) for m in METHODS}
        recipe_tests.append(tests.pop("recipe"))
        baseline_tests.append(max(tests.values()))
    if recipe_tests:
        print(
            f"test accuracy (the separating problems): recipe {np.mean(recipe_tests):.4f}, "
            f"best baseline {np.mean(baseline_tests):.4f}"
        )


if __name__ == "__main__":
    main()
