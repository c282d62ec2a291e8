"""A plain U-Net (Ronneberger et al., MICCAI 2015), the baseline GRUU-Net is compared with.

The same number of scales S as the GRUU-Net config, widths doubling at every scale from a base
width w (level i has ``w * 2**i`` channels, i = 0..S)::

    e_0 = Block(image)                                 (B, w, H, W)
    e_i = Block(maxpool_2(e_{i-1}))        i = 1..S    (B, w 2^i, H / 2^i, W / 2^i)
    d_S = e_S
    d_i = Block([up_2(d_{i+1}), e_i])      i = S-1..0  skip connection by concatenation
    logits = Conv_1x1(d_0)                             (B, num_classes, H, W)

    Block = ReLU(BN(Conv_3x3(ReLU(BN(Conv_3x3(.))))))  convolutions bias-free (BN follows)

Departures from the 2015 paper, the usual ones today: padded 3x3 convolutions (the map is not
cropped), BatchNorm, bilinear up-sampling instead of transposed convolutions (as in GRUU-Net's
decoder). The base width is not the paper's 64: ``unet_for(config)`` searches the base width whose
parameter count is closest to the GRUU-Net of the same config (within 10% for every preset), so
the comparison is between architectures, not sizes. A U-Net is a single feed-forward pass: it has
no recurrent state to look inside.

Inputs are checked and padded exactly as for GRUU-Net (``models/checks.py``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.models.checks import pad_to_multiple, validate_image_batch
from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.counting import count_parameters
from gruunet_edu.models.gruunet import GRUUNet

MAX_BASE_WIDTH = 256  # upper end of the base-width search


class ConvBlock(nn.Sequential):
    """Two (3x3 conv, BN, ReLU) layers: (B, in_channels, H, W) -> (B, out_channels, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net baseline built from a ``GRUUNetConfig`` (in_channels, num_classes, num_scales).

    Args:
        config: the GRUU-Net config to match (only in/out channels and the number of scales are
            used, so checkpoints store the same config for both architectures).
        base_width: channels of the first level; ``None`` picks the width whose parameter count
            is closest to ``GRUUNet(config)`` (see ``matching_base_width``).

    ``forward(x)`` returns logits (B, num_classes, H, W).
    """

    arch = "unet"

    def __init__(self, config: GRUUNetConfig | None = None, base_width: int | None = None) -> None:
        super().__init__()
        config = config if config is not None else GRUUNetConfig()
        if base_width is None:
            base_width = matching_base_width(config)
        if not isinstance(base_width, int) or isinstance(base_width, bool) or base_width < 1:
            raise ValueError(f"UNet base_width must be a positive int, got {base_width!r}")
        self.config = config
        self.base_width = base_width
        s = config.num_scales
        self.widths = tuple(base_width * 2**i for i in range(s + 1))  # levels 0..S
        w = self.widths
        self.encoder = nn.ModuleList(
            [ConvBlock(config.in_channels, w[0])]
            + [ConvBlock(w[i - 1], w[i]) for i in range(1, s + 1)]
        )
        # decoder[j] builds level i = S-1-j from up(level i+1) and the skip e_i
        self.decoder = nn.ModuleList(ConvBlock(w[i + 1] + w[i], w[i]) for i in range(s - 1, -1, -1))
        self.head = nn.Conv2d(w[0], config.num_classes, kernel_size=1)

    def validate_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the expected shape (B, in_channels, H, W) for a bad input."""
        validate_image_batch(x, self.config.in_channels, "UNet")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, H, W) float -> logits (B, num_classes, H, W)."""
        self.validate_input(x)
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.config.size_multiple, "UNet")  # (B, C_in, H', W')
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))  # e_i, (B, w 2^i, H'/2^i, W'/2^i)
            skips.append(x)
        for block, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, scale_factor=2, mode="bilinear")  # (B, w 2^(i+1), H'/2^i, .)
            x = block(torch.cat([x, skip], dim=1))  # d_i, (B, w 2^i, H'/2^i, W'/2^i)
        return self.head(x)[..., :height, :width]  # (B, num_classes, H, W)


@functools.lru_cache(maxsize=64)
def matching_base_width(config: GRUUNetConfig) -> int:
    """Base width of the U-Net whose parameter count is closest to ``GRUUNet(config)``'s.

    Both networks are built on the ``meta`` device (no memory, no initialisation), so the search
    over base widths 1..``MAX_BASE_WIDTH`` takes milliseconds. The count grows with the base
    width, so the search stops at the first width past the target.
    """
    with torch.device("meta"):
        target = count_parameters(GRUUNet(config))
        best, best_error = 1, float("inf")
        for base in range(1, MAX_BASE_WIDTH + 1):
            error = abs(count_parameters(UNet(config, base_width=base)) - target) / target
            if error < best_error:
                best, best_error = base, error
            else:
                break  # past the minimum: counts only grow from here
    return best


def unet_for(config: GRUUNetConfig) -> UNet:
    """The U-Net with about the parameter count of ``GRUUNet(config)`` (same in/out, scales)."""
    return UNet(config, base_width=matching_base_width(config))
