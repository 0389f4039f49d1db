from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from torch import nn

from hpsearch.catalog import DATASETS
from hpsearch.data import DataBundle
from hpsearch.models import RegularizedCNN, build_model
from hpsearch.spec import ModelSpec, TrainSpec
from hpsearch.training import Trainer, build_optimizer, decayed_parameters, explicit_penalty
from tests.conftest import CPU, make_spec

OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, object]]] = {
    "sgd": (torch.optim.SGD, {"momentum": 0.0, "nesterov": False}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adam": (torch.optim.Adam, {"betas": (0.9, 0.999)}),
    "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999)}),
}
GOOD_LR = {"sgd": 0.3, "momentum": 0.15, "nesterov": 0.15, "adagrad": 0.02, "rmsprop": 3e-3,
           "adam": 3e-3, "adamw": 3e-3}  # fmt: skip


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_is_built_as_named_and_lowers_the_loss(
    name: str, digits_data: DataBundle
) -> None:
    spec = make_spec(train={"optimizer": name, "lr": GOOD_LR[name], "weight_decay": 0.0})
    trainer = Trainer(spec, digits_data, CPU)
    cls, settings = OPTIMIZERS[name]
    assert type(trainer.optimizer) is cls
    for key, value in settings.items():
        assert trainer.optimizer.defaults[key] == value
    x, labels, _ = next(iter(trainer.batches.epoch()))
    first = trainer.step(x, labels, None)[0].item()
    for _ in range(40):
        last = trainer.step(x, labels, None)[0].item()
    assert last < 0.6 * first


def test_weight_decay_skips_norm_and_bias_parameters() -> None:
    model = build_model(ModelSpec(norm="batch"), DATASETS["digits"])
    assert isinstance(model, RegularizedCNN)
    optimizer = build_optimizer(model, TrainSpec(weight_decay=0.01))
    decayed, kept = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01
    assert kept["weight_decay"] == 0.0
    assert all(p.ndim == 4 or p.ndim == 2 for p in decayed["params"])
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    head = model.head
    kept_ids = {id(p) for p in kept["params"]}
    assert {id(bn.weight), id(bn.bias), id(head.bias)} <= kept_ids
    assert id(head.weight) not in kept_ids


class Attending(nn.Module):
    """Parameters a conv net does not have: attention's own weight matrix, a position embedding,
    a layer scale, a layer norm over (C, H, W), a weight shared by two layers."""

    def __init__(self) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, 4, 8))
        self.attention = nn.MultiheadAttention(8, 2)
        self.norm = nn.LayerNorm((4, 3, 3))
        self.scale = nn.Parameter(torch.ones(8, 1, 1))
        self.first = nn.Linear(8, 8)
        self.second = nn.Linear(8, 8)
        self.second.weight = self.first.weight


def test_weight_decay_takes_weights_of_any_model_and_keeps_the_rest() -> None:
    model = Attending()
    decayed, kept = (set(map(id, group)) for group in decayed_parameters(model))
    assert decayed == {id(model.attention.in_proj_weight), id(model.attention.out_proj.weight),
                       id(model.first.weight)}  # fmt: skip
    assert {id(model.position), id(model.scale), id(model.norm.weight), id(model.norm.bias)} <= kept
    assert id(model.first.bias) in kept
    build_optimizer(model, TrainSpec())  # the shared weight is in one group, once

    resnet = build_model(ModelSpec(arch="torchvision:resnet18"), DATASETS["digits"])
    decayed_list, kept_list = decayed_parameters(resnet)
    norms = [m for m in resnet.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {id(p) for m in norms for p in m.parameters()} <= {id(p) for p in kept_list}
    assert all(p.ndim in (2, 4) for p in decayed_list)
    assert len(decayed_list) == sum(isinstance(m, nn.Conv2d | nn.Linear) for m in resnet.modules())


def weight_norms(spec_train: Mapping[str, object], data: DataBundle) -> tuple[float, float]:
    """(L1, L2) norms of the decayed weights after a short training run."""
    trainer = Trainer(make_spec(train=spec_train), data, CPU)
    trainer.fit()
    weights, _ = decayed_parameters(trainer.model)
    l1 = sum(w.abs().sum().item() for w in weights)
    l2 = sum(w.square().sum().item() for w in weights) ** 0.5
    return l1, l2


def test_weight_decay_shrinks_weights_compared_with_none(digits_data: DataBundle) -> None:
    _, none = weight_norms({"weight_decay": 0.0}, digits_data)
    _, decayed = weight_norms({"weight_decay": 0.05}, digits_data)
    assert decayed < 0.8 * none


def test_l1_and_l2_penalties_shrink_their_norms(digits_data: DataBundle) -> None:
    base_l1, base_l2 = weight_norms({"weight_decay": 0.0}, digits_data)
    l1_only, _ = weight_norms({"weight_decay": 0.0, "l1": 1e-3}, digits_data)
    _, l2_only = weight_norms({"weight_decay": 0.0, "l2": 1e-2}, digits_data)
    elastic = {"weight_decay": 0.0, "l1": 1e-3, "l2": 1e-2}
    elastic_l1, elastic_l2 = weight_norms(elastic, digits_data)
    assert l1_only < 0.9 * base_l1
    assert l2_only < 0.9 * base_l2
    assert elastic_l1 < l1_only
    assert elastic_l2 < l2_only


def test_explicit_penalty_is_the_elastic_net_formula() -> None:
    w = [nn.Parameter(torch.tensor([[1.0, -2.0]])), nn.Parameter(torch.tensor([[3.0]]))]
    penalty = explicit_penalty(w, l1=0.1, l2=0.01)
    assert penalty is not None
    assert penalty.item() == pytest.approx(0.1 * 6 + 0.01 * 14)
    assert explicit_penalty(w, 0.0, 0.0) is None
