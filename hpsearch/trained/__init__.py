"""Trained models as files: saved by the final stage, kept in the study's artifact store,
downloaded (``hpsearch model download``), loaded (``load_model``), used (``hpsearch predict``)
and started from (``model.init_from``: ``start_from``, transfer learning). How a model's
class probabilities are averaged over test-time views (``tta_probabilities``) lives here too:
the final stage scores a model with it, and the file it saves reproduces those scores with it.

``load_model``, ``TrainedModel`` and the rest load PyTorch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.errors import ModelFileError
from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from hpsearch.trained._export import export_model
    from hpsearch.trained._file import (
        Kind,
        ModelCard,
        card_for,
        read_model_file,
        save_model,
    )
    from hpsearch.trained._model import TrainedModel, load_model
    from hpsearch.trained._predict import predict_files
    from hpsearch.trained._transfer import (
        TRANSFER_LINEAR_BELOW,
        Transfer,
        TransferError,
        chosen_freeze,
        start_from,
    )
    from hpsearch.trained._tta import Tta, crop_views, tta_probabilities

_EXPORTS = {
    "predict_files": "hpsearch.trained._predict",
    "Kind": "hpsearch.trained._file",
    "ModelCard": "hpsearch.trained._file",
    "card_for": "hpsearch.trained._file",
    "read_model_file": "hpsearch.trained._file",
    "save_model": "hpsearch.trained._file",
    "export_model": "hpsearch.trained._export",
    "TrainedModel": "hpsearch.trained._model",
    "load_model": "hpsearch.trained._model",
    "TRANSFER_LINEAR_BELOW": "hpsearch.trained._transfer",
    "Transfer": "hpsearch.trained._transfer",
    "TransferError": "hpsearch.trained._transfer",
    "chosen_freeze": "hpsearch.trained._transfer",
    "start_from": "hpsearch.trained._transfer",
    "Tta": "hpsearch.trained._tta",
    "crop_views": "hpsearch.trained._tta",
    "tta_probabilities": "hpsearch.trained._tta",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "TRANSFER_LINEAR_BELOW",
    "Kind",
    "ModelCard",
    "ModelFileError",
    "TrainedModel",
    "Transfer",
    "TransferError",
    "Tta",
    "card_for",
    "chosen_freeze",
    "crop_views",
    "export_model",
    "load_model",
    "predict_files",
    "read_model_file",
    "save_model",
    "start_from",
    "tta_probabilities",
]
