"""Input checks and padding shared by GRUU-Net and the U-Net baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def validate_image_batch(x: object, in_channels: int, model_name: str = "model") -> None:
    """Raise ValueError naming the expected shape (B, in_channels, H, W) unless ``x`` fits.

    Checks, in order: a torch.Tensor, four dimensions, the channel count, a floating dtype.
    """
    expected = f"(B, {in_channels}, H, W)"
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{model_name} expects a torch.Tensor of shape {expected}, got {type(x).__name__}; "
            "convert with torch.as_tensor(array, dtype=torch.float32)"
        )
    if x.ndim != 4:
        if x.ndim == 3:
            fix = (
                f"a single image (C, H, W) needs a batch dimension: use x.unsqueeze(0) "
                f"(or x[None]) to get (1, {x.shape[0]}, {x.shape[1]}, {x.shape[2]})"
            )
        elif x.ndim == 2:
            fix = (
                "a single 2-D image (H, W) needs batch and channel dimensions: use "
                f"x[None, None] to get (1, 1, {x.shape[0]}, {x.shape[1]})"
            )
        else:
            fix = "reshape it to (batch, channels, height, width)"
        raise ValueError(
            f"{model_name} expects input of shape {expected} with 4 dimensions, got "
            f"{x.ndim} dimensions {tuple(x.shape)}; {fix}"
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{model_name} expects input of shape {expected} with {in_channels} channel(s), got "
            f"{tuple(x.shape)} with {x.shape[1]} channels (dimension 1); build the model with "
            f"in_channels={x.shape[1]} or convert the images"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{model_name} expects a floating-point input of shape {expected}, got dtype "
            f"{x.dtype}; convert with x.float() (and normalise the intensities, e.g. to [0, 1])"
        )


def min_input_size(size_multiple: int) -> int:
    """Smallest height/width that reflect-padding to a multiple of ``size_multiple`` allows."""
    return size_multiple // 2 + 1


def pad_to_multiple(x: torch.Tensor, multiple: int, model_name: str = "model") -> torch.Tensor:
    """Reflect-pad (B, C, H, W) at the bottom and right up to multiples of ``multiple``.

    Reflection needs fewer padded pixels than the image has, so a side shorter than
    ``multiple // 2 + 1`` raises a ValueError.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    smallest = min_input_size(multiple)
    if height < smallest or width < smallest:
        raise ValueError(
            f"{model_name} input of {height}x{width} pixels is too small: sizes are reflect-padded "
            f"to a multiple of {multiple}, which needs height and width >= {smallest} (or exact "
            f"multiples of {multiple}); pad or resize the image, or use a preset with fewer scales"
        )
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
