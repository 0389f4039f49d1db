"""Datasets as seeded on-device splits, and the batches drawn from them.

Names load on first use: describing a dataset (``describe_dataset``, ``resolve_path``, run by
the launch check on the server) needs no PyTorch; loading and batching do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.lazy import lazy_exports

if TYPE_CHECKING:
    from hpsearch.data._batches import Batch, TrainBatches, eval_batches
    from hpsearch.data._decode import convert_channels, decode_file, fit_images
    from hpsearch.data._folder import SPLIT_FOLDERS, list_folder
    from hpsearch.data._paths import not_regular, outside_roots, resolve_path
    from hpsearch.data._shapes import generate_shapes
    from hpsearch.data._sources import describe_dataset
    from hpsearch.data._splits import DataBundle, Split, load_data

_EXPORTS = {
    "list_folder": "hpsearch.data._folder",
    "SPLIT_FOLDERS": "hpsearch.data._folder",
    "fit_images": "hpsearch.data._decode",
    "decode_file": "hpsearch.data._decode",
    "convert_channels": "hpsearch.data._decode",
    "Batch": "hpsearch.data._batches",
    "TrainBatches": "hpsearch.data._batches",
    "eval_batches": "hpsearch.data._batches",
    "resolve_path": "hpsearch.data._paths",
    "outside_roots": "hpsearch.data._paths",
    "not_regular": "hpsearch.data._paths",
    "generate_shapes": "hpsearch.data._shapes",
    "describe_dataset": "hpsearch.data._sources",
    "DataBundle": "hpsearch.data._splits",
    "Split": "hpsearch.data._splits",
    "load_data": "hpsearch.data._splits",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "SPLIT_FOLDERS",
    "Batch",
    "DataBundle",
    "Split",
    "TrainBatches",
    "convert_channels",
    "decode_file",
    "describe_dataset",
    "eval_batches",
    "fit_images",
    "generate_shapes",
    "list_folder",
    "load_data",
    "not_regular",
    "outside_roots",
    "resolve_path",
]
