"""Build a network by name from a config, and count its parameters."""

from __future__ import annotations

from torch import nn

from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.gruunet import GRUUNet
from gruunet_edu.models.unet import unet_for

ARCHS: tuple[str, ...] = ("gruunet", "unet")


def build_model(config: GRUUNetConfig | None = None, arch: str = "gruunet") -> nn.Module:
    """``GRUUNet(config)`` for arch "gruunet", the matching ``UNet`` for arch "unet".

    Both are rebuilt from the same config, which is what a checkpoint stores next to ``arch``.
    """
    config = config if config is not None else GRUUNetConfig()
    if arch == "gruunet":
        return GRUUNet(config)
    if arch == "unet":
        return unet_for(config)
    raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ARCHS", "build_model", "count_parameters"]
