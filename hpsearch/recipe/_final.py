"""Stage 5: final training of the best configuration, the diagnosis, and one test evaluation.

The best configuration trains for ``recipe.final.epochs`` with LR decay and early stopping. Its
learning curves are diagnosed; when the verdict is "overfitting" or "still improving" and
``targeted_stage`` is on, one more targeted stage trains a stronger-regularized or a longer variant
and keeps it only if validation accuracy improves. Only then is the test split touched, once, for
the chosen model (and, with ``ensemble_top_k`` > 1, for the average of the top-k configurations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from hpsearch.data import DataBundle
from hpsearch.recipe._derive import Params, final_spec, targeted_plan
from hpsearch.recipe._diagnosis import diagnose
from hpsearch.spec import StudySpec
from hpsearch.training import ReportFn, Trainer, TrainResult, probability_sums


def run_final(
    spec: StudySpec,
    configs: Sequence[Params],
    data: DataBundle,
    device: torch.device,
    report: ReportFn | None = None,
    epoch_budget: float | None = None,
) -> dict[str, Any]:
    """Train ``configs[0]`` (best first), maybe a targeted variant, then evaluate on test once.

    Returns ``{"final": ..., "targeted": ... or None}``, each with its ``trial_epochs``.
    """
    fin = spec.recipe.final
    chosen_params = dict(configs[0])
    trainer, result = _train(spec, chosen_params, data, device, None, report)
    final_epochs = float(len(result.history))
    diagnosis = _diagnosis(spec, result)
    targeted = None
    if fin.targeted_stage and diagnosis["verdict"] in ("overfitting", "still improving"):
        targeted = _targeted(spec, chosen_params, result, diagnosis, data, device, epoch_budget)
        if targeted["improved"]:
            best = targeted["chosen"]
            chosen_params = best["params"]
            trainer, result = best.pop("_trainer"), best.pop("_result")
        for candidate in targeted["candidates"]:
            candidate.pop("_trainer", None)
            candidate.pop("_result", None)
    probs = trainer.predict(data.test, fin.tta_flip)
    test_loss, test_correct = probability_sums(probs, data.test.labels).tolist()
    final = {
        "params": chosen_params,
        "history": [asdict(m) for m in result.history],
        "best_epoch": result.best_epoch,
        "weights_epoch": result.weights_epoch,
        "val_accuracy": result.val_accuracy,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": test_correct / len(data.test),
        "test_loss": test_loss / len(data.test),
        "tta_flip": fin.tta_flip,
        "diagnosis": diagnosis,
        "trial_epochs": final_epochs,
        "seconds": result.seconds,
    }
    if fin.ensemble_top_k > 1 and len(configs) > 1:
        final["ensemble"] = _ensemble(spec, configs[1 : fin.ensemble_top_k], probs, data, device)
        final["trial_epochs"] += final["ensemble"]["trial_epochs"]
    return {"final": final, "targeted": targeted}


def _train(
    spec: StudySpec,
    params: Params,
    data: DataBundle,
    device: torch.device,
    epochs: int | None,
    report: ReportFn | None = None,
) -> tuple[Trainer, TrainResult]:
    trainer = Trainer(final_spec(spec, params, epochs), data, device)
    return trainer, trainer.fit(report=report)


def _diagnosis(spec: StudySpec, result: TrainResult) -> dict[str, Any]:
    fin = spec.recipe.final
    return diagnose(
        [m.as_dict() for m in result.history],
        overfit_gap=fin.overfit_gap,
        underfit_train_accuracy=fin.underfit_train_accuracy,
        improving_gain=fin.improving_gain,
    )


def _targeted(
    spec: StudySpec,
    params: dict[str, float],
    result: TrainResult,
    diagnosis: dict[str, Any],
    data: DataBundle,
    device: torch.device,
    epoch_budget: float | None,
) -> dict[str, Any]:
    """Train the variants the diagnosis calls for; the best one wins if it beats the final run."""
    action, epochs, variants = targeted_plan(spec, params, diagnosis["verdict"])
    needed = epochs * len(variants)
    if epoch_budget is not None and needed > epoch_budget:
        return {
            "action": action,
            "ran": False,
            "reason": f"needs up to {needed} epochs, the budget has {epoch_budget:.0f} left",
            "improved": False,
            "candidates": [],
            "trial_epochs": 0.0,
            "seconds": 0.0,
        }
    candidates: list[dict[str, Any]] = []
    for variant in variants:
        trainer, run = _train(spec, variant, data, device, epochs)
        candidates.append(
            {
                "params": variant,
                "val_accuracy": run.val_accuracy,
                "epochs": len(run.history),
                "history": [asdict(m) for m in run.history],
                "_trainer": trainer,
                "_result": run,
            }
        )
    best = max(candidates, key=lambda c: c["val_accuracy"])
    return {
        "action": action,
        "ran": True,
        "reason": f"the diagnosis was {diagnosis['verdict']!r}",
        "baseline_val_accuracy": result.val_accuracy,
        "improved": best["val_accuracy"] > result.val_accuracy,
        "chosen": best,
        "candidates": candidates,
        "trial_epochs": float(sum(c["epochs"] for c in candidates)),
        "seconds": sum(c["_result"].seconds for c in candidates),
    }


def _ensemble(
    spec: StudySpec,
    others: Sequence[Params],
    first_probs: torch.Tensor,
    data: DataBundle,
    device: torch.device,
) -> dict[str, Any]:
    """Average predicted probabilities of the chosen model and the next-best configurations."""
    total, epochs, members = first_probs.clone(), 0.0, []
    for params in others:
        trainer, run = _train(spec, params, data, device, None)
        total += trainer.predict(data.test, spec.recipe.final.tta_flip)
        epochs += len(run.history)
        members.append({"params": dict(params), "val_accuracy": run.val_accuracy})
    _, correct = probability_sums(total / (len(others) + 1), data.test.labels).tolist()
    return {
        "k": len(others) + 1,
        "members": members,
        "test_accuracy": correct / len(data.test),
        "trial_epochs": epochs,
    }
