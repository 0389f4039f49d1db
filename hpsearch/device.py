"""Choosing the training device and setting up CUDA for speed."""

from __future__ import annotations

import torch

from hpsearch.errors import HPSearchError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HPSearchError(
                f"device {name!r} asked for, but this machine has no usable CUDA GPU"
            )
        configure_cuda()
    elif name != "cpu":
        raise HPSearchError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def configure_cuda() -> None:
    """Let cuDNN pick the fastest kernels for our fixed batch shapes, and allow TF32 matmuls."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
