"""The model a study trains: the built-in regularized CNN, any torchvision classification
architecture, or the user's own builder (``python:MODULE:CALLABLE``), built only in a process that
allows its module.

Which modules are allowed loads without PyTorch (the CLI, the worker and the local runner set it
before anything heavy loads); the models load PyTorch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.lazy import lazy_exports
from hpsearch.models._allow import (
    allow_modules,
    allowed_modules,
    check_module_allowed,
    own_model_allowed,
    python_module,
)

if TYPE_CHECKING:
    from hpsearch.models._build import build_model
    from hpsearch.models._cnn import (
        ConvBlock,
        RegularizedCNN,
        ResidualBlock,
        init_weights,
        norm_layer,
        stochastic_depth,
    )
    from hpsearch.models._torchvision import torchvision_names, unknown_torchvision_name

_TORCH = {
    "build_model": "hpsearch.models._build",
    "ConvBlock": "hpsearch.models._cnn",
    "RegularizedCNN": "hpsearch.models._cnn",
    "ResidualBlock": "hpsearch.models._cnn",
    "init_weights": "hpsearch.models._cnn",
    "norm_layer": "hpsearch.models._cnn",
    "stochastic_depth": "hpsearch.models._cnn",
    "torchvision_names": "hpsearch.models._torchvision",
    "unknown_torchvision_name": "hpsearch.models._torchvision",
}

__getattr__ = lazy_exports(__name__, _TORCH)

__all__ = [
    "ConvBlock",
    "RegularizedCNN",
    "ResidualBlock",
    "allow_modules",
    "allowed_modules",
    "build_model",
    "check_module_allowed",
    "init_weights",
    "norm_layer",
    "own_model_allowed",
    "python_module",
    "stochastic_depth",
    "torchvision_names",
    "unknown_torchvision_name",
]
