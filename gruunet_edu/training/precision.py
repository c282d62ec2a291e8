"""Mixed precision: which autocast dtype a device gets for an ``amp`` setting.

On CUDA, bfloat16 where the GPU supports it, else float16 with a ``GradScaler`` (gradients of
float16 underflow without loss scaling); on the CPU off by default, ``amp="bf16"`` runs the CPU's
bfloat16 autocast. The loss is always computed in float32, and the weights stay float32.
"""

from __future__ import annotations

import contextlib

import torch

AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: full float32).

    ``auto``: bfloat16 on CUDA GPUs that support it, else float16; off on CPU and MPS.
    ``fp16`` on the CPU falls back to bfloat16 (the CPU autocast type).
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16":
            return torch.float16
        if amp == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type == "cpu":
        return None if amp == "auto" else torch.bfloat16
    return None if amp == "auto" else (torch.float16 if amp == "fp16" else torch.bfloat16)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for the device, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
