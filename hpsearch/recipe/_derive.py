"""The specs a study's work runs with, each derived from the study's spec in one place.

The stage machine derives a trial's spec here when it hands the trial out, and the stages derive
theirs here when they run. The launch check (``_launch``) derives every one of them, at the
corners of the search space, before a study is accepted: so a spec that launches never makes a
work item whose own spec is invalid (a claim that failed that way used to stall every study).
"""

from __future__ import annotations

from collections.abc import Mapping

from hpsearch.spec import MAX_TRIALS, StudySpec, spec_with

Params = Mapping[str, float]  # by spec path: {"train.lr": 0.1, "model.dropout": 0.2}

# What the notes ask of a search trial: no LR decay, no early stopping, no test-time tricks.
SEARCH_TRIAL = {
    "train.schedule": "constant",
    "train.early_stopping_patience": None,
    "train.tta_flip": False,
}
EXPECTED_SPEND = 0.6  # of a pruned search round's planned trial-epochs, spent (see round_trials)
MIN_ROUND_TRIALS = 3  # a budget-scaled round runs at least this many trials
TARGETED_WEIGHT_DECAY = (4.0, 16.0)  # "overfitting": weight decay x4 and x16
TARGETED_EPOCHS_FACTOR = 2  # "still improving": twice the epochs


def spec_config(spec: StudySpec) -> dict[str, float]:
    """The final stage's configuration when no search trial completed: the spec's own learning
    rate and weight decay."""
    return {"train.lr": spec.train.lr, "train.weight_decay": spec.train.weight_decay}


def stage_epochs(spec: StudySpec, stage: str) -> int:
    """Epochs of each trial of a search stage: coarse, or coarse times the refine factor."""
    if stage == "coarse":
        return spec.recipe.coarse.epochs
    return round(spec.recipe.coarse.epochs * spec.recipe.refine.epochs_factor)


def round_trials(spec: StudySpec, stage: str, spent: float) -> int:
    """How many trials a search round runs: the spec's count, or, with ``budget.trial_epochs``
    and ``budget.scale_trials``, as many as the budget left fits.

    What is left is shared as the spec's own counts share it: the coarse stage its part of the
    planned search, each refine round an equal part of what the coarse stage and the rounds
    before it left (the final training runs after the budget, as ever). A trial is reckoned at
    ``EXPECTED_SPEND`` of its epochs (pruning stops most early); a round that spends more is
    stopped by the budget, one that spends less leaves more to the rounds after it.
    """
    coarse, refine = spec.recipe.coarse, spec.recipe.refine
    own = coarse.trials if stage == "coarse" else refine.trials
    budget = spec.budget
    if budget.trial_epochs is None or not budget.scale_trials:
        return own
    left = max(0.0, budget.trial_epochs - spent)
    epochs = stage_epochs(spec, stage)
    if stage == "coarse":
        planned = coarse.trials * coarse.epochs
        refining = refine.rounds * refine.trials * stage_epochs(spec, "refine-1")
        share = planned / (planned + refining)
    else:
        share = 1 / (refine.rounds - int(stage.removeprefix("refine-")) + 1)
    return min(MAX_TRIALS, max(MIN_ROUND_TRIALS, round(left * share / (epochs * EXPECTED_SPEND))))


def trial_spec(spec: StudySpec, params: Params, epochs: int) -> StudySpec:
    """The spec of a search trial of ``params`` that trains ``epochs`` epochs."""
    return spec_with(spec, {**params, "train.epochs": epochs, **SEARCH_TRIAL})


def final_spec(spec: StudySpec, params: Params, epochs: int | None = None) -> StudySpec:
    """The spec for a final run of ``params`` (spec paths such as ``train.lr``)."""
    fin = spec.recipe.final
    return spec_with(
        spec,
        {
            **params,
            "train.epochs": epochs or fin.epochs,
            "train.schedule": fin.schedule,
            "train.early_stopping_patience": fin.early_stopping_patience,
            "train.tta_flip": fin.tta_flip,
        },
    )


def targeted_plan(
    spec: StudySpec, params: Params, verdict: str
) -> tuple[str, int, list[dict[str, float]]]:
    """What the targeted stage does for ``verdict``: (action, epochs, the variants' params)."""
    epochs = spec.recipe.final.epochs
    if verdict == "still improving":
        return "extend: train twice as long", TARGETED_EPOCHS_FACTOR * epochs, [dict(params)]
    wd = max(params.get("train.weight_decay", spec.train.weight_decay), 1e-6)
    variants = [dict(params) | {"train.weight_decay": wd * f} for f in TARGETED_WEIGHT_DECAY]
    return "regularize: search weight decay upward", epochs, variants


def range_test_spec(spec: StudySpec, lr: float | None = None) -> StudySpec:
    """The range test's sweep (``lr`` None: the LR is set step by step) or its check at ``lr``."""
    cfg = spec.recipe.range_test
    if lr is not None:
        updates = {"train.lr": lr, "train.schedule": "constant", "train.warmup_epochs": 0.0}
        return spec_with(spec, updates)
    updates = {
        "train.weight_decay": cfg.weight_decay,
        "train.schedule": "constant",
        "train.warmup_epochs": 0.0,
    }
    return spec_with(spec, updates)


def field_value(spec: StudySpec, path: str) -> object:
    """The value of the spec field at ``path`` (``train.lr``, ``model.dropout``)."""
    node: object = spec
    for part in path.split("."):
        node = getattr(node, part)
    return node
