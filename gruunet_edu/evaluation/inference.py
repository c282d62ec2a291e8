"""Running a trained network on one image: normalise, add dimensions, forward, softmax.

Images of any size work: the network pads sizes that are not a multiple of ``2**S`` and crops the
output back. Images larger than ``tile_threshold`` pixels on a side go through
:func:`~gruunet_edu.evaluation.tiling.predict_tiled` so memory stays bounded.
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


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    image,  # (H, W) or (C, H, W)
    device: torch.device | str | None = None,
    normalize: bool = True,
    tile_threshold: int | None = 2048,
    tile: int = 512,
    overlap: int = 64,
) -> np.ndarray:  # (K, H, W) float32
    """Class probabilities for one image: normalise, add the batch dim, eval-mode forward, softmax.

    ``normalize=False`` when the image is already percentile-normalised. Images with a side longer
    than ``tile_threshold`` (None: never) are predicted tile by tile.
    """
    arr = prepare_image(image, in_channels_of(model), normalize)  # (C, H, W)
    if tile_threshold is not None and max(arr.shape[-2:]) > tile_threshold:
        from .tiling import predict_tiled

        return predict_tiled(model, arr, tile=tile, overlap=overlap, device=device, normalize=False)
    device = torch.device(device) if device is not None else model_device(model)
    with eval_mode(model):
        x = torch.from_numpy(arr)[None].to(device)  # (1, C, H, W)
        logits = model(x)  # (1, K, H, W)
        probs = torch.softmax(logits.float(), dim=1)[0]  # (K, H, W)
    return probs.cpu().numpy()


def predict_instances(
    model: nn.Module, image, device: torch.device | str | None = None, **postprocess
) -> tuple[np.ndarray, np.ndarray]:
    """``(instance labels uint16 (H, W), probabilities (K, H, W))`` for one image.

    An image with NaN pixels raises ValueError with their count (they would spread through every
    convolution and leave the post-processing nothing to work on).
    """
    from .postprocess import probabilities_to_instances

    check_no_nan(image)

    probs = predict_probabilities(model, image, device=device)
    return probabilities_to_instances(probs, **postprocess), probs
