"""The study spec: one pydantic model holding everything a study needs to run.

Every number the recipe uses is a field here with docs/RECIPE.md's default, so a spec file only
has to name what differs. Unknown fields are errors (a typo must never silently fall back to a
default).

Every count and size has an upper bound that a real search never needs to pass (docs/SPECS.md,
"Limits"), and every float must be finite: a server shares its workers between studies, and one
study's spec must never make a claim, a page or a worker do unbounded work. What a spec *derives*
(the spec of each trial, the final training's epochs) is checked at launch by
``hpsearch.stages.check_launch``.
"""

from __future__ import annotations

import typing
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hpsearch.catalog import DATASETS
from hpsearch.spec._problem import FieldProblem
from hpsearch.spec._ranges import Dimension, SearchRange, param_name

DatasetName = Literal["digits", "shapes", "mnist", "fashion_mnist", "cifar10", "folder", "arrays"]
STUDY_PREFIX = "study:"  # model.init_from: study:NAME, that study's final model
USER_DATA = ("folder", "arrays")  # the user's own: an ImageFolder directory, an .npz/.pt file
Objective = Literal["accuracy", "balanced_accuracy", "macro_f1", "roc_auc"]
ARCH_PATTERN = r"^(builtin|torchvision:[A-Za-z][A-Za-z0-9_]*|python:[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"
NormName = Literal["batch", "group", "layer", "instance", "none"]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
ScheduleName = Literal["constant", "step", "cosine", "linear"]
TrialSchedule = Literal["constant", "cosine", "linear"]  # a search trial's, within its epochs
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
MAX_EPOCHS = 1000  # of any one training run (a trial, the final training, a targeted variant)
MAX_TRIALS = 10_000  # of one search stage
MAX_ROUNDS = 20  # refine rounds
MAX_STEPS = 10_000  # optimizer steps of a sanity check or a range test (their curves are stored)
MAX_BATCHES = 1000  # batches of a sanity check
MAX_IMAGES = 10_000_000  # generated images, or a training subset
MAX_EXTRA_DIMENSIONS = 16


class _Section(BaseModel):
    # allow_inf_nan=False: inf and NaN are refused (JSON's Infinity/NaN, YAML's .inf/.nan); a
    # stored spec must be valid JSON on every database
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatasetSpec(_Section):
    name: DatasetName = "digits"
    # mnist / fashion_mnist / cifar10 files live here
    data_dir: str = Field("~/.cache/hpsearch/data", max_length=4096)
    download: bool = False  # fetch missing files through torchvision (needs network)
    size: int = Field(12_000, ge=100, le=MAX_IMAGES)  # shapes only: number of images generated
    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)  # sets without an official test split
    train_subset: int | None = Field(None, ge=10, le=MAX_IMAGES)  # keep this many training images
    # your own data (folder, arrays): the ImageFolder directory or the .npz/.pt file; once
    # uploaded to a server, "sha256:<hex>" of its content
    path: str | None = Field(None, min_length=1, max_length=4096)
    image_size: int | None = Field(None, ge=4, le=1024)  # folder: every image resized to this
    channels: Literal[1, 3] | None = None  # folder: 1 (grey) or 3 (colour, the default)
    bad_files: Literal["skip", "fail"] = "skip"  # folder: an image that cannot be decoded
    flip_invariant: bool = False  # your own data: is a mirrored image still of its class?

    @model_validator(mode="after")
    def _check_source(self) -> DatasetSpec:
        if self.name in USER_DATA:
            if self.path is None:
                raise FieldProblem("path", f"{self.name} data needs its path")
            if self.name == "folder" and self.image_size is None:
                raise FieldProblem("image_size", "a folder's images need a size to be resized to")
            return self
        for field in ("path", "image_size", "channels"):
            if getattr(self, field) is not None:
                raise FieldProblem(
                    field, f"only for your own data (folder, arrays), not {self.name}"
                )
        if self.flip_invariant:
            raise FieldProblem(
                "flip_invariant", f"{self.name} knows its own (see hpsearch.catalog)"
            )
        return self


