"""What a study must pass before it is accepted: everything its work will derive, and its memory.

A spec that parses can still derive an invalid one: ``search.extra`` of ``model.dropout`` up to
2.0 makes trials with a dropout of 2.0; ``recipe.coarse.epochs`` times the refine factor can pass
``train.epochs``' bound. Such a study used to launch, then fail every claim. :func:`check_launch`
builds every spec the study's work items will run with (``_derive``, the functions the stage
machine and the stages use themselves), at the corners of the search space, and estimates the
memory one work item needs, so that all of this is refused at launch, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hpsearch.catalog import DatasetInfo
from hpsearch.data import describe_dataset
from hpsearch.errors import SpecError
from hpsearch.recipe._common import without_regularization
from hpsearch.recipe._derive import (
    Params,
    final_spec,
    range_test_spec,
    stage_epochs,
    targeted_plan,
    trial_spec,
)
from hpsearch.spec import STUDY_PREFIX, StudySpec, spec_with
from hpsearch.spec._model import FieldProblem, check_image_size

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
        data = f"data {_gib(self.data)} ({self.images:,} images), loading peak {_gib(self.loading)}"
        model = (
            f"weights and optimizer state {_gib(self.weights)}, "
            f"activations {_gib(self.activations)}"
            if self.model_counted
            else "the model's weights and activations not counted: only the built-in CNN's are "
            "known before it is built"
        )
        return f"about {_gib(self.total)} per work item ({data}, {model})"

    def culprit(self) -> str:
        """The spec field that drives the estimate most."""
        if self.loading >= self.data + self.weights + self.activations or self.data >= max(
            self.weights, self.activations
        ):
            return self.data_field
        return "model.widths" if self.weights >= self.activations else "train.batch_size"


def check_launch(
    spec: StudySpec,
    memory_limit: MemoryLimit | None = None,
    source: str | None = None,
    store: Path | None = None,
) -> None:
    """Refuse (:class:`SpecError`, every problem with its field) a spec whose work would fail:
    an invalid derived spec, a torchvision model torchvision does not have, the user's data
    that cannot be used (``store``: where uploaded data is kept), or, given ``memory_limit``,
    more memory than it allows."""
    info, problems = dataset_problems(spec, store)
    problems = derived_problems(spec) + model_problems(spec) + problems
    problems += init_problems(spec, info, store) if not problems else []
    if memory_limit is not None and not problems:

        def estimate_corner(corner: StudySpec) -> MemoryEstimate:
            same_data = corner.dataset == spec.dataset  # a search may vary dataset fields
            return estimate_memory(corner, info if same_data else None, store)

        estimate = max(map(estimate_corner, _memory_corners(spec)), key=_total)
        if estimate.total > memory_limit.bytes:
            problems.append(
                (
                    estimate.culprit(),
                    f"needs {estimate.describe()}, above {memory_limit.name} of "
                    f"{_gib(memory_limit.bytes)}",
                )
            )
    if problems:
        raise SpecError(problems, source)


def dataset_problems(
    spec: StudySpec, store: Path | None = None
) -> tuple[DatasetInfo | None, list[tuple[str, str]]]:
    """The study's dataset as described (None if it cannot be used) and what is wrong with it:
    the user's data refused naming the field, or an array file's images too small for the
    augmentation or the CNN (a folder's size is the spec's, checked with the spec)."""
    try:
        info = describe_dataset(spec.dataset, store)
    except SpecError as exc:
        return None, exc.problems
    if spec.dataset.name == "arrays" and spec.dataset.image_size is None:
        try:
            check_image_size(spec, info.image_size)
        except FieldProblem as exc:
            return info, [(exc.path, f"{exc} (the size of {spec.dataset.path}'s images)")]
    return info, []


def model_problems(spec: StudySpec) -> list[tuple[str, str]]:
    """A ``torchvision:NAME`` that torchvision does not have, with close names suggested.

    A ``python:`` model is not imported here: its module lives on the workers that allow it (a
    server must not run a spec's code), so it is first built by the study's sanity checks.
    """
    if not spec.model.arch.startswith("torchvision:"):
        return []
    from hpsearch.models import unknown_torchvision_name  # PyTorch: only for such a spec

    problem = unknown_torchvision_name(spec.model.arch.removeprefix("torchvision:"))
    return [] if problem is None else [("model.arch", problem)]


def init_problems(
    spec: StudySpec, info: DatasetInfo | None, store: Path | None = None
) -> list[tuple[str, str]]:
    """What keeps the model file ``model.init_from`` names from starting this spec's model:
    missing, unreadable, of other channels or another architecture (``store``: where uploaded
    files are kept). A ``python:`` model is not built here (see :func:`model_problems`): its
    sanity checks say so instead."""
    init = spec.model.init_from
    if init is None or info is None:
        return []
    from hpsearch.data._paths import resolve_path
    from hpsearch.models import TransferError, build_model, start_from

    if init.startswith(STUDY_PREFIX):  # resolved before this check where there is one
        return [("model.init_from", f"{init!r}: no database here to find that study in")]
    model_spec = spec.model.model_copy(update={"init_from": str(resolve_path(init, store))})
    try:
        if spec.model.arch.startswith("python:"):
            from hpsearch.trained import ModelFileError, read_model_file

            try:
                read_model_file(Path(model_spec.init_from or ""))
            except ModelFileError as exc:
                raise TransferError(str(exc)) from None
            return []
        start_from(build_model(model_spec, info), model_spec, info, train_images=0)
    except TransferError as exc:
        return [("model.init_from", str(exc).removeprefix("model.init_from: "))]
    return []


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
    search_blame = _search_blame(spec)
    corners = list(_corners(spec))
    stages = ["coarse"] + (["refine-1"] if spec.recipe.refine.rounds else [])
    for stage in stages:
        factor = "recipe.coarse.epochs" if stage == "coarse" else "recipe.refine.epochs_factor"
        blame = search_blame | {"train.epochs": factor}
        for params in corners:
            what = f"a {stage} trial"
            yield blame, what, partial(trial_spec, spec, params, stage_epochs(spec, stage))
    final_blame = search_blame | {"train.epochs": "recipe.final.epochs"}
    for params in [*corners, _spec_config(spec)]:
        yield final_blame, "the final training", partial(final_spec, spec, params)
        for verdict in ("still improving", "overfitting"):
            _, epochs, variants = targeted_plan(spec, params, verdict)
            for variant in variants:
                what = f"the targeted stage ({verdict})"
                yield final_blame, what, partial(final_spec, spec, variant, epochs)


def _search_blame(spec: StudySpec) -> dict[str, str]:
    blame = {"train.lr": "search.lr", "train.weight_decay": "search.weight_decay"}
    return blame | {path: f"search.extra.{path}" for path in spec.search.extra}


def _spec_config(spec: StudySpec) -> dict[str, float]:
    """The final stage's configuration when no search trial completed: the spec's own."""
    return {"train.lr": spec.train.lr, "train.weight_decay": spec.train.weight_decay}


def _corners(spec: StudySpec) -> Iterator[dict[str, float]]:
    """Search points at the edges of every dimension: all low, all high, and each dimension
    high alone (a field's bounds are an interval, so its edges decide)."""
    dims = {"train.lr": spec.search.lr, "train.weight_decay": spec.search.weight_decay}
    dims |= dict(spec.search.extra)
    edges = {path: _edges(spec, path, dim.low, dim.high) for path, dim in dims.items()}
    low = {path: lo for path, (lo, _) in edges.items()}
    yield low
    yield {path: hi for path, (_, hi) in edges.items()}
    for path, (_, hi) in edges.items():
        yield low | {path: hi}


def _edges(spec: StudySpec, path: str, low: float, high: float) -> tuple[float, float]:
    """An integer field is searched over the integers in [low, high] (``_trials.distributions``)."""
    node: object = spec
    for part in path.split("."):
        node = getattr(node, part)
    if isinstance(node, int) and not isinstance(node, bool):
        return float(math.ceil(low)), float(math.floor(high))
    return low, high


def _memory_corners(spec: StudySpec) -> Iterator[StudySpec]:
    """The spec, and its search's extra dimensions all at their highest (a batch size, a depth
    searched up to a value costs what that value costs)."""
    yield spec
    if spec.search.extra:
        extra = spec.search.extra.items()
        highest: Params = {path: _edges(spec, path, d.low, d.high)[1] for path, d in extra}
        try:
            yield spec_with(spec, highest)
        except SpecError:
            return  # refused as a derived spec already


def estimate_memory(
    spec: StudySpec, info: DatasetInfo | None = None, store: Path | None = None
) -> MemoryEstimate:
    """What one work item of ``spec`` needs at its peak (an estimate before anything is
    allocated; the real figure depends on the device and the library's workspace). ``info``:
    the dataset as :func:`describe_dataset` describes it (described here, with ``store``, if
    not given).

    Only the built-in CNN's weights and activations are counted; for another ``model.arch``
    (built on the workers, from torchvision or the user's module) the data alone is."""
    info = info or describe_dataset(spec.dataset, store)
    images = info.images or spec.dataset.size
    side, channels = info.image_size, info.channels
    pixels = images * channels * side * side
    # shapes are drawn in float32 with noise (about 13 bytes a pixel at the peak); a file data
    # set is read, split (a copy) and the training split's statistics taken in float32
    loading = pixels * (13 if spec.dataset.name == "shapes" else 5)
    builtin = spec.model.arch == "builtin"
    params, saved, largest = (
        _footprint(spec, channels, side, info.num_classes) if builtin else (0, 0, 0)
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


def _footprint(spec: StudySpec, channels: int, side: int, classes: int) -> tuple[int, int, int]:
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


def _total(estimate: MemoryEstimate) -> int:
    return estimate.total


def _gib(n: int) -> str:
    return f"{n / _GIB:.1f} GiB" if n >= _GIB / 10 else f"{n / 2**20:.0f} MiB"
