"""Trained models as files: saved by the final stage, kept in the study's artifact store,
downloaded (``hpsearch model download``), loaded (``load_model``) and used (``hpsearch predict``).

``load_model`` and ``TrainedModel`` load PyTorch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.errors import ModelFileError
from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from hpsearch.trained._export import export_model
    from hpsearch.trained._file import (
        ModelCard,
        card_for,
        read_model_file,
        save_model,
    )
    from hpsearch.trained._model import TrainedModel, load_model

_EXPORTS = {
    "ModelCard": "hpsearch.trained._file",
    "card_for": "hpsearch.trained._file",
    "read_model_file": "hpsearch.trained._file",
    "save_model": "hpsearch.trained._file",
    "export_model": "hpsearch.trained._export",
    "TrainedModel": "hpsearch.trained._model",
    "load_model": "hpsearch.trained._model",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ModelCard",
    "ModelFileError",
    "TrainedModel",
    "card_for",
    "export_model",
    "load_model",
    "read_model_file",
    "save_model",
]
