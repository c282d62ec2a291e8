"""GRUU-Net and its parts: ConvGRU cell, dense block, FRDU, the network, a U-Net baseline."""

from gruunet_edu.models.config import PRESETS, STATE_DOWNSAMPLE_MODES, GRUUNetConfig
from gruunet_edu.models.convgru import (
    ConvGRUCell,
    FusedConvGRUCell,
    copy_convgru_weights,
    make_convgru,
)

__all__ = [
    "PRESETS",
    "STATE_DOWNSAMPLE_MODES",
    "ConvGRUCell",
    "FusedConvGRUCell",
    "GRUUNetConfig",
    "copy_convgru_weights",
    "make_convgru",
]
