"""Full-Resolution Dense Unit (FRDU): one step of GRUU-Net at one scale.

An FRDU joins two streams (Wollmann et al. 2019, after FRRN's full-resolution residual units):
the pooling stream o, which lives at 1/factor of the input resolution, and the recurrent state h,
which always lives at full resolution with C_h channels::

    o_in = ConvNorm_1x1([o_{t-1}, down(h_{t-1})])     down: to o's resolution
    o_t  = Dense(o_in)                               DenseNet-BC block
    x_t  = up(ConvNorm_1x1(o_t))                     to full resolution
    h_t  = ConvGRU(x_t, h_{t-1})

ConvNorm is a convolution with bias followed by BatchNorm (no activation), as in the blog's code.
Two choices differ between the blog's code and this package's default (both are options):

- ``state_downsample``: ``"maxpool"`` (default; the paper reports that bilinear interpolation in
  place of max pooling made training less stable) or ``"bilinear"`` (the blog's code). Bilinear
  down-sampling by 32 without anti-aliasing looks at 2x2 of every 32x32 pixels.
- ``project_before_upsample``: ``True`` (default, as FRRN does): the 1x1 ConvNorm maps o_t to C_h
  channels at low resolution, then the C_h channels are up-sampled. ``False`` (the blog's code):
  the 1x1 keeps all channels of o_t (up to 512), and these are up-sampled to full resolution
  where the GRU's 3x3 convolutions read them. The GRUU-Net with the blog's widths then needs about
  3.5x the FLOPs (see ``benchmarks/bench_model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.models.checks import validate_feature_map, validate_sizes
from gruunet_edu.models.config import STATE_DOWNSAMPLE_MODES
from gruunet_edu.models.convgru import make_convgru
from gruunet_edu.models.dense import DenseBlock


@dataclass
class FRDUStep:
    """What one FRDU computed (detached tensors), for looking inside the network.

    h, z, r: (B, C_h, H, W) new state, update gate and reset gate at full resolution;
    o: (B, C_o, H / factor, W / factor) the pooling stream at the FRDU's scale.
    """

    h: torch.Tensor
    z: torch.Tensor
    r: torch.Tensor
    o: torch.Tensor


class ConvNorm(nn.Sequential):
    """1x1 convolution (with bias) followed by BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True),
            nn.BatchNorm2d(out_channels),
        )


class FRDU(nn.Module):
    """One Full-Resolution Dense Unit.

    Args:
        in_channels: channels of the incoming pooling stream o_{t-1}.
        channels: channels of the outgoing pooling stream o_t (the level's width).
        hidden_channels: C_h, channels of the full-resolution state h.
        factor: o lives at 1/factor of h's resolution.
        num_layers, growth_rate, bn_size: the dense block (k, g, b).
        state_downsample: "maxpool" or "bilinear" for down(h_{t-1}).
        project_before_upsample: 1x1 to C_h before up-sampling (else keep ``channels``).
        fused_gru: use the fused ConvGRU cell (same maths).
        slope: LeakyReLU slope of the ConvGRU candidate.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        hidden_channels: int,
        factor: int,
        num_layers: int = 3,
        growth_rate: int = 32,
        bn_size: int = 2,
        state_downsample: str = "maxpool",
        project_before_upsample: bool = True,
        fused_gru: bool = True,
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        validate_sizes(
            "FRDU",
            in_channels=in_channels,
            channels=channels,
            hidden_channels=hidden_channels,
            factor=factor,
        )
        if state_downsample not in STATE_DOWNSAMPLE_MODES:
            raise ValueError(
                f"state_downsample must be 'maxpool' or 'bilinear', got {state_downsample!r}"
            )
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.factor = factor
        self.state_downsample = state_downsample
        self.project_before_upsample = project_before_upsample
        x_channels = hidden_channels if project_before_upsample else channels
        self.merge = ConvNorm(in_channels + hidden_channels, channels)
        self.dense = DenseBlock(channels, channels, num_layers, growth_rate, bn_size)
        self.project = ConvNorm(channels, x_channels)
        self.gru = make_convgru(x_channels, hidden_channels, slope, fused=fused_gru)

    def down(self, h: torch.Tensor) -> torch.Tensor:
        """Full-resolution state (B, C_h, H, W) -> (B, C_h, H/factor, W/factor)."""
        if self.state_downsample == "maxpool":
            return F.max_pool2d(h, self.factor)
        return F.interpolate(h, scale_factor=1 / self.factor, mode="bilinear")

    def forward(
        self, o_prev: torch.Tensor, h_prev: torch.Tensor, return_states: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, FRDUStep]:
        """o_prev (B, C_in, H/f, W/f), h_prev (B, C_h, H, W) -> o (B, C, H/f, W/f), h [, step]."""
        validate_feature_map(h_prev, "h_prev", self.hidden_channels, "FRDU")
        validate_feature_map(
            o_prev,
            "o_prev",
            self.in_channels,
            "FRDU",
            like=h_prev,
            like_name="h_prev",
            scale=self.factor,
        )
        o = self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1))  # (B, C, H/f, W/f)
        o = self.dense(o)  # (B, C, H/f, W/f)
        x = self.project(o)  # (B, C_h or C, H/f, W/f)
        x = F.interpolate(x, size=h_prev.shape[-2:], mode="bilinear")  # (B, ., H, W)
        if not return_states:
            return o, self.gru(x, h_prev)  # (B, C_h, H, W)
        h, z, r = self.gru(x, h_prev, return_gates=True)
        return o, h, FRDUStep(h=h.detach(), z=z.detach(), r=r.detach(), o=o.detach())
