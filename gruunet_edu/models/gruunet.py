"""GRUU-Net (Wollmann et al., Medical Image Analysis 2019): a U-Net of FRDUs with one ConvGRU state.

The network keeps a full-resolution state h with C_h channels and refines it once per FRDU, while
a pooling stream o goes down the scales and up again like a U-Net::

    h_0 = o_0 = LeakyReLU(BN(Conv_5x5(image)))                              stem, C_h channels
    encoder t = 1..S:      o_t, h_t = FRDU_t(maxpool_2(o_{t-1}), h_{t-1})     scale 2**t
    decoder t = S+1..2S-1: o_t, h_t = FRDU_t(bilinear_x2(o_{t-1}), h_{t-1})  scale 2**(2S-t)
    h   = h_T + LeakyReLU(BN(Conv_3x3(h_T)))                                 residual block
    logits = Conv_3x3(h)                                                     head

As in the blog's code the head is a 3x3 convolution (the blog's text says 1x1). ``readout`` applies
the residual block and head to any state, which shows what the network would predict if it
stopped after step t.

Inputs whose height or width is not a multiple of ``config.size_multiple`` (2**S) are
reflect-padded at the bottom and right, and the logits and captured states are cropped back (o at
scale f to ceil(H / f) x ceil(W / f)), so any size from ``size_multiple // 2 + 1`` pixels on works.

Speed: ``model.to(memory_format=torch.channels_last)`` is all it takes to run every convolution in
channels-last order (PyTorch follows the weights' order); ``benchmarks/bench_model.py`` measures
what that changes on a given machine (the README quotes its numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.models.checks import pad_to_multiple, validate_image_batch
from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.frdu import FRDU, FRDUStep


class GRUUNet(nn.Module):
    """GRU-U-Net built from a ``GRUUNetConfig``.

    ``forward(x)`` returns logits (B, num_classes, H, W); ``forward(x, return_states=True)``
    returns ``(logits, states)`` with one detached ``FRDUStep`` (h, z, r, o) per FRDU, in order.
    Nothing is kept when states are not asked for.
    """

    arch = "gruunet"

    def __init__(self, config: GRUUNetConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else GRUUNetConfig()
        self.config = config
        c_h, slope = config.hidden_channels, config.leaky_slope
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, c_h, config.stem_kernel, padding=config.stem_kernel // 2),
            nn.BatchNorm2d(c_h),
            nn.LeakyReLU(slope),
        )
        in_widths = (c_h,) + config.widths[:-1]  # FRDU_1 reads the (max-pooled) stem output
        self.frdus = nn.ModuleList(
            FRDU(
                in_channels=c_in,
                channels=c_out,
                hidden_channels=c_h,
                factor=factor,
                num_layers=k,
                growth_rate=config.growth_rate,
                bn_size=config.bottleneck,
                state_downsample=config.state_downsample,
                project_before_upsample=config.project_before_upsample,
                fused_gru=config.fused_gru,
                slope=slope,
            )
            for c_in, c_out, factor, k in zip(
                in_widths,
                config.widths,
                config.frdu_factors,
                config.dense_layers_per_step,
                strict=True,
            )
        )
        self.residual = nn.Sequential(
            nn.Conv2d(c_h, c_h, 3, padding=1), nn.BatchNorm2d(c_h), nn.LeakyReLU(slope)
        )
        self.head = nn.Conv2d(c_h, config.num_classes, 3, padding=1)

    def validate_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the expected shape (B, in_channels, H, W) for a bad input."""
        validate_image_batch(x, self.config.in_channels, "GRUUNet")

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Residual block + head on a full-resolution state h (B, C_h, H, W) -> logits.

        ``readout(states[-1].h)`` reproduces the logits, except, for a padded input, in the last
        two rows and columns: there the 3x3 convolutions saw the padding, which the captured
        (cropped) states no longer hold.
        """
        h = h + self.residual(h)  # (B, C_h, H, W)
        return self.head(h)  # (B, num_classes, H, W)

    def forward(
        self, x: torch.Tensor, return_states: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[FRDUStep]]:
        """x (B, in_channels, H, W) float -> logits (B, num_classes, H, W) [, states]."""
        self.validate_input(x)
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.config.size_multiple, "GRUUNet")  # (B, C_in, H', W')
        h = self.stem(x)  # h_0, (B, C_h, H', W')
        o = h  # o_0
        states: list[FRDUStep] = []
        num_scales = self.config.num_scales
        for t, frdu in enumerate(self.frdus):
            if t < num_scales:
                o = F.max_pool2d(o, 2)  # encoder: one scale down
            else:
                o = F.interpolate(o, scale_factor=2, mode="bilinear")  # decoder: one scale up
            if return_states:
                o, h, step = frdu(o, h, return_states=True)
                states.append(_crop_step(step, height, width, frdu.factor))
            else:
                o, h = frdu(o, h)  # (B, C_t, H'/f, W'/f), (B, C_h, H', W')
        logits = self.readout(h)[..., :height, :width]  # (B, num_classes, H, W)
        if return_states:
            return logits, states
        return logits


def _crop_step(step: FRDUStep, height: int, width: int, factor: int) -> FRDUStep:
    """Crop a captured step of a padded input back to the input's size (o to ceil(size / f))."""
    oh, ow = -(-height // factor), -(-width // factor)
    return FRDUStep(
        h=step.h[..., :height, :width],
        z=step.z[..., :height, :width],
        r=step.r[..., :height, :width],
        o=step.o[..., :oh, :ow],
    )
