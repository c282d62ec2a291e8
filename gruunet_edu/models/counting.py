"""What a network costs: its trainable parameters and the FLOPs of one forward pass."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, size: int = 256, batch: int = 1) -> int:
    """FLOPs of one forward pass on a ``(batch, C, size, size)`` input (a multiply-add = 2).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on PyTorch's ``meta`` device, which
    tracks shapes without allocating or computing anything, so counting is instant even for the
    large presets. A model that is not on the meta device is counted on a meta copy. ``C`` is
    ``model.config.in_channels`` (1 for a model without a config).
    """
    if any(p.device.type != "meta" for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")
    config = getattr(model, "config", None)
    channels = int(getattr(config, "in_channels", 1))
    x = torch.empty(batch, channels, size, size, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())
