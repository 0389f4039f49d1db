"""The built-in model (``model.arch: builtin``), a regularized CNN: stages of conv3x3 -> norm ->
ReLU (plain or residual), global average pool, dropout, linear head.

Every stage after the first starts with a 2x2 max pool, halving the resolution. Residual blocks
carry stochastic depth whose drop rate grows linearly with depth up to ``stochastic_depth`` at the
last block (Huang et al., 2016).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hpsearch.spec import ModelSpec


def norm_layer(kind: str, channels: int, groups: int) -> nn.Module:
    """A normalization over ``channels`` feature maps.

    layer: one group, so mean/var are over (C, H, W) of each sample; instance: over (H, W) of each
    channel of each sample. Only batch norm behaves differently in train and eval mode.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def stochastic_depth(x: Tensor, drop_rate: float, training: bool) -> Tensor:
    """Drop the whole residual branch of each sample with probability ``drop_rate`` in training.

    Survivors are scaled by 1/(1-p) (the inverted form), so in eval mode the branch is used as is,
    which equals the notes' "multiply by the survival probability at test time".
    """
    if not training or drop_rate == 0.0:
        return x
    keep = 1.0 - drop_rate
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) < keep
    return x * mask / keep


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, norm: str, groups: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"),
            norm_layer(norm, c_out, groups),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, norm: str, groups: int, drop_rate: float) -> None:
        super().__init__()
        self.drop_rate = drop_rate
        self.branch = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"),
            norm_layer(norm, c_out, groups),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=norm == "none"),
            norm_layer(norm, c_out, groups),
        )
        self.shortcut: nn.Module = nn.Identity()
        if c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, bias=norm == "none"), norm_layer(norm, c_out, groups)
            )

    def forward(self, x: Tensor) -> Tensor:
        branch = stochastic_depth(self.branch(x), self.drop_rate, self.training)
        return torch.relu(self.shortcut(x) + branch)


class RegularizedCNN(nn.Module):
    def __init__(self, spec: ModelSpec, in_channels: int, num_classes: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = [ConvBlock(in_channels, spec.widths[0], spec.norm, spec.groups)]
        total = len(spec.widths) * spec.depth
        index, c_in = 0, spec.widths[0]
        for stage, width in enumerate(spec.widths):
            if stage > 0:
                blocks.append(nn.MaxPool2d(2))
            for _ in range(spec.depth):
                index += 1
                if spec.residual:
                    rate = spec.stochastic_depth * index / total
                    blocks.append(ResidualBlock(c_in, width, spec.norm, spec.groups, rate))
                else:
                    blocks.append(ConvBlock(c_in, width, spec.norm, spec.groups))
                c_in = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, C, h, w)
        x = self.pool(x).flatten(1)  # (B, C)
        logits: Tensor = self.head(self.dropout(x))  # (B, num_classes)
        return logits


def init_weights(model: nn.Module) -> None:
    """He (Kaiming) init for convs feeding ReLUs; a small head, so a fresh model's loss is ln(C)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
