"""Input checks and padding shared by GRUU-Net and the U-Net baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def validate_image_batch(x: object, in_channels: int, model_name: str = "model") -> None:
    """Raise ValueError naming the expected shape (B, in_channels, H, W) unless ``x`` fits.

    Checks, in order: a torch.Tensor, four dimensions, the channel count, a floating dtype, and,
    when no gradients are recorded (prediction, evaluation, the explorer), NaN values. During
    training a NaN input shows up as a NaN loss, which stops the loop with its own message (and
    costs no extra pass over every batch).
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
    if not torch.is_grad_enabled():  # inference; in training a NaN input stops as a NaN loss
        check_finite(x, model_name)


def check_finite(x: torch.Tensor, owner: str = "model") -> None:
    """Raise ValueError with the count of NaN values in ``x``.

    Skipped under torch.compile and for tensors without values (the ``meta`` device, used to
    count FLOPs and sizes)."""
    if torch.compiler.is_compiling() or x.is_meta:
        return
    n_nan = int(torch.isnan(x).sum())
    if n_nan:
        raise ValueError(
            f"{owner} input holds {n_nan} NaN value(s) of {x.numel()}: NaN pixels would spread "
            "through every convolution; replace them first (e.g. torch.nan_to_num(x))"
        )


def validate_feature_map(
    t: object,
    name: str,
    channels: int,
    owner: str,
    like: torch.Tensor | None = None,
    like_name: str = "x",
    scale: int = 1,
) -> None:
    """Raise ValueError unless ``t`` is a float tensor (B, channels, H, W).

    With ``like`` (an already checked tensor), ``t`` must also have its batch size and its
    height and width divided by ``scale`` (``scale=1``: the same size). The message names the
    expected shape and dtype.
    """
    if like is None:
        expected = f"(B, {channels}, H, W)"
    else:
        height, width = like.shape[-2] // scale, like.shape[-1] // scale
        expected = f"({like.shape[0]}, {channels}, {height}, {width})"
    if not isinstance(t, torch.Tensor):
        raise ValueError(
            f"{owner} expects {name} as a float torch.Tensor of shape {expected}, got "
            f"{type(t).__name__}"
        )
    if t.ndim != 4:
        fix = f"; add the batch dimension with {name}.unsqueeze(0)" if t.ndim == 3 else ""
        raise ValueError(
            f"{owner} expects {name} of shape {expected} (batch, channels, height, width), got "
            f"{t.ndim} dimensions {tuple(t.shape)}{fix}"
        )
    if t.shape[1] != channels:
        raise ValueError(
            f"{owner} expects {name} of shape {expected} with {channels} channel(s), got "
            f"{tuple(t.shape)} with {t.shape[1]}"
        )
    if not t.is_floating_point():
        raise ValueError(
            f"{owner} expects {name} of shape {expected} with a floating-point dtype, got "
            f"{t.dtype}; convert with {name}.float()"
        )
    if like is not None and tuple(t.shape) != (like.shape[0], channels, height, width):
        if scale == 1:
            relation = f"the batch size and height x width of {like_name} {tuple(like.shape)}"
        else:
            relation = (
                f"the batch size of {like_name} {tuple(like.shape)} and 1/{scale} of its "
                "height x width"
            )
        raise ValueError(
            f"{owner} expects {name} of shape {expected} ({relation}), got {tuple(t.shape)}"
        )
    if like is not None and t.dtype != like.dtype:
        raise ValueError(
            f"{owner} expects {name} with the dtype of {like_name} ({like.dtype}), got {t.dtype}"
        )


def validate_sizes(owner: str, **sizes: int) -> None:
    """Raise ValueError unless every size (a channel count, a layer count, ...) is >= 1."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner} needs {name} >= 1 (an integer), got {value!r}")


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