class ModelSpec(_Section):
    # builtin (the regularized CNN below) | torchvision:NAME (any torchvision classification
    # architecture, untrained, its head sized to the classes and its first layer to the channels)
    # | python:MODULE:CALLABLE (your builder, called with num_classes, in_channels, image_size and
    # the options below; run only by workers that allow its module: --allow-module)
    arch: str = Field("builtin", max_length=256, pattern=ARCH_PATTERN)
    options: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=64)
    widths: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [32, 64], min_length=1, max_length=6
    )  # channels of each stage; every stage after the first halves the resolution
    depth: int = Field(1, ge=1, le=8)  # blocks per stage
    residual: bool = False
    norm: NormName = "batch"
    groups: int = Field(8, ge=1, le=4096)  # group norm only
    dropout: Fraction = 0.0  # before the linear head
    stochastic_depth: Fraction = 0.0  # drop rate of the last residual block (linear in depth)
    # transfer learning: start from the weights of a trained model (an hpsearch model file: a
    # path, sha256:<hex> once uploaded, or study:NAME for that study's final model), whose
    # model section must be this one; its head is kept when the classes are the same, else new
    init_from: str | None = Field(None, min_length=1, max_length=4096)
    # none: fine-tune every layer; features: train only the head (a linear classifier on top)
    freeze: Literal["none", "features"] = "none"
    # auto: choose freeze by the training set's size, as the transfer-learning table does
    # (fewer than TRANSFER_LINEAR_BELOW images per class: a linear classifier on top)
    transfer: Literal["auto"] | None = None

    @model_validator(mode="after")
    def _check_transfer(self) -> ModelSpec:
        if self.init_from is None and (self.freeze != "none" or self.transfer is not None):
            field = "freeze" if self.freeze != "none" else "transfer"
            raise FieldProblem(field, "only with model.init_from (the weights to start from)")
        if self.transfer == "auto" and self.freeze != "none":
            raise FieldProblem("freeze", "chosen by model.transfer: auto; set one of the two")
        return self

    @model_validator(mode="after")
    def _check_arch(self) -> ModelSpec:
        if self.arch == "builtin":
            if self.options:
                raise FieldProblem("options", "only for a python: model's builder")
            return self
        reserved = [k for k in ("num_classes", "in_channels", "image_size") if k in self.options]
        if reserved:
            raise FieldProblem("options", f"{', '.join(reserved)}: given by the data, not here")
        if self.options and not self.arch.startswith("python:"):
            raise FieldProblem("options", f"only for a python: model's builder, not {self.arch}")
        defaults = {
            f: type(self).model_fields[f].get_default(call_default_factory=True)
            for f in BUILTIN_ONLY
        }
        set_here = [f for f in BUILTIN_ONLY if getattr(self, f) != defaults[f]]
        if set_here:
            fields = ", ".join(f"model.{f}" for f in set_here)
            raise FieldProblem(set_here[0], f"only the built-in CNN has {fields}, not {self.arch}")
        return self


BUILTIN_ONLY = ("widths", "depth", "residual", "norm", "groups", "dropout", "stochastic_depth")


class AugmentSpec(_Section):
    crop_padding: int = Field(0, ge=0)  # random crop after reflect-padding by this many pixels
    flip: bool = False  # horizontal flip with p=0.5
    translate: int = Field(0, ge=0)  # random shift of up to this many pixels, zero fill
    brightness: float = Field(0.0, ge=0.0, le=1.0)  # factor drawn from [1-b, 1+b]
    contrast: float = Field(0.0, ge=0.0, le=1.0)  # factor drawn from [1-c, 1+c]
    cutout: int = Field(0, ge=0)  # side of the square zeroed at a random place
    mixup_alpha: float = Field(0.0, ge=0.0, le=100.0)  # Beta(a, a) mixing; 0 turns it off
    cutmix_alpha: float = Field(0.0, ge=0.0, le=100.0)  # Beta(a, a) patch area; 0 turns it off


