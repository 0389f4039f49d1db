"""A trained model exported for serving with ``torch.export``: one ``.pt2`` program that takes
uint8 images at the model's size and channels, ``(N, C, S, S)``, and returns the class
probabilities, normalisation, test-time augmentation and ensemble averaging included. It runs
without hpsearch (``torch.export.load(path).module()``), for every architecture a spec allows
(the built-in CNN, torchvision's, a ``python:`` builder's module as long as it traces).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from hpsearch.errors import ModelFileError
from hpsearch.trained._model import TrainedModel

MAX_BATCH = 4096


class Serving(nn.Module):
    """``model`` behind its own preprocessing: uint8 ``(N, C, S, S)`` in, probabilities out."""

    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.model = model
        self.scale = model.card.scale

    def forward(self, images: Tensor) -> Tensor:
        x = (images.float() * self.scale - self.model.mean) / self.model.std
        probs: Tensor = self.model(x)
        return probs


def export_model(model: TrainedModel, path: Path) -> Path:
    """Export ``model`` with ``torch.export`` (the batch size free, up to 4,096) to ``path``;
    an architecture ``torch.export`` cannot trace is a :class:`ModelFileError` saying so."""
    card = model.card
    example = torch.zeros(2, card.channels, card.image_size, card.image_size, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    serving = Serving(model).eval()
    try:
        program = torch.export.export(serving, (example,), dynamic_shapes={"images": {0: batch}})
    except Exception as exc:  # the architecture's code, not ours: say which and why
        why = " ".join(str(exc).split())[:300]
        raise ModelFileError(
            f"{card.model.get('arch', 'builtin')} cannot be exported with torch.export: {why}"
        ) from None
    torch.export.save(program, path)
    return path
