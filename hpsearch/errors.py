"""Typed errors of the core library.

Every error a user can cause or meet carries a message that names what is wrong and, where there is
one, what to do about it. Front ends map these types to what they answer: the CLI to exit codes,
the API to HTTP statuses (its one table, ``api/errors.py``); the core never formats for a
particular front end and knows nothing of HTTP.
"""

from __future__ import annotations

from pathlib import Path


class HPSearchError(Exception):
    """Base class of every error hpsearch raises on purpose."""


class SpecError(HPSearchError):
    """A study spec is invalid. ``problems`` holds one ``(field path, message)`` pair per fault."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid study spec{where}:"]
        lines += [f"  {path}: {message}" if path else f"  {message}" for path, message in problems]
        super().__init__("\n".join(lines))


class DatasetNotFoundError(HPSearchError):
    """Dataset files are missing from the data directory and downloading is off."""

    def __init__(self, dataset: str, looked_in: Path, missing: list[str], how_to_get: str) -> None:
        self.dataset = dataset
        self.looked_in = looked_in
        self.missing = missing
        super().__init__(
            f"dataset {dataset!r} not found: looked in {looked_in} for {', '.join(missing)}. "
            f"{how_to_get}"
        )


class DatasetFormatError(HPSearchError):
    """A dataset file exists but is not in the format it should be."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


class DivergedError(HPSearchError):
    """Training blew up: a non-finite loss, or a loss far above chance. ``epoch`` is 1-based."""

    def __init__(self, epoch: int, reason: str, lr: float) -> None:
        self.epoch = epoch
        self.reason = reason
        self.lr = lr
        super().__init__(
            f"training diverged at epoch {epoch}: {reason} with train.lr = {lr:g}; "
            "lower the learning rate or add warmup"
        )


class StudyExistsError(HPSearchError):
    """A study of that name is already in the storage."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a study named {name!r} already exists")


class StudyNotFoundError(HPSearchError):
    """No study of that name or id is in the storage."""

    def __init__(self, key: str | int) -> None:
        self.key = key
        super().__init__(f"no study {key!r} in this storage")


class StorageError(HPSearchError):
    """The storage URL is malformed or its database cannot be reached."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"cannot open storage {url!r}: {problem}")


class OutcomeError(HPSearchError):
    """A finished work item's outcome does not fit the item (wrong state, missing results)."""

    def __init__(self, item: str, problem: str) -> None:
        self.item = item
        self.problem = problem
        super().__init__(f"outcome of {item}: {problem}")


class CancelledError(HPSearchError):
    """A work item was given up part-way: its study was stopped, or its worker is shutting down.
    Not the item's fault: it is handed back to be done again."""

    def __init__(self, why: str = "its study was stopped or its worker is shutting down") -> None:
        super().__init__(f"given up part-way: {why}")


class ObjectiveUndefinedError(HPSearchError):
    """The metric a search maximises cannot be computed on this data: ROC-AUC on a validation
    split that holds one class only."""

    def __init__(self, objective: str, why: str) -> None:
        self.objective = objective
        super().__init__(
            f"search.objective {objective!r} is undefined here: {why}; choose another objective"
        )


class ModelError(HPSearchError):
    """The model ``model.arch`` names cannot be built here, or cannot take the data's images.
    One line; ``cause``, the exception behind it, is shown by its type and first 300 characters."""

    def __init__(self, arch: str, problem: str, cause: BaseException | None = None) -> None:
        self.arch = arch
        self.problem = problem
        if cause is not None:
            text = " ".join(str(cause).split())[:300]
            problem += f": {type(cause).__name__}" + (f": {text}" if text else "")
        super().__init__(f"model.arch {arch!r}: {problem}")


class ModuleNotAllowedError(ModelError):
    """A ``python:`` model's module is outside what this process allows to be imported: a spec
    must not run code on a machine whose owner did not opt in (``hpsearch.models.allow_modules``,
    the worker's ``--allow-module``)."""

    def __init__(self, arch: str, module: str) -> None:
        self.module = module
        super().__init__(
            arch,
            f"this process does not allow importing {module}; run the worker with "
            f"--allow-module {module} (or a prefix of it, such as {module.split('.')[0]})",
        )


class ModelFileError(HPSearchError):
    """A file that is not a usable hpsearch model: corrupt, cut off, or of another kind. The
    message names the file and what is wrong with it."""


class ArtifactError(HPSearchError):
    """A model file or checkpoint that cannot be kept or served now: not received before the
    finish that names it, or sent for an item that takes none any more."""


class ArtifactNotFoundError(ArtifactError):
    """No such model file or checkpoint: none was kept, or it is gone."""


class ArtifactKindError(ArtifactError):
    """A file sent for an item of a kind that keeps none (a checkpoint of a sanity check)."""


class ArtifactSpaceError(ArtifactError):
    """No room to keep the file: the disk of the artifact directory is full."""


class ArtifactWriteError(ArtifactError):
    """The artifact directory cannot be written for another reason than room."""
