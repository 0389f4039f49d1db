"""The launch check: everything a study's work will derive, its data, its model and its memory.

A spec that parses can still derive an invalid one (the rules: ``hpsearch.recipe``'s
``derived_problems``), name data or a model file that cannot be used, or need more memory than a
worker has. :func:`check_launch` refuses all of this at launch, naming the field. It reads the
data's description and, for ``model.init_from`` or a torchvision model, builds the model, so it
lives with the stages' PyTorch work rather than in the recipe's rules.
"""

from __future__ import annotations

from pathlib import Path

from hpsearch.catalog import DatasetInfo
from hpsearch.data import describe_dataset, not_regular, resolve_path
from hpsearch.errors import SpecError
from hpsearch.recipe import (
    MemoryEstimate,
    MemoryLimit,
    derived_problems,
    format_gib,
    memory_corners,
    memory_estimate,
)
from hpsearch.spec import STUDY_PREFIX, FieldProblem, StudySpec, check_image_size


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

        estimate = max(map(estimate_corner, memory_corners(spec)), key=_total)
        if estimate.total > memory_limit.bytes:
            problems.append(
                (
                    estimate.culprit(),
                    f"needs {estimate.describe()}, above {memory_limit.name} of "
                    f"{format_gib(memory_limit.bytes)}",
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
    from hpsearch.models import build_model
    from hpsearch.trained import TransferError, start_from

    if init.startswith(STUDY_PREFIX):  # resolved before this check where there is one
        return [("model.init_from", f"{init!r}: no database here to find that study in")]
    file = resolve_path(init, store)
    if not_regular(file) or file.is_dir():
        return [("model.init_from", f"{init} is not a regular file")]
    model_spec = spec.model.model_copy(update={"init_from": str(file)})
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


def estimate_memory(
    spec: StudySpec, info: DatasetInfo | None = None, store: Path | None = None
) -> MemoryEstimate:
    """What one work item of ``spec`` needs at its peak (``hpsearch.recipe``'s
    ``memory_estimate``); ``info``: the dataset as :func:`describe_dataset` describes it
    (described here, with ``store``, if not given)."""
    return memory_estimate(spec, info or describe_dataset(spec.dataset, store))


def _total(estimate: MemoryEstimate) -> int:
    return estimate.total
