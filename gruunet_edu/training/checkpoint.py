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
previous checkpoint intact, never a half-written one (and a temporary file left by a killed
process is removed by the next save). A full disk says that the previous checkpoint is intact.

Reading refuses, each with its own message: a missing, empty, damaged (truncated) or foreign file;
a file that holds Python objects other than tensors and plain values (a pickle that could run code
is never unpickled); a format version newer than this package's; and a model configuration whose
network would not match the stored weights (checked on the ``meta`` device, before any memory is
allocated for it).
"""

from __future__ import annotations

import errno
import os
import re
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
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Sizes a configuration may ask for before it is even built on the meta device.
MAX_CONFIG_INT = 16384
MAX_CONFIG_LENGTH = 16


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
    try:
        write_atomically(path, lambda handle: torch.save(payload, handle), durable=True)
    except OSError as err:
        kept = (
            f"the previous checkpoint {path} is intact"
            if path.is_file()
            else "no checkpoint was written"
        )
        reason = (
            "the disk is full"
            if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
            else err.strerror
        )
        raise CheckpointError(
            f"cannot write checkpoint {path}: {reason or err}; {kept} (free some space or choose "
            "another output folder)"
        ) from err
    return path


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary files that an earlier, killed write of ``path`` left behind.

    One writer per target is assumed (as for every checkpoint and history file here)."""
    stale = sorted(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def glob_escape(name: str) -> str:
    """``name`` with the glob characters ``*?[`` taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def write_atomically(path: Path, write: Callable[[Any], None], durable: bool = False) -> None:
    """Call ``write(binary handle)`` on a temporary file next to ``path``, then rename it over
    ``path``: readers see the old file or the new one, never half of one. ``durable=True`` also
    flushes the file and the rename to disk (``fsync``). The temporary file never stays behind,
    and one left by a killed earlier write of ``path`` is removed first."""
    path = Path(path)
    remove_stale_temporaries(path)
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


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an error message, without ANSI colour codes."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(err)).splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(err).__name__


def _refused_global(err: BaseException) -> str | None:
    """The Python object a refused pickle asked for (``posix.system``), if that was the reason."""
    match = re.search(r"\bGLOBAL ([\w.]+)", _ANSI.sub("", str(err)))
    return match.group(1) if match else None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; CheckpointError names the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes): the write that made it did not finish; "
            "train again or use another checkpoint"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled objects refused, ...
        refused = _refused_global(err)
        if refused:
            raise CheckpointError(
                f"refused to load {path}: it holds the Python object '{refused}', which a "
                "gruunet-edu checkpoint never contains and which could run code when unpickled; "
                "it was not loaded (only load files from a source you trust)"
            ) from err
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is damaged (e.g. truncated) or not a "
            f"gruunet-edu checkpoint ({type(err).__name__}: {_first_line(err)})"
        ) from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gruunet-edu checkpoint (no '{FORMAT}' format tag)")
    version = checkpoint.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"checkpoint {path} has an invalid format version {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, newer than this gruunet-edu reads "
            f"(up to {VERSION}); upgrade gruunet-edu to load it"
        )
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the entries {', '.join(missing)}")
    return checkpoint


def _check_config_sizes(config: Any, path: Path, where: str = "config") -> None:
    """CheckpointError for an integer or a list in the stored config too large to build."""
    if isinstance(config, dict):
        for key, value in config.items():
            _check_config_sizes(value, path, f"{where}.{key}")
    elif isinstance(config, (list, tuple)):
        if len(config) > MAX_CONFIG_LENGTH:
            raise CheckpointError(
                f"checkpoint {path}: {where} lists {len(config)} values (at most "
                f"{MAX_CONFIG_LENGTH} are built); the file is damaged or not from gruunet-edu"
            )
        for i, value in enumerate(config):
            _check_config_sizes(value, path, f"{where}[{i}]")
    elif isinstance(config, int) and not isinstance(config, bool) and config > MAX_CONFIG_INT:
        raise CheckpointError(
            f"checkpoint {path}: {where} = {config} asks for an enormous network (at most "
            f"{MAX_CONFIG_INT}); the file is damaged or not from gruunet-edu"
        )


def _stored_values(state: Any) -> int:
    """Number of tensor elements in a stored state dict."""
    if not isinstance(state, dict):
        return -1
    return sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))


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
    _check_config_sizes(checkpoint["config"], Path(path))
    try:
        config = GRUUNetConfig.from_dict(checkpoint["config"])
        with torch.device("meta"):  # sizes only: no memory is allocated for the weights
            probe = build_model(config, arch=checkpoint["arch"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {path} has a model configuration this version cannot build: {err}"
        ) from err
    expected, stored = _stored_values(probe.state_dict()), _stored_values(checkpoint["model"])
    if expected != stored:
        raise CheckpointError(
            f"checkpoint {path} does not fit its own configuration: the network it describes "
            f"has {expected:,} weight values, the file stores {stored:,}; the file is damaged"
        )
    model = build_model(config, arch=checkpoint["arch"])
    load_state(model, checkpoint, path)
    model.to(map_location).eval()
    return model, checkpoint
