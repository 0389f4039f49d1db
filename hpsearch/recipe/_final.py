"""Stage 5: final training of the best configuration, the diagnosis, and one test evaluation.

The best configuration trains for ``recipe.final.epochs`` with LR decay and early stopping (on
``search.objective``). Its learning curves are diagnosed; when the verdict is "overfitting" or
"still improving" and ``targeted_stage`` is on, one more targeted stage trains a
stronger-regularized or a longer variant and keeps it only if the validation objective improves.
Only then is the test split touched, once, for the chosen model (and, with ``ensemble_top_k`` > 1,
for the average of the top-k configurations): its metrics (``hpsearch.metrics.evaluate``) are kept,
and the diagnosis names the classes they show far below the average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import torch

from hpsearch.data import DataBundle
from hpsearch.metrics import evaluate
from hpsearch.recipe._derive import Params, final_spec, targeted_plan
from hpsearch.recipe._diagnosis import diagnose, with_weak_classes
from hpsearch.results import (
    Candidate,
    Diagnosis,
    Ensemble,
    EnsembleMember,
    EpochRecord,
    FinalItemResult,
    FinalResult,
    TargetedResult,
)
from hpsearch.spec import StudySpec
from hpsearch.training import ReportFn, Trainer, TrainResult, probability_sums


def run_final(
    spec: StudySpec,
    configs: Sequence[Params],
    data: DataBundle,
    device: torch.device,
    report: ReportFn | None = None,
    epoch_budget: float | None = None,
) -> FinalItemResult:
    """Train ``configs[0]`` (best first), maybe a targeted variant, then evaluate on test once.

    The final result and the targeted stage's (or None) each hold their ``trial_epochs``.
    """
    fin = spec.recipe.final
    chosen_params = dict(configs[0])
    trainer, result = _train(spec, chosen_params, data, device, None, report)
    final_epochs = float(len(result.history))
    diagnosis = _diagnosis(spec, result)
    targeted = None
    if fin.targeted_stage and diagnosis.verdict in ("overfitting", "still improving"):
        targeted, winner = _targeted(
            spec, chosen_params, result, diagnosis, data, device, epoch_budget
        )
        if winner is not None:
            assert targeted.chosen is not None
            chosen_params = dict(targeted.chosen.params)
            trainer, result = winner
    probs = trainer.predict(data.test, fin.tta_flip)  # (N, C)
    test_loss, test_correct = probability_sums(probs, data.test.labels).tolist()
    test_metrics = evaluate(probs.cpu().numpy(), data.test.labels.cpu().numpy(), data.info.classes)
    diagnosis = with_weak_classes(diagnosis, test_metrics, spec.search.objective)
    ensemble = None
    if fin.ensemble_top_k > 1 and len(configs) > 1:
        ensemble = _ensemble(spec, configs[1 : fin.ensemble_top_k], probs, data, device)
        final_epochs += ensemble.trial_epochs
    final = FinalResult(
        params=chosen_params,
        history=_history(result),
        best_epoch=result.best_epoch,
        weights_epoch=result.weights_epoch,
        val_accuracy=result.val_accuracy,
        train_accuracy=result.train_accuracy,
        test_accuracy=test_correct / len(data.test),
        test_loss=test_loss / len(data.test),
        tta_flip=fin.tta_flip,
        diagnosis=diagnosis,
        trial_epochs=final_epochs,
        seconds=result.seconds,
        ensemble=ensemble,
        objective=spec.search.objective,
        val_value=result.value,
        test_metrics=test_metrics,
    )
    return FinalItemResult(final=final, targeted=targeted)


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


def _history(result: TrainResult) -> list[EpochRecord]:
    return [EpochRecord(**asdict(m)) for m in result.history]


def _diagnosis(spec: StudySpec, result: TrainResult) -> Diagnosis:
    fin = spec.recipe.final
    verdict = diagnose(
        [m.as_dict() for m in result.history],
        overfit_gap=fin.overfit_gap,
        underfit_train_accuracy=fin.underfit_train_accuracy,
        improving_gain=fin.improving_gain,
    )
    return Diagnosis(**verdict)


def _targeted(
    spec: StudySpec,
    params: dict[str, float],
    result: TrainResult,
    diagnosis: Diagnosis,
    data: DataBundle,
    device: torch.device,
    epoch_budget: float | None,
) -> tuple[TargetedResult, tuple[Trainer, TrainResult] | None]:
    """Train the variants the diagnosis calls for; the best one by the validation objective wins
    if it beats the final run (then its trainer and run come back with the result)."""
    action, epochs, variants = targeted_plan(spec, params, diagnosis.verdict)
    needed = epochs * len(variants)
    if epoch_budget is not None and needed > epoch_budget:
        reason = f"needs up to {needed} epochs, the budget has {epoch_budget:.0f} left"
        skipped = TargetedResult(
            action=action,
            ran=False,
            reason=reason,
            improved=False,
            candidates=[],
            trial_epochs=0.0,
            seconds=0.0,
        )
        return skipped, None
    runs = [(variant, *_train(spec, variant, data, device, epochs)) for variant in variants]
    candidates = [
        Candidate(
            params=variant,
            val_accuracy=run.val_accuracy,
            epochs=len(run.history),
            history=_history(run),
            val_value=run.value,
        )
        for variant, _, run in runs
    ]
    best = max(range(len(runs)), key=lambda i: runs[i][2].value)
    improved = runs[best][2].value > result.value
    targeted = TargetedResult(
        action=action,
        ran=True,
        reason=f"the diagnosis was {diagnosis.verdict!r}",
        baseline_val_accuracy=result.val_accuracy,
        baseline_val_value=result.value,
        improved=improved,
        chosen=candidates[best],
        candidates=candidates,
        trial_epochs=float(sum(c.epochs for c in candidates)),
        seconds=sum(run.seconds for _, _, run in runs),
    )
    return targeted, (runs[best][1], runs[best][2]) if improved else None


def _ensemble(
    spec: StudySpec,
    others: Sequence[Params],
    first_probs: torch.Tensor,
    data: DataBundle,
    device: torch.device,
) -> Ensemble:
    """Average predicted probabilities of the chosen model and the next-best configurations."""
    total, epochs, members = first_probs.clone(), 0.0, []
    for params in others:
        trainer, run = _train(spec, params, data, device, None)
        total += trainer.predict(data.test, spec.recipe.final.tta_flip)
        epochs += len(run.history)
        members.append(EnsembleMember(params=dict(params), val_accuracy=run.val_accuracy))
    _, correct = probability_sums(total / (len(others) + 1), data.test.labels).tolist()
    return Ensemble(
        k=len(others) + 1,
        members=members,
        test_accuracy=correct / len(data.test),
        trial_epochs=epochs,
    )
