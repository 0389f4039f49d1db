from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.catalog import DATASETS
from hpsearch.data import DataBundle
from hpsearch.models import (
    RegularizedCNN,
    ResidualBlock,
    build_model,
    norm_layer,
    stochastic_depth,
)
from hpsearch.spec import ModelSpec

SHAPES = DATASETS["shapes"]
DIGITS = DATASETS["digits"]


def test_dropout_is_identity_in_eval_and_drops_p_with_inverted_scaling_in_train() -> None:
    model = build_model(ModelSpec(dropout=0.3), SHAPES)
    assert isinstance(model, RegularizedCNN)  # arch: builtin
    x = torch.rand(200, 1000) + 0.5
    model.eval()
    assert torch.equal(model.dropout(x), x)
    model.train()
    out = model.dropout(x)
    dropped = (out == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.02)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / 0.7)


def test_batch_norm_uses_batch_statistics_in_train_and_running_ones_in_eval() -> None:
    bn = norm_layer("batch", 4, 1)
    x = torch.randn(64, 4, 6, 6) * 3 + 5
    out = bn.train()(x)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-2)
    assert isinstance(bn, nn.BatchNorm2d)
    assert bn.running_mean is not None
    assert bn.running_var is not None
    assert (bn.running_mean > 0.4).all()
    bn.eval()
    # in eval a sample's output no longer depends on the rest of the batch
    assert torch.allclose(bn(x[:1]), bn(x)[:1])
    expected = (x - bn.running_mean.view(1, 4, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, 4, 1, 1) + bn.eps
    )
    assert torch.allclose(bn(x), expected, atol=1e-5)
    bn.train()
    assert not torch.allclose(bn(x[:2])[:1], bn(x)[:1])


@pytest.mark.parametrize(("kind", "dims"), [("layer", (1, 2, 3)), ("instance", (2, 3))])
def test_layer_and_instance_norm_normalize_per_sample_and_match_in_train_and_eval(
    kind: str, dims: tuple[int, ...]
) -> None:
    layer = norm_layer(kind, 4, 1)
    x = torch.randn(8, 4, 6, 6) * torch.arange(1, 9).view(8, 1, 1, 1) + 3
    out = layer.train()(x)
    assert torch.allclose(out.mean(dim=dims), torch.zeros(1), atol=1e-4)
    assert torch.allclose(out.var(dim=dims, unbiased=False), torch.ones(1), atol=1e-2)
    assert torch.allclose(layer.eval()(x), out)
    assert torch.allclose(layer(x[:1]), out[:1], atol=1e-6)


def test_group_norm_normalizes_each_group_of_channels() -> None:
    layer = norm_layer("group", 8, 2)
    x = torch.randn(4, 8, 5, 5) + torch.arange(8).view(1, 8, 1, 1)
    out = layer(x).view(4, 2, 4 * 25)
    assert torch.allclose(out.mean(2), torch.zeros(4, 2), atol=1e-5)
    assert torch.allclose(out.var(2, unbiased=False), torch.ones(4, 2), atol=1e-2)


def test_norm_none_gives_convs_a_bias_and_no_norm_layers() -> None:
    model = build_model(ModelSpec(norm="none"), DIGITS)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs
    assert all(c.bias is not None for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d | nn.GroupNorm) for m in model.modules())
    with_bn = build_model(ModelSpec(norm="batch"), DIGITS)
    assert all(c.bias is None for c in with_bn.modules() if isinstance(c, nn.Conv2d))


def test_stochastic_depth_drops_whole_samples_in_train_only() -> None:
    x = torch.ones(2000, 4, 3, 3)
    assert torch.equal(stochastic_depth(x, 0.25, training=False), x)
    out = stochastic_depth(x, 0.25, training=True)
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()
    assert (per_sample[:, 0] == 0).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_stochastic_depth_rate_grows_linearly_to_the_last_block() -> None:
    spec = ModelSpec(widths=[8, 16], depth=2, residual=True, stochastic_depth=0.2)
    blocks = [m for m in build_model(spec, SHAPES).modules() if isinstance(m, ResidualBlock)]
    assert [b.drop_rate for b in blocks] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    model = build_model(spec, SHAPES).eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(model(x), model(x))  # eval: every block is used, deterministic


def test_residual_blocks_project_the_shortcut_when_channels_change() -> None:
    spec = ModelSpec(widths=[8, 16], residual=True)
    blocks = [m for m in build_model(spec, SHAPES).modules() if isinstance(m, ResidualBlock)]
    assert isinstance(blocks[0].shortcut, nn.Identity)
    assert isinstance(blocks[1].shortcut, nn.Sequential)


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
def test_output_has_one_logit_per_class(dataset: str) -> None:
    info = DATASETS[dataset]
    model = build_model(ModelSpec(widths=[8, 16, 16]), info)
    x = torch.randn(3, info.channels, info.image_size, info.image_size)
    assert model(x).shape == (3, info.num_classes)


def test_convs_get_he_initialization() -> None:
    model = build_model(ModelSpec(widths=[64, 128]), SHAPES)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 64)
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)


def test_fresh_model_loss_is_about_ln_c(digits_data: DataBundle) -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(widths=[32, 64]), DIGITS).train()
    x = digits_data.normalize(digits_data.train.images[:512])
    with torch.no_grad():
        loss = F.cross_entropy(model(x), digits_data.train.labels[:512]).item()
    assert loss == pytest.approx(math.log(10), rel=0.02)
