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

# What the notes ask of a search trial: no early stopping, no test-time tricks; its LR schedule
# is the stage's (recipe.coarse.schedule, recipe.refine.schedule: constant, as the notes say, or
# decayed within the trial's own epochs).
SEARCH_TRIAL = {
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


def trial_spec(spec: StudySpec, params: Params, epochs: int, stage: str) -> StudySpec:
    """The spec of a search trial of ``params`` in ``stage`` that trains ``epochs`` epochs, its
    LR over those epochs as the stage's schedule says (a decaying one with the spec's warmup
    scaled by ``epochs / train.epochs``, as the final training's would be compressed)."""
    schedule = (spec.recipe.coarse if stage == "coarse" else spec.recipe.refine).schedule
    updates: dict[str, object] = {"train.epochs": epochs, "train.schedule": schedule}
    if schedule != "constant":  # the spec's schedule compressed into the trial, warmup too
        warmup = spec.train.warmup_epochs * min(1.0, epochs / spec.train.epochs)
        updates["train.warmup_epochs"] = warmup
    return spec_with(spec, {**params, **updates, **SEARCH_TRIAL})


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


# How the up-front stages share their part of a budget (budget.up_front_share): the overfit
# check, the range test's sweep and its check at the suggestion; and the fewest steps each keeps.
UP_FRONT_SPLIT = {"overfit": 0.4, "sweep": 0.4, "check": 0.2}
UP_FRONT_MIN = {"overfit": 40, "sweep": 20, "check": 20}
# a scaled overfit check's sample: an image for every OVERFIT_STEPS_PER_IMAGE of its steps (a
# small CNN fits 32 hard 16x16 images in 56 steps at its spec's LR, not 64: bench/problems.py)
OVERFIT_STEPS_PER_IMAGE = 2
OVERFIT_MIN_IMAGES = 16


def up_front_spec(spec: StudySpec, steps_per_epoch: int) -> StudySpec:
    """The spec the sanity checks and the range test run with: the study's, their step counts
    scaled down so that together they take at most ``budget.up_front_share`` of
    ``budget.trial_epochs`` (never below ``UP_FRONT_MIN``, never above their own counts), and the
    overfit check's sample cut to an image for every ``OVERFIT_STEPS_PER_IMAGE`` of its steps
    (at least ``OVERFIT_MIN_IMAGES``)."""
    budget, sanity, sweep = spec.budget, spec.recipe.sanity, spec.recipe.range_test
    if budget.trial_epochs is None or budget.up_front_share is None:
        return spec
    allowed = budget.up_front_share * budget.trial_epochs * steps_per_epoch
    own = {"overfit": sanity.overfit_steps, "sweep": sweep.steps, "check": sweep.check_iterations}
    steps = {
        k: min(n, max(UP_FRONT_MIN[k], int(allowed * UP_FRONT_SPLIT[k]))) for k, n in own.items()
    }
    if steps == own:
        return spec
    images = max(OVERFIT_MIN_IMAGES, steps["overfit"] // OVERFIT_STEPS_PER_IMAGE)
    sample = sanity.overfit_batches * spec.train.batch_size
    return spec_with(
        spec,
        {
            "recipe.sanity.overfit_steps": steps["overfit"],
            "recipe.sanity.overfit_images": min(images, sanity.overfit_images or sample),
            "recipe.range_test.steps": steps["sweep"],
            "recipe.range_test.check_iterations": steps["check"],
            # a shorter check asks a proportionally smaller drop of the loss
            "recipe.range_test.check_drop": sweep.check_drop * steps["check"] / own["check"],
        },
    )


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
