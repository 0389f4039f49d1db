"""Datasets as seeded on-device splits, and the batches drawn from them."""

from hpsearch.data._batches import Batch, TrainBatches, eval_batches
from hpsearch.data._shapes import generate_shapes
from hpsearch.data._splits import DataBundle, Split, load_data

__all__ = [
    "Batch",
    "DataBundle",
    "Split",
    "TrainBatches",
    "eval_batches",
    "generate_shapes",
    "load_data",
]
