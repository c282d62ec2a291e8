"""Running a trained network on one image: normalise, add dimensions, forward, softmax.

Images of any size work: the network pads sizes that are not a multiple of ``2**S`` and crops the
output back. Images larger than ``tile_threshold`` pixels on a side go through
:func:`~gruunet_edu.evaluation.tiling.predict_tiled` so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .prepare import check_no_nan, eval_mode, in_channels_of, model_device, prepare_image
from .tiling import predict_tiled
from .tta import class_probabilities

__all__ = [
    "eval_mode",
    "in_channels_of",
    "model_device",
    "predict_instances",
    "predict_probabilities",
    "prepare_image",
]


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    image,  # (H, W) or (C, H, W)
    device: torch.device | str | None = None,
    normalize: bool = True,
    tile_threshold: int | None = 2048,
    tile: int = 512,
    overlap: int = 64,
    tta: bool = False,
) -> np.ndarray:  # (K, H, W) float32
    """Class probabilities for one image: normalise, add the batch dim, eval-mode forward, softmax.

    ``normalize=False`` when the image is already percentile-normalised. Images with a side longer
    than ``tile_threshold`` (None: never) are predicted tile by tile. ``tta`` averages over the
    image's eight turns and flips (:mod:`~gruunet_edu.evaluation.tta`, eight forward passes).
    """
    arr = prepare_image(image, in_channels_of(model), normalize)  # (C, H, W)
    if tile_threshold is not None and max(arr.shape[-2:]) > tile_threshold:
        return predict_tiled(
            model, arr, tile=tile, overlap=overlap, device=device, normalize=False, tta=tta
        )
    device = torch.device(device) if device is not None else model_device(model)
    with eval_mode(model):
        x = torch.from_numpy(arr)[None].to(device)  # (1, C, H, W)
        probs = class_probabilities(model, x, tta)[0]  # (K, H, W)
    return probs.cpu().numpy()


def predict_instances(
    model: nn.Module,
    image,
    device: torch.device | str | None = None,
    tta: bool = False,
    **postprocess,
) -> tuple[np.ndarray, np.ndarray]:
    """``(instance labels uint16 (H, W), probabilities (K, H, W))`` for one image (``tta``: as
    in :func:`predict_probabilities`).

    An image with NaN pixels raises ValueError with their count (they would spread through every
    convolution and leave the post-processing nothing to work on).
    """
    from .postprocess import probabilities_to_instances

    check_no_nan(image)

    probs = predict_probabilities(model, image, device=device, tta=tta)
    return probabilities_to_instances(probs, **postprocess), probs
