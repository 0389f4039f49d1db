"""The launch rules: what a study's work will derive, and the memory one work item needs.

A spec that parses can still derive an invalid one: ``search.extra`` of ``model.dropout`` up to
2.0 makes trials with a dropout of 2.0; ``recipe.coarse.epochs`` times the refine factor can pass
``train.epochs``' bound. Such a study used to launch, then fail every claim.
:func:`derived_problems` builds every spec the study's work items will run with (``_derive``, the
functions the stage machine and the stages use themselves), at the corners of the search space;
:func:`memory_estimate` counts what one work item needs. ``hpsearch.stages.check_launch`` applies
both, with the data's description, so that all of this is refused at launch, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from hpsearch.catalog import DatasetInfo
from hpsearch.errors import SpecError
from hpsearch.recipe._common import without_regularization
from hpsearch.recipe._derive import (
    Params,
    final_spec,
    range_test_spec,
    spec_config,
    stage_epochs,
    targeted_plan,
    trial_spec,
)
from hpsearch.spec import SearchRange, StudySpec, spec_with

_GIB = 2**30
_FLOAT = 4  # bytes: activations and weights are float32 (bf16 autocast on CUDA halves some)
_WEIGHT_COPIES = 4  # the weights, their gradients, and up to two optimizer moments (Adam)


@dataclass(frozen=True)
class MemoryLimit:
    bytes: int
    name: str  # what sets it, for the message (e.g. the server's setting)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one work item of a spec needs at its peak, and where they go."""

    images: int
    data: int  # every split on the training device, uint8
    loading: int  # the peak while the data set is read or generated, before training
    weights: int  # weights, gradients and optimizer state
    activations: int  # what a training batch keeps for the backward pass (or an eval batch)
    model_counted: bool = True  # False: another arch than the built-in CNN, weights not counted
    data_field: str = "dataset.size"  # what to change for less data (the user's: its image size)

    @property
    def total(self) -> int:
        return max(self.loading, self.data + self.weights + self.activations)

    def describe(self) -> str:
        data = (
            f"data {format_gib(self.data)} ({self.images:,} images), "
            f"loading peak {format_gib(self.loading)}"
        )
        model = (
            f"weights and optimizer state {format_gib(self.weights)}, "
            f"activations {format_gib(self.activations)}"
            if self.model_counted
            else "the model's weights and activations not counted: only the built-in CNN's are "
            "known before it is built"
        )
        return f"about {format_gib(self.total)} per work item ({data}, {model})"

    def culprit(self) -> str:
        """The spec field that drives the estimate most."""
        if self.loading >= self.data + self.weights + self.activations or self.data >= max(
            self.weights, self.activations
        ):
            return self.data_field
        return "model.widths" if self.weights >= self.activations else "train.batch_size"


def derived_problems(spec: StudySpec) -> list[tuple[str, str]]:
    """Every problem of a spec some work item of ``spec`` would run with, blamed on the field of
    ``spec`` that caused it."""
    problems: dict[tuple[str, str], str] = {}  # the first work item to meet each problem
    for blame, what, derive in _derivations(spec):
        try:
            derive()
        except SpecError as exc:
            for path, message in exc.problems:
                key = (blame.get(path, path), f"{path}: {message}")
                problems.setdefault(key, what)
    return [(field, f"{what} would set {problem}") for (field, problem), what in problems.items()]


Derivation = tuple[dict[str, str], str, Callable[[], StudySpec]]
"""(which field of the study's spec to blame for which field of the derived one, what derives
it, the derivation)"""


def _derivations(spec: StudySpec) -> Iterator[Derivation]:
    cfg = spec.recipe.range_test
    yield {}, "the sanity checks", partial(without_regularization, spec)
    yield {}, "the range test", partial(range_test_spec, spec)
    for lr in (cfg.min_lr, cfg.max_lr):
        blame = {"train.lr": "recipe.range_test"}
        yield blame, "the range test", partial(range_test_spec, spec, lr)
    search_blame = {path: spec.search.bound_by(path) for path in spec.search.dimensions()}
    corners = list(_corners(spec))
    stages = ["coarse"] + (["refine-1"] if spec.recipe.refine.rounds else [])
    for stage in stages:
        factor = "recipe.coarse.epochs" if stage == "coarse" else "recipe.refine.epochs_factor"
        blame = search_blame | {"train.epochs": factor}
        for params in corners:
            what = f"a {stage} trial"
            yield blame, what, partial(trial_spec, spec, params, stage_epochs(spec, stage), stage)
    final_blame = search_blame | {"train.epochs": "recipe.final.epochs"}
    for params in [*corners, spec_config(spec)]:
        yield final_blame, "the final training", partial(final_spec, spec, params)
        for verdict in ("still improving", "overfitting"):
            _, epochs, variants = targeted_plan(spec, params, verdict)
            for variant in variants:
                what = f"the targeted stage ({verdict})"
                yield final_blame, what, partial(final_spec, spec, variant, epochs)