class TrainSpec(_Section):
    epochs: int = Field(20, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(128, ge=1, le=65_536)
    eval_batch_size: int = Field(1024, ge=1, le=65_536)
    optimizer: OptimizerName = "nesterov"
    lr: PositiveFloat = 0.05
    momentum: Fraction = 0.9  # momentum / nesterov / rmsprop
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)  # adam / adamw
    weight_decay: float = Field(5e-4, ge=0.0)  # not applied to norm and bias parameters
    l1: float = Field(0.0, ge=0.0)  # explicit penalty l1 * sum|w| added to the loss
    l2: float = Field(0.0, ge=0.0)  # explicit penalty l2 * sum w^2; both set = elastic net
    schedule: ScheduleName = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0, le=MAX_EPOCHS)  # linear warmup from 0 first
    step_size: int = Field(10, ge=1, le=MAX_EPOCHS)  # step schedule: epochs between decays
    step_gamma: float = Field(0.1, gt=0.0, le=1.0)  # step schedule: decay factor
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)  # cosine / linear: final LR / lr
    label_smoothing: Fraction = 0.0
    early_stopping_patience: int | None = Field(None, ge=1, le=MAX_EPOCHS)  # epochs, no val gain
    min_delta: float = Field(0.0, ge=0.0)  # val objective gain that counts as improvement
    tta_flip: bool = False  # average predictions over the image and its mirror
    divergence_factor: float = Field(10.0, gt=1.0)  # train loss > this x ln(C): diverged
    compile: bool = False  # torch.compile the model (CUDA only)


class SearchSpec(_Section):
    lr: Dimension = SearchRange(low=1e-4, high=1.0)  # outer bounds; the range test narrows them
    weight_decay: Dimension = SearchRange(low=1e-6, high=1e-2)
    # e.g. "model.dropout"; every value between low and high must be valid for the field
    extra: dict[str, Dimension] = Field(default_factory=dict, max_length=MAX_EXTRA_DIMENSIONS)
    # what pruning, ranking, early stopping, the refine narrowing and the final choice maximise
    objective: Objective = "accuracy"

    def dimensions(self) -> dict[str, SearchRange]:
        """Every searched dimension by the spec field it sets: ``train.lr``, then
        ``train.weight_decay``, then each of ``extra`` in its order; ``integer`` where the
        field is an int (searched over the integers in its range)."""
        ranges = {"train.lr": self.lr, "train.weight_decay": self.weight_decay, **self.extra}
        return {
            path: searched.model_copy(update={"integer": True}) if _is_int(path) else searched
            for path, searched in ranges.items()
        }

    def bound_by(self, path: str) -> str:
        """The field of this section that bounds the dimension ``path`` (``train.lr`` ->
        ``search.lr``, ``model.dropout`` -> ``search.extra.model.dropout``)."""
        return f"search.extra.{path}" if path in self.extra else f"search.{param_name(path)}"


class SanitySpec(_Section):
    initial_loss_batches: int = Field(4, ge=1, le=MAX_BATCHES)
    initial_loss_tolerance: float = Field(0.15, gt=0.0, lt=1.0)  # relative to ln(C)
    overfit_batches: int = Field(5, ge=1, le=MAX_BATCHES)
    # the sample's size in images, when smaller than overfit_batches batches (a budget's scaled
    # check sets it: docs/RECIPE.md); null: overfit_batches whole batches
    overfit_images: int | None = Field(None, ge=1, le=MAX_IMAGES)
    overfit_steps: int = Field(300, ge=1, le=MAX_STEPS)
    overfit_pass_accuracy: float = Field(0.99, gt=0.0, le=1.0)
    overfit_min_drop: float = Field(0.1, gt=0.0, lt=1.0)  # below this loss drop: "not learning"
    # a sample not fitted within overfit_steps still passes when its loss fell by this fraction
    # (and validation is above chance): the network learns, it only needs more steps than the
    # check gives it; null: only a fitted sample passes
    overfit_trend_drop: float | None = Field(0.5, gt=0.0, lt=1.0)
    chance_z: float = Field(3.0, gt=0.0)  # val acc within this many std errors of chance: labels
    continue_on_failure: bool = False


class RangeTestSpec(_Section):
    min_lr: PositiveFloat = 1e-6
    max_lr: PositiveFloat = 10.0
    steps: int = Field(150, ge=10, le=MAX_STEPS)
    weight_decay: float = Field(1e-4, ge=0.0)
    # EMA factor of the smoothed loss (bias-corrected). 0.9 (half-life ~7 steps) rather than the
    # usual 0.98: with 150 steps over 7 decades, 0.98 lags the curve by more than a decade of LR.
    smoothing: Fraction = 0.9
    stop_factor: float = Field(4.0, gt=1.0)  # stop once smoothed loss > factor * its minimum
    decades_below: float = Field(1.0, ge=0.0, le=10.0)  # coarse range: steepest LR / 10**this
    decades_above: float = Field(0.5, ge=0.0, le=10.0)  # ... up to steepest-descent LR * 10**this
    # the coarse range's upper end: steepest-descent LR * 10**decades_above (steepest), or the
    # LR of the minimum smoothed loss where that is higher (min_loss: the largest LR at which
    # the loss still fell), so the sweep sets both ends from what it measured
    upper: Literal["steepest", "min_loss"] = "steepest"
    check_iterations: int = Field(100, ge=20, le=MAX_STEPS)
    check_drop: float = Field(0.2, gt=0.0, lt=1.0)  # the loss must fall by this share to pass
    # the range test's range as a prior, not a wall: this share of the coarse stage's randomly
    # sampled trials draw their LR from the whole of search.lr, the rest from the range test's
    # range (the refine rounds then narrow to where the best trials lie, wherever they came
    # from); 0: every coarse trial inside the range test's range
    outside_share: Fraction = 0.0

    @model_validator(mode="after")
    def _check_sweep(self) -> RangeTestSpec:
        if not self.min_lr < self.max_lr:
            raise FieldProblem("max_lr", f"must be above min_lr ({self.max_lr} <= {self.min_lr})")
        return self


