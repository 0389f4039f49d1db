"""The model a spec describes, whichever kind ``model.arch`` names."""

from __future__ import annotations

import torch
from torch import nn

from hpsearch.catalog import DatasetInfo
from hpsearch.errors import ModelError
from hpsearch.models._cnn import RegularizedCNN
from hpsearch.models._torchvision import build_torchvision
from hpsearch.models._user import build_user_model
from hpsearch.spec import ModelSpec


def build_model(spec: ModelSpec, info: DatasetInfo) -> nn.Module:
    """The untrained model ``spec`` describes, for ``info``'s classes, channels and image size.

    ``builtin``: the regularized CNN (He init, a small head: a fresh model's loss is ln(C));
    ``torchvision:NAME``: that architecture, untrained, with torchvision's init;
    ``python:MODULE:CALLABLE``: the user's builder, if this process allows MODULE
    (:func:`~hpsearch.models.allow_modules`). Anything that goes wrong building a model other
    than the built-in one, or running it on one image of the data's size, is a
    :class:`~hpsearch.errors.ModelError` naming ``model.arch``.
    """
    if spec.arch == "builtin":
        return RegularizedCNN(spec, info.channels, info.num_classes)
    if spec.arch.startswith("torchvision:"):
        model = build_torchvision(spec.arch, info)
    else:
        model = build_user_model(spec, info)
    _check_takes_images(model, spec.arch, info)
    return model


def _check_takes_images(model: nn.Module, arch: str, info: DatasetInfo) -> None:
    """Run ``model`` once on a blank image of the data's size, so that an architecture that
    pools such images away fails here, saying so, rather than in the middle of a stage."""
    side, channels = info.image_size, info.channels
    device = next(model.parameters(), torch.empty(0)).device
    training = model.training
    model.eval()  # batch norm takes a single image, and nothing random runs
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, side, side, device=device))
    except (MemoryError, torch.OutOfMemoryError) as exc:  # not the images' fault: say so
        what = f"ran out of memory on one {side}x{side} image: it is too large for this machine"
        raise ModelError(arch, what, exc) from exc
    except Exception as exc:
        plural = "s" if channels != 1 else ""
        what = f"cannot take the data's {side}x{side} images with {channels} channel{plural}"
        raise ModelError(arch, what, exc) from exc
    finally:
        model.train(training)
