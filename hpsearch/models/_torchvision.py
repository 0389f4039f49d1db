"""``model.arch: torchvision:NAME``: a torchvision classification architecture, untrained.

Built with ``weights=None`` (nothing is downloaded), its head sized to the classes by torchvision
and its first convolution to the data's channels here; torchvision's own initialization is kept.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
import torchvision
from torch import nn

from hpsearch.catalog import DatasetInfo
from hpsearch.errors import ModelError

# Keyword arguments some builders need to train on our data: googlenet and inception_v3 return
# auxiliary logits in training mode, which would need a loss of their own (init_weights=True is
# their current default, stated so they do not warn).
_EXTRA: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}
_SIZED = ("vit_",)  # vision transformers: built for the data's image size rather than 224


def torchvision_names() -> list[str]:
    """The classification architectures this torchvision has (no detection, no quantized)."""
    names: list[str] = torchvision.models.list_models(module=torchvision.models)
    return names


def unknown_torchvision_name(name: str) -> str | None:
    """Why ``torchvision:NAME`` cannot be built, with close names suggested; None if it can."""
    names = torchvision_names()
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    hint = f"close names: {', '.join(close)}" if close else "see torchvision.models.list_models()"
    return f"torchvision {torchvision.__version__} has no classification model {name!r}; {hint}"


def build_torchvision(arch: str, info: DatasetInfo) -> nn.Module:
    """The untrained torchvision model ``arch`` names, for ``info``'s classes and channels."""
    name = arch.removeprefix("torchvision:")
    problem = unknown_torchvision_name(name)
    if problem is not None:
        raise ModelError(arch, problem)
    kwargs = dict(_EXTRA.get(name, {}))
    if name.startswith(_SIZED):
        kwargs["image_size"] = info.image_size
    try:
        model: nn.Module = torchvision.models.get_model(
            name, weights=None, num_classes=info.num_classes, **kwargs
        )
    except Exception as exc:  # e.g. a vision transformer's patches do not divide the image
        size = f"{info.image_size}x{info.image_size}"
        raise ModelError(arch, f"torchvision could not build it for {size} images", exc) from exc
    _adapt_first_conv(model, arch, info.channels)
    return model


def _adapt_first_conv(model: nn.Module, arch: str, channels: int) -> None:
    """Give the first convolution ``channels`` inputs, its other settings unchanged.

    Its weights are torchvision's own draw for the first ``channels`` inputs (fewer inputs:
    grey images), or a fresh draw at the same scale (more inputs).
    """
    convs = [(path, m) for path, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs or convs[0][1].in_channels == channels:
        return
    path, old = convs[0]
    if old.groups != 1:
        raise ModelError(arch, f"its first convolution is grouped; cannot adapt it to {channels}")
    same = {
        key: getattr(old, key)
        for key in ("kernel_size", "stride", "padding", "dilation", "padding_mode")
    }
    new = nn.Conv2d(
        channels,
        old.out_channels,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
        **same,
    )
    with torch.no_grad():
        if channels < old.in_channels:
            new.weight.copy_(old.weight[:, :channels])
        else:
            new.weight.normal_(0.0, float(old.weight.std()))
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias)
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent), leaf, new)