class CoarseSpec(_Section):
    trials: int = Field(30, ge=1, le=MAX_TRIALS)
    epochs: int = Field(3, ge=1, le=MAX_EPOCHS)
    sampler: Literal["random", "sobol"] = "random"
    pruner: Literal["median", "successive_halving", "hyperband"] = "median"
    # each trial's LR over its own epochs: decayed to train.min_lr_ratio within the trial
    # (shaped by its budget: bench/fidelity.py found such short trials rank configurations as a
    # full-length one does, Spearman 0.97, a constant LR's 0.82-0.93), or constant (the notes'
    # "no decay while searching"); docs/RECIPE.md
    schedule: TrialSchedule = "cosine"


class RefineSpec(_Section):
    trials: int = Field(15, ge=1, le=MAX_TRIALS)
    epochs_factor: float = Field(3.0, ge=1.0, le=MAX_EPOCHS)  # refine epochs = coarse epochs * this
    top_fraction: float = Field(0.2, gt=0.0, le=1.0)
    top_min: int = Field(3, ge=1, le=MAX_TRIALS)
    margin: float = Field(2.0, ge=1.0, le=1e6)  # widen the narrowed range by this factor each side
    rounds: int = Field(2, ge=0, le=MAX_ROUNDS)
    min_gain: float = Field(0.005, ge=0.0)  # another round only if best val acc grew this much
    # a round first continues the best trials of the round before from their last weights (at
    # a constant LR, to the round's epochs), as trials of the round beside its new ones
    continue_top: int = Field(2, ge=0, le=MAX_TRIALS)
    # where the best so far lies on an edge of the round before's range, search past that edge
    # (no further than the field accepts); false: every round stays inside the one before
    extend_edges: bool = True
    sampler: Literal["random", "tpe"] = "random"
    pruner: Literal["median", "successive_halving", "hyperband"] = "median"
    schedule: TrialSchedule = "cosine"  # as recipe.coarse.schedule, for the refine trials


class FinalSpec(_Section):
    epochs: int = Field(30, ge=1, le=MAX_EPOCHS)
    schedule: ScheduleName = "cosine"
    early_stopping_patience: int | None = Field(10, ge=1, le=MAX_EPOCHS)
    overfit_gap: float = Field(0.10, gt=0.0, lt=1.0)  # train - val accuracy gap
    underfit_train_accuracy: float = Field(0.9, gt=0.0, le=1.0)  # below: underfitting
    improving_gain: float = Field(0.005, ge=0.0)  # val acc gain over the last epochs: improving
    tta_flip: bool = False  # the same as tta: flip (kept for older specs)
    # test-time augmentation of the final model: flip (the image and its mirror) or crops (the
    # corners and centre of the padded image, mirrored too when flips keep the classes); kept
    # only if it raises the validation objective
    tta: Literal["none", "flip", "crops"] = "none"
    # > 1: an ensemble of k members, their probabilities averaged, kept only if it raises the
    # validation objective: the k best configurations, each trained (top_k), or the weights of
    # the k best epochs of the final run (snapshots, seed 003: no extra training)
    ensemble_top_k: int = Field(1, ge=1, le=20)
    ensemble: Literal["top_k", "snapshots"] = "top_k"
    targeted_stage: bool = True  # one more stage when the diagnosis calls for it


