"""Stage 5: final training of the best configuration, the diagnosis, and one test evaluation.

The best configuration trains for ``recipe.final.epochs`` with LR decay and early stopping (on
``search.objective``). Its learning curves are diagnosed; when the verdict is "overfitting" or
"still improving" and ``targeted_stage`` is on, one more targeted stage trains a
stronger-regularized or a longer variant and keeps it only if the validation objective improves.
The test-time augmentation ``recipe.final.tta`` asks for is kept only if it raises the
validation objective. Only then is the test split touched, once, for the chosen model (and, with
``ensemble_top_k`` > 1, for the average of the top-k configurations): its metrics
(``hpsearch.metrics.evaluate``) are kept, and the diagnosis names the classes they show far below
the average. Given an ``outbox``, the chosen model and the ensemble are each saved there as one
model file (``hpsearch.trained``) that reproduces the test metrics stored with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from hpsearch.data import DataBundle, Split
from hpsearch.metrics import evaluate
from hpsearch.models import build_model
from hpsearch.recipe import Params, diagnose, final_spec, targeted_plan, with_weak_classes
from hpsearch.results import (
    Candidate,
    Diagnosis,
    Ensemble,
    EnsembleMember,
    EpochRecord,
    FinalItemResult,
    FinalResult,
    ModelFile,
    TargetedResult,
)
from hpsearch.spec import StudySpec
from hpsearch.trained import Kind, Tta, card_for, save_model
from hpsearch.training import (
    CheckpointError,
    CheckpointSink,
    ReportFn,
    Trainer,
    TrainResult,
    predict_split,
    probability_sums,
)


def run_final(
    spec: StudySpec,
    configs: Sequence[Params],
    data: DataBundle,
    device: torch.device,
    report: ReportFn | None = None,
    epoch_budget: float | None = None,
    outbox: Path | None = None,
    resume: dict[str, Any] | None = None,
    checkpoint: CheckpointSink | None = None,
) -> FinalItemResult:
    """Train ``configs[0]`` (best first), maybe a targeted variant, then evaluate on test once.

    The final result and the targeted stage's (or None) each hold their ``trial_epochs``; with
    an ``outbox``, the references of the model files saved there. The training of
    ``configs[0]`` saves checkpoints to ``checkpoint`` and goes on from ``resume`` (a retried
    final training); what follows it (a targeted variant, an ensemble's other members) is
    short beside it, and trained again.
    """
    fin = spec.recipe.final
    snapshots = fin.ensemble_top_k if fin.ensemble == "snapshots" else 0
    chosen = dict(configs[0])
    trainer = Trainer(final_spec(spec, chosen), data, device)
    try:
        result = trainer.fit(report, snapshots=snapshots, resume=resume, checkpoint=checkpoint)
    except CheckpointError:  # of another configuration: trained from the start
        trainer = Trainer(final_spec(spec, chosen), data, device)
        result = trainer.fit(report, snapshots=snapshots, checkpoint=checkpoint)
    epochs = float(len(result.history))
    diagnosis = _diagnosis(spec, result)
    targeted = None
    if fin.targeted_stage and diagnosis.verdict in ("overfitting", "still improving"):
        targeted, winner = _targeted(
            spec, chosen, result, diagnosis, data, device, epoch_budget, snapshots
        )
        if winner is not None:
            assert targeted.chosen is not None
            chosen = dict(targeted.chosen.params)
            trainer, result = winner
    final, probs = _tested(spec, chosen, trainer, result, diagnosis, data)
    saved = Saver(outbox, spec, data, final.tta)
    scored = {"val_accuracy": final.val_accuracy, "val_value": final.val_value}
    model = saved(
        "final", [chosen], [trainer.model], scored | {"test_accuracy": final.test_accuracy}
    )
    ensemble = None
    if fin.ensemble_top_k > 1 and (len(result.snapshots) > 1 if snapshots else len(configs) > 1):
        members = Members(spec, data, device, final.tta)
        if snapshots:
            members.snapshots(chosen, result)
        else:
            members.trained([chosen, *map(dict, configs[1 : fin.ensemble_top_k])], trainer)
        ensemble = members.ensemble(trainer, final, probs, saved)
        epochs += ensemble.trial_epochs
    update = {"model": model, "ensemble": ensemble, "trial_epochs": epochs}
    return FinalItemResult(final=final.model_copy(update=update), targeted=targeted)


def _tested(
    spec: StudySpec,
    params: Params,
    trainer: Trainer,
    result: TrainResult,
    diagnosis: Diagnosis,
    data: DataBundle,
) -> tuple[FinalResult, torch.Tensor]:
    """The chosen model's one evaluation on the test split (with the TTA that helps), and its
    test probabilities."""
    tta, tta_gain = _chosen_tta(spec, trainer, data)
    probs = trainer.predict(data.test, tta)  # (N, C)
    test_loss, test_correct = probability_sums(probs, data.test.labels).tolist()
    test_metrics = evaluate(probs.cpu().numpy(), data.test.labels.cpu().numpy(), data.info.classes)
    final = FinalResult(
        params=dict(params),
        history=_history(result),
        best_epoch=result.best_epoch,
        weights_epoch=result.weights_epoch,
        val_accuracy=result.val_accuracy,
        train_accuracy=result.train_accuracy,
        test_accuracy=test_correct / len(data.test),
        test_loss=test_loss / len(data.test),
        tta_flip=tta == "flip",
        tta=tta,
        tta_gain=tta_gain,
        diagnosis=with_weak_classes(diagnosis, test_metrics, spec.search.objective),
        trial_epochs=float(len(result.history)),
        seconds=result.seconds,
        objective=spec.search.objective,
        val_value=result.value,
        test_metrics=test_metrics,
    )
    return final, probs


class Saver:
    """Saves models into the outbox as files (none without an outbox)."""

    def __init__(self, outbox: Path | None, spec: StudySpec, data: DataBundle, tta: Tta) -> None:
        self.outbox, self.spec, self.data, self.tta = outbox, spec, data, tta

    def __call__(
        self,
        kind: Kind,
        params: Sequence[dict[str, float]],
        members: Sequence[nn.Module],
        metrics: dict[str, float | None],
        name: str | None = None,
    ) -> ModelFile | None:
        if self.outbox is None:
            return None
        card = card_for(self.spec, self.data, kind, params, self.tta, metrics)
        name = f"{self.spec.name}-{name or kind}.pt"
        return save_model(self.outbox, name, card, members)[0]


def _chosen_tta(spec: StudySpec, trainer: Trainer, data: DataBundle) -> tuple[Tta, float | None]:
    """The TTA the spec asks for if it raises the validation objective (else none), and its
    gain (None when none was asked for)."""
    fin = spec.recipe.final
    asked: Tta = "flip" if fin.tta_flip else fin.tta
    if asked == "none":
        return "none", None
    objective = spec.search.objective
    plain, viewed = (
        _objective(trainer.predict(data.val, views), data.val, data, objective)
        for views in ("none", asked)
    )
    gain = viewed - plain
    return (asked if gain > 0 else "none"), gain


def _train(
    spec: StudySpec,
    params: Params,
    data: DataBundle,
    device: torch.device,
    epochs: int | None,
    report: ReportFn | None = None,
    snapshots: int = 0,
) -> tuple[Trainer, TrainResult]:
    trainer = Trainer(final_spec(spec, params, epochs), data, device)
    return trainer, trainer.fit(report=report, snapshots=snapshots)


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
    snapshots: int = 0,
) -> tuple[TargetedResult, tuple[Trainer, TrainResult] | None]:
    """Train the variants the diagnosis calls for (keeping ``snapshots`` of each); the best one
    by the validation objective wins if it beats the final run (then its trainer and run come
    back with the result)."""
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
    runs = [
        (variant, *_train(spec, variant, data, device, epochs, None, snapshots))
        for variant in variants
    ]
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


class Members:
    """An ensemble's members (the chosen model first), their probabilities averaged in this
    order as a saved ensemble averages them."""

    def __init__(self, spec: StudySpec, data: DataBundle, device: torch.device, tta: Tta) -> None:
        self.spec, self.data, self.device, self.tta = spec, data, device, tta
        self.kind: Literal["top_k", "snapshots"] = "top_k"
        self.models: list[nn.Module] = []
        self.params: list[dict[str, float]] = []
        self.members: list[EnsembleMember] = []
        self.epochs = 0.0

    def trained(self, configs: Sequence[Params], chosen: Trainer) -> None:
        """The chosen model and the next-best configurations, each trained as it was."""
        self.models, self.params = [chosen.model], [dict(configs[0])]
        for params in configs[1:]:
            trainer, run = _train(self.spec, params, self.data, self.device, None)
            self.epochs += len(run.history)
            self.models.append(trainer.model)
            self.params.append(dict(params))
            self.members.append(EnsembleMember(params=dict(params), val_accuracy=run.val_accuracy))

    def snapshots(self, params: Params, run: TrainResult) -> None:
        """The weights of the best epochs of the final run (no extra training)."""
        self.kind = "snapshots"
        for epoch, state in run.snapshots:
            own = final_spec(self.spec, params).model  # searched model.* dimensions applied
            model = build_model(own, self.data.info).to(self.device)
            model.load_state_dict(state)
            self.models.append(model)
            self.params.append(dict(params))
            accuracy = run.history[epoch - 1].val_accuracy
            self.members.append(
                EnsembleMember(params=dict(params), val_accuracy=accuracy, epoch=epoch)
            )

    def probabilities(self, split: Split, first: torch.Tensor | None = None) -> torch.Tensor:
        total = first.clone() if first is not None else None
        for model in self.models[1:] if first is not None else self.models:
            probs = self._predict(model, split)
            total = probs if total is None else total + probs
        assert total is not None
        return total / len(self.models)

    def _predict(self, model: nn.Module, split: Split) -> torch.Tensor:
        model.eval()
        return predict_split(
            model, self.spec, self.data, split, self.tta, self.device.type == "cuda"
        )

    def ensemble(
        self, chosen: Trainer, final: FinalResult, test_probs: torch.Tensor, saved: Saver
    ) -> Ensemble:
        """Score the average on validation against the chosen model alone; test and save it
        only if it is better there."""
        objective = self.spec.search.objective
        first = chosen.predict(self.data.val, self.tta) if self.kind == "top_k" else None
        val = _objective(
            self.probabilities(self.data.val, first), self.data.val, self.data, objective
        )
        single = _objective(
            chosen.predict(self.data.val, self.tta), self.data.val, self.data, objective
        )
        gain = val - single
        ensemble = Ensemble(
            k=len(self.models), members=self.members, trial_epochs=self.epochs, kind=self.kind,
            kept=gain > 0, val_value=val, val_gain=gain,
        )  # fmt: skip
        if gain <= 0:
            return ensemble
        first = test_probs if self.kind == "top_k" else None
        probs = self.probabilities(self.data.test, first)
        _, correct = probability_sums(probs, self.data.test.labels).tolist()
        accuracy = correct / len(self.data.test)
        file = saved("ensemble", self.params, self.models, {"test_accuracy": accuracy})
        members = self._saved_members(saved)
        update = {"test_accuracy": accuracy, "model": file, "members": members}
        return ensemble.model_copy(update=update)

    def _saved_members(self, saved: Saver) -> list[EnsembleMember]:
        """Each member (beside the chosen model, which has its own file) saved alone."""
        models = self.models[1:] if self.kind == "top_k" else self.models
        return [
            member.model_copy(
                update={
                    "model": saved(
                        "member",
                        [member.params],
                        [model],
                        {"val_accuracy": member.val_accuracy},
                        f"member-{i}",
                    )
                }
            )
            for i, (member, model) in enumerate(zip(self.members, models, strict=True))
        ]


def _objective(probs: torch.Tensor, split: Split, data: DataBundle, objective: str) -> float:
    """``objective`` of ``probs`` on ``split`` (accuracy where it is undefined there)."""
    metrics = evaluate(probs.cpu().numpy(), split.labels.cpu().numpy(), data.info.classes)
    value = getattr(metrics, objective)
    return float(metrics.accuracy if value is None else value)
