"""A model file loaded for use: ``load_model(path)`` returns an eval-mode module that takes
images as they come (uint8, any size, grey or colour) and gives the classes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hpsearch.data import convert_channels, decode_file, fit_images
from hpsearch.errors import HPSearchError, ModelFileError
from hpsearch.models import build_model
from hpsearch.trained._file import ModelCard, read_model_file
from hpsearch.trained._tta import Tta, tta_probabilities

Images = Tensor | np.ndarray[Any, Any] | Sequence[Tensor | np.ndarray[Any, Any]]


class TrainedModel(nn.Module):
    """The members of a model file, averaged, with the preprocessing they were trained with.

    ``forward(x)`` takes normalized float images ``(N, C, S, S)`` and returns the class
    probabilities, averaged over the test-time views (``tta``) and the members, in the order
    and with the arithmetic the final stage scored them with. ``predict(images)`` and
    ``predict_proba(images)`` take raw images; ``classes`` names the columns.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, card: ModelCard, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.card = card
        self.members = nn.ModuleList(members)
        self.tta: Tta = card.tta
        shape = (1, card.channels, 1, 1)
        self.register_buffer("mean", torch.tensor(card.mean).view(shape))
        self.register_buffer("std", torch.tensor(card.std).view(shape))
        self.eval()

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def image_size(self) -> int:
        return self.card.image_size

    def forward(self, x: Tensor) -> Tensor:
        flips, padding = self.card.flip_invariant, self.card.tta_padding
        total: Tensor | None = None
        for member in self.members:
            probs = tta_probabilities(member, x, self.tta, flips=flips, padding=padding)
            total = probs if total is None else total + probs
        assert total is not None
        return total / len(self.members) if len(self.members) > 1 else total

    def preprocess(self, images: Images) -> Tensor:
        """Raw images as normalized floats ``(N, C, S, S)``: a uint8 batch ``(N, C, H, W)`` or
        ``(N, H, W, C)`` (or one image, or a list of images of any sizes, grey ``(H, W)``
        included) fitted like the training data (shorter side, then centre crop)."""
        batch = _as_batch(images, self.card.channels, self.card.image_size)
        device = self.mean.device
        return (batch.to(device).float() * self.card.scale - self.mean) / self.std

    @torch.no_grad()
    def predict_proba(self, images: Images) -> Tensor:
        """Class probabilities ``(N, classes)``."""
        x = self.preprocess(images)
        size = self.card.eval_batch_size
        return torch.cat([self(x[i : i + size]) for i in range(0, len(x), size)])

    def predict(self, images: Images) -> Tensor:
        """The most probable class of each image, ``(N,)`` indices into ``classes``."""
        return self.predict_proba(images).argmax(1)

    def read_images(self, paths: Iterable[Path]) -> Tensor:
        """Image files decoded and fitted as a folder dataset's are: uint8 ``(N, C, S, S)``."""
        size, channels = self.card.image_size, self.card.channels
        decoded = []
        for path in paths:
            try:
                decoded.append(decode_file(path, channels, size))
            except Exception as exc:  # untrusted bytes: the file's fault, named
                why = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                raise HPSearchError(f"{path}: cannot be decoded as an image ({why})") from None
        if not decoded:
            return torch.empty(0, channels, size, size, dtype=torch.uint8)
        return torch.stack(decoded)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The model file at ``path`` (``hpsearch model download``), rebuilt in eval mode on
    ``device``. A ``python:`` architecture needs its module allowed in this process
    (``hpsearch.models.allow_modules``); a file that is not a model is a
    :class:`~hpsearch.trained.ModelFileError` naming it."""
    where = Path(path)
    card, weights = read_model_file(where)
    members = []
    for index, state in enumerate(weights):
        try:
            spec = card.member_spec(index)
        except Exception as exc:
            raise ModelFileError(f"{where}: its model section is invalid ({exc})") from None
        member = build_model(spec, card.info())
        try:
            member.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise ModelFileError(f"{where}: its weights do not fit {spec.arch}: {first}") from None
        members.append(member)
    return TrainedModel(card, members).to(device)


def _as_batch(images: Images, channels: int, size: int) -> Tensor:
    if isinstance(images, (list, tuple)):
        fitted = [_as_batch(image, channels, size) for image in images]
        return torch.cat(fitted) if fitted else torch.empty(0, channels, size, size)
    batch = torch.as_tensor(images)
    if batch.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0 to 255), not {batch.dtype}")
    if batch.ndim == 2:  # one grey image
        batch = batch[None, None]
    elif batch.ndim == 3:  # one image, channels first or last
        batch = batch[None]
    if batch.ndim != 4:
        raise ValueError(f"images of {batch.ndim} dimensions; expected 2 to 4")
    if batch.shape[1] not in (1, 3) and batch.shape[-1] in (1, 3):
        batch = batch.permute(0, 3, 1, 2)  # NHWC -> NCHW
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"images of shape {tuple(batch.shape)}: 1 or 3 channels")
    return fit_images(convert_channels(batch, channels), size)
