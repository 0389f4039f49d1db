"""Search efficiency: the coarse-to-fine recipe against plain Optuna, on digits, several seeds.

For each seed, in one run:

- recipe: ``hpsearch run`` (every stage: sanity checks, range test, coarse, refine, final); its
  total compute in trial-epochs is the budget the baselines get;
- random: Optuna's RandomSampler, no pruning, log-uniform LR and weight decay over the spec's
  search space, each trial a normal short training run (the refine length, the spec's schedule);
- tpe: Optuna's default TPESampler with its MedianPruner, same trials.

Every epoch of every trial is a point on a "best validation accuracy so far" curve over the
trial-epochs spent. Printed per method: the best validation accuracy reached, and the trial-epochs
needed to reach plain random search's final best; and ``speedup: X``, random search's trial-epochs
to its final best over the recipe's trial-epochs to the same accuracy (summed over seeds).

    python bench/search.py                 # seeds 0 1 2
    python bench/search.py --seeds 0 1 2 3 4
    python bench/search.py --spec cifar10 --device cuda   # where poor configurations cost more
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from hpsearch.data import DataBundle, load_data
from hpsearch.device import resolve_device
from hpsearch.recipe import optuna_name
from hpsearch.scheduling import run_search
from hpsearch.spec import StudySpec, load_spec, spec_with
from hpsearch.storage import Store
from hpsearch.training import Trainer

Curve = list[tuple[float, float | None]]  # (trial-epochs spent so far, val accuracy or None)


def recipe_curve(
    spec: StudySpec, url: str, device: torch.device
) -> tuple[Curve, dict[str, object]]:
    """Run the recipe; rebuild its curve from the stored stages and trials, in execution order."""
    summary = run_search(spec, url, device=str(device)).json_data()
    store = Store(url)
    curve: Curve = []
    for stage in summary["stages"]:
        result = stage["result"] or {}
        if stage["status"] == "pending":
            continue
        spent = stage.get("trial_epochs", 0.0)
        accuracies: list[float] = []
        if stage["name"] == "coarse" or stage["name"].startswith("refine-"):
            study = optuna.load_study(
                study_name=optuna_name(spec.name, stage["name"]), storage=store.url
            )
            for trial in sorted(study.trials, key=lambda t: t.number):
                accuracies += [m["val_accuracy"] for m in trial.user_attrs.get("history", [])]
        elif stage["name"] == "final":
            accuracies = [m["val_accuracy"] for m in result["history"]]
        elif stage["name"] == "targeted":
            for candidate in result.get("candidates", []):
                accuracies += [m["val_accuracy"] for m in candidate["history"]]
        start = curve[-1][0] if curve else 0.0
        curve += [(start + i + 1, acc) for i, acc in enumerate(accuracies)]
        leftover = spent - len(accuracies)  # sanity, range test, diverged trials: no accuracy
        if leftover > 0:
            curve.append(((curve[-1][0] if curve else 0.0) + leftover, None))
    store.close()
    return curve, summary


def optuna_curve(
    spec: StudySpec,
    data: DataBundle,
    budget: float,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> Curve:
    """Trials of the refine length over the spec's search space until ``budget`` is spent."""
    epochs = round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    curve: Curve = []
    while (curve[-1][0] if curve else 0.0) < budget:
        trial = study.ask()
        lr = trial.suggest_float("lr", spec.search.lr.low, spec.search.lr.high, log=True)
        wd = trial.suggest_float(
            "weight_decay", spec.search.weight_decay.low, spec.search.weight_decay.high, log=True
        )
        run_spec = spec_with(
            spec, {"train.lr": lr, "train.weight_decay": wd, "train.epochs": epochs}
        )

        def report(epoch: int, metrics: dict[str, float], trial: optuna.Trial = trial) -> bool:
            spent = (curve[-1][0] if curve else 0.0) + 1
            curve.append((spent, metrics["val_accuracy"]))
            trial.report(metrics["val_accuracy"], epoch)
            return spent >= budget or trial.should_prune()

        try:
            result = Trainer(run_spec, data, data.mean.device).fit(report=report)
        except Exception:  # a diverged configuration: its epochs are spent all the same
            study.tell(trial, state=TrialState.FAIL)
            continue
        if result.stopped == "report" and trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, max(m.val_accuracy for m in result.history))
    return curve


def best(curve: Curve) -> float:
    return max((acc for _, acc in curve if acc is not None), default=0.0)


def epochs_to(curve: Curve, target: float) -> float:
    """Trial-epochs spent when the best-so-far first reaches ``target`` (inf if never)."""
    return next((spent for spent, acc in curve if acc is not None and acc >= target), math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    totals = {"random": 0.0, "recipe": 0.0}
    bests: dict[str, list[float]] = {"recipe": [], "random": [], "tpe": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            spec = spec_with(load_spec(args.spec), {"seed": seed, "name": f"bench-{seed}"})
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            recipe, summary = recipe_curve(spec, url, device)
            budget = recipe[-1][0]
            data = load_data(spec.dataset, spec.seed, device)
            curves = {
                "recipe": recipe,
                "random": optuna_curve(
                    spec,
                    data,
                    budget,
                    optuna.samplers.RandomSampler(seed=seed),
                    optuna.pruners.NopPruner(),
                ),
                "tpe": optuna_curve(
                    spec,
                    data,
                    budget,
                    optuna.samplers.TPESampler(seed=seed),
                    optuna.pruners.MedianPruner(),
                ),
            }
            target = best(curves["random"])
            line = [f"seed {seed}: budget {budget:.0f} trial-epochs, random's best {target:.4f}"]
            for name, curve in curves.items():
                bests[name].append(best(curve))
                reach = epochs_to(curve, target)
                line.append(
                    f"  {name:7s} best {best(curve):.4f}, reached {target:.4f} after {reach:.0f}"
                )
            reach_recipe = epochs_to(recipe, target)
            totals["random"] += epochs_to(curves["random"], target)
            totals["recipe"] += reach_recipe if math.isfinite(reach_recipe) else budget
            test = summary["best"]["test_accuracy"]  # type: ignore[index]
            line.append(f"  recipe test accuracy {test:.4f}")
            print("\n".join(line), flush=True)
    for name, values in bests.items():
        mean = sum(values) / len(values)
        print(f"{name}: mean best val accuracy {mean:.4f} over {len(values)} seeds")
    print(
        f"trial-epochs to reach random search's final best, summed over seeds: "
        f"random {totals['random']:.0f}, recipe {totals['recipe']:.0f}"
    )
    print(f"speedup: {totals['random'] / totals['recipe']:.2f}")


if __name__ == "__main__":
    main()
