"""Checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint is a plain dictionary, so that the safe loader (which refuses arbitrary Python
objects) can read it::

    {"format": "gruunet-edu", "version": 1,
     "arch": "gruunet" | "unet",          # which network the weights belong to
     "config": {...},                     # GRUUNetConfig.to_dict(): plain JSON-able values
     "model": state_dict,                 # the weights
     "optimizer": state_dict | None,      # to resume training
     "step": int,                         # optimisation steps done
     "history": {"steps": [...], ...},    # History.to_dict(): plain lists
     "extra": {...}}                      # anything else JSON-able (train settings, ...)

Writing goes to a temporary file in the same directory, which is flushed to disk (``fsync``) and
then renamed over the target with ``os.replace``: a crash or Ctrl-C while saving leaves the
previous checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "gruunet-edu"
VERSION = 1
REQUIRED_KEYS = ("format", "arch", "config", "model", "step")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable (truncated, not a checkpoint) or does not fit."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The underlying module of a ``torch.compile``-d model (or the model itself)."""
    return getattr(model, "_orig_mod", model)


def model_arch(model: nn.Module) -> str:
    """The model's ``arch`` attribute (``"gruunet"``, ``"unet"``), else its class name, lower."""
    model = unwrap_model(model)
    return str(getattr(model, "arch", type(model).__name__.lower()))


def _config_dict(config: Any) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if is_dataclass(config):
        return asdict(config)
    raise TypeError(f"cannot store config of type {type(config).__name__} in a checkpoint")


def _history_dict(history: Any) -> dict:
    if history is None:
        return {}
    if isinstance(history, dict):
        return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in history.items()}
    return history.to_dict()


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    config: Any,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    history: Any = None,
    extra: dict | None = None,
    arch: str | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, fsync, ``os.replace``).

    ``config`` is a :class:`GRUUNetConfig` (stored via ``to_dict()``) or a plain dict; ``history`` a
    ``History`` or a dict of lists. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch or model_arch(model),
        "config": _config_dict(config),
        "model": unwrap_model(model).state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "step": int(step),
        "history": _history_dict(history),
        "extra": dict(extra or {}),
    }
    write_atomically(path, lambda handle: torch.save(payload, handle), durable=True)
    return path


def write_atomically(path: Path, write: Callable[[Any], None], durable: bool = False) -> None:
    """Call ``write(binary handle)`` on a temporary file next to ``path``, then rename it over
    ``path``: readers see the old file or the new one, never half of one. ``durable=True`` also
    flushes the file and the rename to disk (``fsync``). The temporary file never stays behind."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every OS can open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; CheckpointError names the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a file: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled objects refused, ...
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is damaged (e.g. truncated) or not a "
            f"gruunet-edu checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        ) from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gruunet-edu checkpoint (no '{FORMAT}' format tag)")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the entries {', '.join(missing)}")
    return checkpoint


def load_state(
    model: nn.Module, checkpoint: dict, path: str | os.PathLike = "<checkpoint>"
) -> nn.Module:
    """Load a checkpoint's weights into ``model``; CheckpointError when they do not fit."""
    target = unwrap_model(model)
    arch = model_arch(target)
    if checkpoint.get("arch", arch) != arch:
        raise CheckpointError(
            f"checkpoint {path} holds a '{checkpoint['arch']}' network, not a '{arch}' one"
        )
    try:
        target.load_state_dict(checkpoint["model"], strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0][:200]
        raise CheckpointError(
            f"checkpoint {path} does not fit this model (other architecture or preset?): {first}"
        ) from err
    return model


def load_model(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Rebuild the network stored in a checkpoint: returns ``(model in eval mode, checkpoint)``."""
    from ..models import GRUUNetConfig, build_model

    checkpoint = load_checkpoint(path, map_location=map_location)
    try:
        config = GRUUNetConfig.from_dict(checkpoint["config"])
        model = build_model(config, arch=checkpoint["arch"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {path} has a model configuration this version cannot build: {err}"
        ) from err
    load_state(model, checkpoint, path)
    model.to(map_location).eval()
    return model, checkpoint