def _corners(spec: StudySpec) -> Iterator[dict[str, float]]:
    """Search points at the edges of every dimension: all low, all high, and each dimension
    high alone (a field's bounds are an interval, so its edges decide)."""
    edges = {path: _edges(searched) for path, searched in spec.search.dimensions().items()}
    low = {path: lo for path, (lo, _) in edges.items()}
    yield low
    yield {path: hi for path, (_, hi) in edges.items()}
    for path, (_, hi) in edges.items():
        yield low | {path: hi}


def _edges(searched: SearchRange) -> tuple[float, float]:
    """The lowest and highest value searched: an integer range's are the integers inside it
    (as ``hpsearch.scheduling.distributions`` draws them)."""
    if searched.integer:
        return float(math.ceil(searched.low)), float(math.floor(searched.high))
    return searched.low, searched.high


def memory_corners(spec: StudySpec) -> Iterator[StudySpec]:
    """The spec, and its search's extra dimensions all at their highest (a batch size, a depth
    searched up to a value costs what that value costs)."""
    yield spec
    if spec.search.extra:
        dims = spec.search.dimensions()
        highest: Params = {path: _edges(dims[path])[1] for path in spec.search.extra}
        try:
            yield spec_with(spec, highest)
        except SpecError:
            return  # refused as a derived spec already


def model_footprint(
    spec: StudySpec, channels: int, side: int, classes: int
) -> tuple[int, int, int]:
    """The CNN's (parameters, floats one image keeps for the backward pass, its largest single
    activation), block by block as ``hpsearch.models.RegularizedCNN`` builds it."""
    model = spec.model
    params = 9 * channels * model.widths[0] + 2 * model.widths[0]  # the stem block
    saved = 2 * channels * side * side + 2 * model.widths[0] * side * side  # input, augmented
    largest, c_in, h = model.widths[0] * side * side, model.widths[0], side
    for stage, width in enumerate(model.widths):
        if stage > 0:
            h = max(1, h // 2)
            saved += c_in * h * h
        for _ in range(model.depth):
            if model.residual:
                params += 9 * c_in * width + 9 * width * width + 4 * width
                params += c_in * width if c_in != width else 0
                saved += 6 * width * h * h
            else:
                params += 9 * c_in * width + 2 * width
                saved += 2 * width * h * h
            largest, c_in = max(largest, width * h * h), width
    params += c_in * classes + classes
    return params, saved, largest


def format_gib(n: int) -> str:
    return f"{n / _GIB:.1f} GiB" if n >= _GIB / 10 else f"{n / 2**20:.0f} MiB"


def memory_estimate(spec: StudySpec, info: DatasetInfo) -> MemoryEstimate:
    """What one work item of ``spec`` needs at its peak on data described by ``info`` (an
    estimate before anything is allocated; the real figure depends on the device and the
    library's workspace).

    Only the built-in CNN's weights and activations are counted; for another ``model.arch``
    (built on the workers, from torchvision or the user's module) the data alone is."""
    images = info.images or spec.dataset.size
    side, channels = info.image_size, info.channels
    pixels = images * channels * side * side
    # shapes are drawn in float32 with noise (about 13 bytes a pixel at the peak); a file data
    # set is read, split (a copy) and the training split's statistics taken in float32
    loading = pixels * (13 if spec.dataset.name == "shapes" else 5)
    builtin = spec.model.arch == "builtin"
    params, saved, largest = (
        model_footprint(spec, channels, side, info.num_classes) if builtin else (0, 0, 0)
    )
    train = min(spec.train.batch_size, images) * saved * _FLOAT
    evaluation = min(spec.train.eval_batch_size, images) * largest * _FLOAT * 3
    return MemoryEstimate(
        images=images,
        data=pixels,
        loading=loading,
        weights=params * _FLOAT * _WEIGHT_COPIES,
        activations=max(train, evaluation),
        model_counted=builtin,
        data_field="dataset.image_size" if spec.dataset.path else "dataset.size",
    )
