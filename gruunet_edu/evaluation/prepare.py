"""Before a forward pass: the model's device and input channels, eval mode, the input image.

Shared by whole-image inference (:mod:`.inference`), tiled inference (:mod:`.tiling`) and the
validation of the training loop.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def in_channels_of(model: nn.Module) -> int:
    """Number of image channels the model expects (from its config, else 1)."""
    config = getattr(model, "config", None)
    return int(getattr(config, "in_channels", 1))


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put the model in eval mode for the block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def check_no_nan(image, what: str = "image") -> None:
    """ValueError with the number of NaN pixels when ``image`` (array or tensor) holds any."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype.kind in "fc":
        n_nan = int(np.isnan(arr).sum())
        if n_nan:
            raise ValueError(
                f"{what} holds {n_nan} NaN pixel(s) of {arr.size}; replace them first (e.g. "
                "np.nan_to_num(image, nan=background value)) or mask them out"
            )


def prepare_image(image, in_channels: int = 1, normalize: bool = True) -> np.ndarray:
    """Image (H, W) or (C, H, W) -> float32 (C, H, W), percentile-normalised per channel.

    Raises ValueError naming the expected shape when the dimensions or channels do not fit.
    """
    from ..data.normalize import percentile_normalize

    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 3 and in_channels == 1 and arr.shape[0] != 1 and arr.shape[-1] in (3, 4):
        raise ValueError(
            f"image of shape {arr.shape} looks like RGB(A); this model expects one channel "
            "(H, W): convert it to grey first"
        )
    if arr.ndim == 2:
        arr = arr[None]  # (1, H, W)
    if arr.ndim != 3:
        raise ValueError(
            f"expected an image of shape (H, W) or ({in_channels}, H, W), got {arr.shape}"
        )
    if arr.shape[0] != in_channels:
        raise ValueError(
            f"image has {arr.shape[0]} channels (shape {arr.shape}) but the model expects "
            f"{in_channels}: shape ({in_channels}, H, W)"
            + (" or (H, W)" if in_channels == 1 else "")
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"image must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if normalize:
        arr = np.stack([percentile_normalize(channel) for channel in arr])
    return arr  # (C, H, W)