class RecipeSpec(_Section):
    sanity: SanitySpec = SanitySpec()
    range_test: RangeTestSpec = RangeTestSpec()
    coarse: CoarseSpec = CoarseSpec()
    refine: RefineSpec = RefineSpec()
    final: FinalSpec = FinalSpec()


class BudgetSpec(_Section):
    """Once spent, no new search trial starts; the final stage still runs (within what is left
    for its targeted stage)."""

    trial_epochs: int | None = Field(None, ge=1, le=10**9)  # total epochs over all stages
    seconds: float | None = Field(None, gt=0.0, le=1e9)  # total training seconds over all stages
    # with trial_epochs: each search round's trial count is set from the budget left, shared
    # as recipe.coarse.trials and recipe.refine.trials share the plan (docs/RECIPE.md)
    scale_trials: bool = True
    # with trial_epochs: the sanity checks and the range test together take at most this share
    # of it, their steps (and the overfit check's sample) scaled down to fit; null: their own
    # step counts whatever the budget
    up_front_share: float | None = Field(0.05, gt=0.0, le=1.0)


class StudySpec(_Section):
    name: str = Field("study", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    description: str = Field("", max_length=10_000)
    seed: int = Field(0, ge=0, lt=2**31)
    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    augment: AugmentSpec = AugmentSpec()
    train: TrainSpec = TrainSpec()
    search: SearchSpec = SearchSpec()
    recipe: RecipeSpec = RecipeSpec()
    budget: BudgetSpec = BudgetSpec()

    @model_validator(mode="after")
    def _check_consistency(self) -> StudySpec:
        data = self.dataset
        builtin = DATASETS.get(data.name)
        if not (builtin.flip_invariant if builtin else data.flip_invariant):
            why = f"{data.name} labels" if builtin else "the labels unless dataset.flip_invariant"
            for path, on in (
                ("augment.flip", self.augment.flip),
                ("train.tta_flip", self.train.tta_flip),
                ("recipe.final.tta_flip", self.recipe.final.tta_flip),
                ("recipe.final.tta", self.recipe.final.tta == "flip"),
            ):
                if on:
                    raise FieldProblem(path, f"horizontal flips do not preserve {why}")
        side = builtin.image_size if builtin else data.image_size
        if side is not None:  # an array file's own size is checked at launch, with the file
            check_image_size(self, side)
        if self.model.stochastic_depth > 0 and not self.model.residual:
            raise FieldProblem("model.stochastic_depth", "needs model.residual: true")
        if self.model.norm == "group":
            bad = [w for w in self.model.widths if w % self.model.groups]
            if bad:
                raise FieldProblem(
                    "model.groups", f"{self.model.groups} does not divide widths {bad}"
                )
        for key in self.search.extra:
            _check_extra_dimension(self, key)
        return self


def check_image_size(spec: StudySpec, side: int) -> None:
    """What must fit in ``side`` x ``side`` images: augmentation's pixels, the CNN's pooling."""
    for path, pixels in (
        ("augment.crop_padding", spec.augment.crop_padding),
        ("augment.translate", spec.augment.translate),
        ("augment.cutout", spec.augment.cutout),
    ):
        if pixels >= side:
            raise FieldProblem(path, f"{pixels} px must be smaller than the {side}x{side} images")
    if spec.model.arch == "builtin" and 2 ** (len(spec.model.widths) - 1) > side:
        raise FieldProblem(
            "model.widths", f"{len(spec.model.widths)} stages pool {side}px images below 1px"
        )


def _is_int(path: str) -> bool:
    """Whether the spec field ``path`` holds an int, by its type (``int``, ``int | None``, a
    literal of ints)."""
    annotation: object = StudySpec
    for part in path.split("."):
        fields = (
            annotation.model_fields
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else {}
        )
        if part not in fields:
            return False
        annotation = fields[part].annotation
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    if len(kinds) == 1 and typing.get_origin(kinds[0]) is Literal:
        kinds = [type(v) for v in typing.get_args(kinds[0])]
    return all(kind is int for kind in kinds)


def _check_extra_dimension(spec: StudySpec, key: str) -> None:
    """An extra search dimension must name a numeric field of the spec, such as model.dropout."""
    node: object = spec
    for part in key.split("."):
        if not isinstance(node, BaseModel) or part not in type(node).model_fields:
            raise FieldProblem(f"search.extra.{key}", "does not name a field of the spec")
        node = getattr(node, part)
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise FieldProblem(f"search.extra.{key}", "names a field that is not a number")
