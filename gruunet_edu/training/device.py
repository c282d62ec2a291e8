"""Device choice, seeding and the default preset per device.

The course runs everywhere: on a GPU the `paper` preset trains with mixed precision, on a laptop
CPU the `tiny` preset trains in about a minute. Two environment variables override the automatic
choice for a whole session (notebooks included):

- ``GRUUNET_DEVICE``: ``cuda``, ``cuda:1``, ``mps`` or ``cpu``;
- ``GRUUNET_PRESET``: one of the model presets (``tiny``, ``small``, ``paper``, ``blog``).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "GRUUNET_DEVICE"
PRESET_ENV = "GRUUNET_PRESET"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(preference: str | torch.device | None = "auto") -> torch.device:
    """Pick the device to train on.

    ``preference="auto"`` (or None) takes ``$GRUUNET_DEVICE`` when set, otherwise CUDA, then Apple's
    MPS, then the CPU. An explicit preference (``"cpu"``, ``"cuda:0"``, ...) wins over the variable.
    Asking for a device that is not available raises ValueError with the devices that are.
    """
    if isinstance(preference, torch.device):
        return preference
    pref = (preference or "auto").strip().lower()
    source = f"device {preference!r}"
    if pref == "auto":
        pref = os.environ.get(DEVICE_ENV, "").strip().lower() or "auto"
        source = f"${DEVICE_ENV}={pref!r}" if pref != "auto" else source
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(pref)
    except RuntimeError as err:
        raise ValueError(f"unknown {source}: use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source} requested but CUDA is not available; use cpu or auto")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"{source} requested but MPS is not available; use cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported {source}: use auto, cpu, cuda, cuda:N or mps")
    return device


def default_preset(device: torch.device | str) -> str:
    """The model preset for a device: ``$GRUUNET_PRESET`` if set, else ``paper`` on CUDA,
    ``tiny`` elsewhere."""
    env = os.environ.get(PRESET_ENV, "").strip()
    if env:
        return env
    return "paper" if torch.device(device).type == "cuda" else "tiny"


def device_notice(device: torch.device | str, preset: str) -> str:
    """One line telling the user where training runs and with which preset."""
    device = torch.device(device)
    if device.type == "cpu":
        return (
            f"Training on the CPU ({torch.get_num_threads()} threads): slower than on a GPU; "
            f"using the '{preset}' preset."
        )
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"Training on {device} ({name}) with the '{preset}' preset."
    return f"Training on {device} with the '{preset}' preset."


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices).

    ``deterministic=True`` also asks cuDNN for deterministic kernels (slower on a GPU). On the CPU
    the same seed already gives the same run.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
