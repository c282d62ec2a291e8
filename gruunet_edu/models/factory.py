"""Build a network by name from a config."""

from __future__ import annotations

from torch import nn

from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.counting import count_parameters
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


__all__ = ["ARCHS", "build_model", "count_parameters"]
