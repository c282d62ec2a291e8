"""DenseNet-BC dense layer and block (Huang et al. 2017), the feature extractor inside an FRDU.

A dense layer (the "BC" bottleneck form)::

    y = Conv_3x3(ReLU(BN(Conv_1x1(ReLU(BN(x))))))      1x1: b*g channels, 3x3: g channels

and a dense block of k layers feeds each layer the concatenation of the block input and all
earlier layer outputs::

    x_l = [x_0, y_1, ..., y_{l-1}],   y_l = DenseLayer_l(x_l)
    out = ReLU(BN(Conv_1x1(ReLU(BN([x_0, y_1, ..., y_k])))))   transition to out_features

All convolutions here are bias-free (a BatchNorm follows each of them), as in torchvision's
DenseNet. This is the block the blog's GRUU-Net code uses (``DenseNet(k=3, in_features=c,
out_features=c, bn_size=2)``), which gives its parameter count of 5,170,210.
"""

from __future__ import annotations

import torch
from torch import nn

from gruunet_edu.models.checks import validate_feature_map, validate_sizes


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bn_size * growth_rate) - BN-ReLU-3x3 conv (growth_rate), bias-free."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        inner = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_features)
        self.conv1 = nn.Conv2d(in_features, inner, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, growth_rate, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_features, H, W) -> new features (B, growth_rate, H, W)."""
        y = self.conv1(self.relu(self.norm1(x)))  # bottleneck, (B, b*g, H, W)
        return self.conv2(self.relu(self.norm2(y)))  # (B, g, H, W)


class DenseBlock(nn.Module):
    """k dense layers with concatenated inputs, then a BN-ReLU-1x1 transition and BN-ReLU.

    Args:
        in_features: channels of the block input.
        out_features: channels of the block output.
        num_layers: k, number of dense layers.
        growth_rate: g, channels each layer adds.
        bn_size: b, bottleneck width factor of each layer's 1x1 convolution.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_layers: int,
        growth_rate: int = 32,
        bn_size: int = 2,
    ) -> None:
        super().__init__()
        validate_sizes(
            "DenseBlock",
            in_features=in_features,
            out_features=out_features,
            growth_rate=growth_rate,
            bn_size=bn_size,
        )
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"DenseBlock needs num_layers >= 0 (an integer), got {num_layers!r}")
        self.in_features = in_features
        self.layers = nn.ModuleList(
            DenseLayer(in_features + i * growth_rate, growth_rate, bn_size)
            for i in range(num_layers)
        )
        total = in_features + num_layers * growth_rate
        self.transition = nn.Sequential(
            nn.BatchNorm2d(total),
            nn.ReLU(inplace=True),
            nn.Conv2d(total, out_features, kernel_size=1, bias=False),
        )
        self.norm = nn.BatchNorm2d(out_features)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_features, H, W) -> (B, out_features, H, W)."""
        validate_feature_map(x, "x", self.in_features, "DenseBlock")
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))  # each adds (B, g, H, W)
        y = self.transition(torch.cat(features, dim=1))  # (B, out_features, H, W)
        return self.relu(self.norm(y))
