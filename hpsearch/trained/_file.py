"""A trained model as one self-contained file: the weights of each member, and a card saying how
to rebuild and feed them (architecture, classes, image size and channels, normalisation, the
test-time augmentation) and what they scored.

The file is ``torch.save`` of ``{"card": <JSON text>, "weights": [state_dict, ...]}``: tensors,
strings and lists only, so it is read back with ``torch.load(weights_only=True)`` and a file from
elsewhere cannot run code when it is opened. A ``python:`` architecture is rebuilt by importing
its module, which the reader must allow (as a worker does: ``allow_modules``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from hpsearch.catalog import DatasetInfo
from hpsearch.data import DataBundle
from hpsearch.errors import ModelFileError
from hpsearch.results import ModelFile
from hpsearch.spec import ModelSpec, StudySpec
from hpsearch.trained._tta import Tta
from hpsearch.uploads import sha256_of

Kind = Literal["final", "ensemble", "member", "checkpoint"]


class ModelCard(BaseModel):
    """What a model file says of itself, beside its weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["hpsearch-model"] = "hpsearch-model"
    version: Literal[1] = 1
    kind: Kind
    study: str
    model: dict[str, Any]  # the spec's model section (ModelSpec)
    params: list[dict[str, float]]  # each member's hyperparameters, by spec path
    dataset: str
    classes: list[str] = Field(min_length=2)
    channels: Literal[1, 3]
    image_size: int = Field(ge=1, le=4096)
    flip_invariant: bool
    scale: float = Field(gt=0)  # a raw pixel value -> [0, 1]
    mean: list[float]  # per channel, of the [0, 1] training images
    std: list[float]
    tta: Tta = "none"
    tta_padding: int = Field(4, ge=1, le=64)  # crops: the reflect padding of the image
    eval_batch_size: int = Field(256, ge=1)
    objective: str = "accuracy"
    metrics: dict[str, float | None] = Field(default_factory=dict)  # what it scored

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            name=self.dataset,
            channels=self.channels,
            image_size=self.image_size,
            classes=tuple(self.classes),
            flip_invariant=self.flip_invariant,
            official_test_split=False,
        )

    def member_spec(self, index: int) -> ModelSpec:
        """Member ``index``'s model: the spec's model section with the member's own ``model.*``
        parameters (searched dimensions such as ``model.depth`` or ``model.dropout``)."""
        own = {
            k.removeprefix("model."): v
            for k, v in self.params[index].items()
            if k.startswith("model.")
        }
        return ModelSpec.model_validate(self.model | own)


def save_model(
    folder: Path, filename: str, card: ModelCard, members: Sequence[nn.Module]
) -> tuple[ModelFile, Path]:
    """Write ``members`` with ``card`` into ``folder`` (written aside, then renamed: never half
    a file); the file's reference (name, sha256, size) and where it is."""
    if len(members) != len(card.params):
        raise ValueError(f"{len(members)} members, {len(card.params)} sets of parameters")
    weights = [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in members]
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".model-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save({"card": card.model_dump_json(), "weights": weights}, out)
        digest, size = sha256_of(Path(temp)), Path(temp).stat().st_size
        where = folder / f"{digest}.pt"
        os.replace(temp, where)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return ModelFile(kind=card.kind, filename=filename, sha256=digest, size=size), where


def read_model_file(path: Path) -> tuple[ModelCard, list[dict[str, torch.Tensor]]]:
    """The card and the members' weights of the model file at ``path``; anything else is a
    :class:`ModelFileError` naming the file and what is wrong with it."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    with path.open("rb") as head:
        if head.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise ModelFileError(f"{path}: not a model file (not a PyTorch archive)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # untrusted bytes: whatever the unpickler says is the file's fault
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: cut off or corrupted ({why[:200]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("card"), str):
        raise ModelFileError(f"{path}: not an hpsearch model file (no model card)")
    try:
        card = ModelCard.model_validate_json(raw["card"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "card"
        raise ModelFileError(
            f"{path}: its model card is invalid: {where}: {first['msg']}"
        ) from None
    weights = raw.get("weights")
    if not isinstance(weights, list) or len(weights) != len(card.params):
        raise ModelFileError(f"{path}: its weights do not match its card's members")
    return card, weights


def card_for(
    spec: StudySpec,
    data: DataBundle,
    kind: Kind,
    params: Sequence[dict[str, float]],
    tta: Tta,
    metrics: dict[str, float | None],
) -> ModelCard:
    """The card of a model trained by ``spec`` on ``data`` (its members' ``params``)."""
    info = data.info
    return ModelCard(
        kind=kind,
        study=spec.name,
        model=spec.model.model_dump(mode="json"),
        params=[dict(p) for p in params],
        dataset=info.name,
        classes=list(info.classes),
        channels=info.channels,
        image_size=info.image_size,
        flip_invariant=info.flip_invariant,
        scale=data.scale,
        mean=data.mean.flatten().tolist(),
        std=data.std.flatten().tolist(),
        tta=tta,
        tta_padding=spec.augment.crop_padding or 4,
        eval_batch_size=spec.train.eval_batch_size,
        objective=spec.search.objective,
        metrics=metrics,
    )
