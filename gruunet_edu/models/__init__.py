"""GRUU-Net and its parts: ConvGRU cell, dense block, FRDU, the network, a U-Net baseline."""

from gruunet_edu.models.config import PRESETS, STATE_DOWNSAMPLE_MODES, GRUUNetConfig, frdu_factors
from gruunet_edu.models.convgru import (
    ConvGRUCell,
    FusedConvGRUCell,
    copy_convgru_weights,
    make_convgru,
    update_state,
)
from gruunet_edu.models.counting import count_flops, count_parameters
from gruunet_edu.models.dense import DenseBlock, DenseLayer
from gruunet_edu.models.factory import ARCHS, build_model
from gruunet_edu.models.frdu import FRDU, FRDUStep
from gruunet_edu.models.gruunet import GRUUNet
from gruunet_edu.models.unet import UNet, matching_base_width, unet_for

__all__ = [
    "ARCHS",
    "FRDU",
    "PRESETS",
    "STATE_DOWNSAMPLE_MODES",
    "ConvGRUCell",
    "DenseBlock",
    "DenseLayer",
    "FRDUStep",
    "FusedConvGRUCell",
    "GRUUNet",
    "GRUUNetConfig",
    "UNet",
    "build_model",
    "copy_convgru_weights",
    "count_flops",
    "count_parameters",
    "frdu_factors",
    "make_convgru",
    "matching_base_width",
    "unet_for",
    "update_state",
]
