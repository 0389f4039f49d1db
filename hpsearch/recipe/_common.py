"""Pieces the recipe's stages share: the regularization-free spec and small statistics."""

from __future__ import annotations

import hashlib

from hpsearch.spec import AugmentSpec, StudySpec, spec_with


def without_regularization(spec: StudySpec) -> StudySpec:
    """The spec with every regularizer and augmentation off (the sanity checks' setting)."""
    quiet = spec_with(
        spec,
        {
            "model.dropout": 0.0,
            "model.stochastic_depth": 0.0,
            "train.weight_decay": 0.0,
            "train.l1": 0.0,
            "train.l2": 0.0,
            "train.label_smoothing": 0.0,
            "train.schedule": "constant",
            "train.warmup_epochs": 0.0,
            "train.early_stopping_patience": None,
        },
    )
    return quiet.model_copy(update={"augment": AugmentSpec()})


def derived_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (the same in every process and Python version)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
