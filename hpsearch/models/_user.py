"""``model.arch: python:MODULE:CALLABLE``: the user's own builder, from a module this process
allows (``_allow.py``).

The builder is called as ``CALLABLE(num_classes=..., in_channels=..., image_size=...,
**model.options)`` and must return a ``torch.nn.Module`` whose forward maps a
(B, in_channels, image_size, image_size) batch to (B, num_classes) logits. Its initialization is
its own.
"""

from __future__ import annotations

import importlib

from torch import nn

from hpsearch.catalog import DatasetInfo
from hpsearch.errors import ModelError
from hpsearch.models._allow import check_module_allowed
from hpsearch.spec import ModelSpec

BUILDER_ARGUMENTS = ("num_classes", "in_channels", "image_size")


def build_user_model(spec: ModelSpec, info: DatasetInfo) -> nn.Module:
    """Import ``spec.arch``'s module (if this process allows it) and call its builder for
    ``info``'s classes, channels and image size with ``spec.options``."""
    arch = spec.arch
    check_module_allowed(arch)
    _, module_name, name = arch.split(":")
    clash = [key for key in BUILDER_ARGUMENTS if key in spec.options]
    if clash:
        raise ModelError(arch, f"model.options cannot set {clash[0]}: it comes from the data")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # not installed here, or its code failed on import
        raise ModelError(arch, f"cannot import {module_name} on this machine", exc) from exc
    builder = getattr(module, name, None)
    if not callable(builder):
        what = f"has no {name}" if builder is None else f"has {name}, a {type(builder).__name__}"
        raise ModelError(arch, f"{module_name} {what}, not a callable that builds the model")
    sizes = {
        "num_classes": info.num_classes,
        "in_channels": info.channels,
        "image_size": info.image_size,
    }
    try:
        model = builder(**sizes, **spec.options)
    except Exception as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in (sizes | spec.options).items())
        raise ModelError(arch, f"{name}({given}) failed", exc) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            arch, f"{name}(...) returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model
