"""Mixed precision: which autocast dtype a device gets for an ``amp`` setting.

On CUDA, bfloat16 where the GPU supports it, else float16 with a ``GradScaler`` (gradients of
float16 underflow without loss scaling). On a CPU with bfloat16 instructions (AVX512-BF16 or AMX,
:func:`cpu_has_bf16`) ``auto`` is bfloat16 too, with the channels-last memory format that oneDNN's
bfloat16 convolutions run fastest in: a tiny-preset training step of 4 crops of 128 px then takes
about half the float32 time on 2 cores (``benchmarks/bench_train.py --precision`` measures it);
on other CPUs bfloat16 is emulated and slower, so ``auto`` keeps float32 there. The loss is
always computed in float32, and the weights stay float32.
"""

from __future__ import annotations

import contextlib

import torch

AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), as torch sees it."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: full float32).

    ``auto``: bfloat16 on CUDA GPUs that support it, else float16; on the CPU bfloat16 where
    :func:`cpu_has_bf16`, else off; off on MPS. ``fp16`` on the CPU falls back to bfloat16 (the
    CPU autocast type).
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
        return torch.bfloat16 if amp != "auto" or cpu_has_bf16() else None
    return None if amp == "auto" else (torch.float16 if amp == "fp16" else torch.bfloat16)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for the device, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_channels_last(requested: bool, device: torch.device, dtype: torch.dtype | None) -> bool:
    """Channels-last memory format: when ``requested``, and always for the CPU's bfloat16 autocast
    (oneDNN's bfloat16 convolutions are fastest in NHWC; in NCHW they lose half the gain)."""
    return bool(requested) or (device.type == "cpu" and dtype == torch.bfloat16)
