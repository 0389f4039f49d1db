"""Optimizers with weight decay kept off norm and bias parameters; the explicit L1/L2 penalty."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hpsearch.spec import TrainSpec

# norms whose scale may have more than one dimension (over (C, H, W)); the others' are vectors
_NORMS = (nn.LayerNorm, nn.RMSNorm)


def decayed_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, everything else) of any model. A weight is a parameter named ``*weight`` with
    more than one dimension outside a norm: the kernels and matrices of convs, linears and
    attention. The rest (norm scales and shifts, biases, layer scales, position embeddings,
    class tokens) is not decayed nor penalized.

    Decaying a norm's scale or a bias only fights the normalization; it does not regularize.
    """
    decay: list[nn.Parameter] = []
    keep: list[nn.Parameter] = []
    for name, p in model.named_parameters():  # each shared parameter once
        if not p.requires_grad:
            continue
        owner, _, leaf = name.rpartition(".")
        in_norm = isinstance(model.get_submodule(owner), _NORMS)
        (decay if leaf.endswith("weight") and p.ndim > 1 and not in_norm else keep).append(p)
    return decay, keep


def build_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """The optimizer ``spec.optimizer`` names; only the weights (:func:`decayed_parameters`) get
    ``weight_decay``."""
    decay, keep = decayed_parameters(model)
    groups = [
        {"params": decay, "weight_decay": spec.weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]
    lr, name = spec.lr, spec.optimizer
    if name in ("sgd", "momentum", "nesterov"):
        momentum = 0.0 if name == "sgd" else spec.momentum
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=name == "nesterov")
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.99)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=spec.betas)
    return torch.optim.AdamW(groups, lr=lr, betas=spec.betas)


def explicit_penalty(weights: list[nn.Parameter], l1: float, l2: float) -> Tensor | None:
    """``l1 * sum|w| + l2 * sum w^2`` over ``weights`` (elastic net when both are set), or None."""
    if not weights or (l1 == 0.0 and l2 == 0.0):
        return None
    total = weights[0].new_zeros(())
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + l2 * w.square().sum()
    return total
