"""The history of a training run: one row every ``eval_interval`` steps."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import write_atomically

HISTORY_KEYS = ("step", "train_loss", "val_loss", "val_dice", "lr", "time")


@dataclass
class History:
    """One entry per evaluation in each list (``val_*`` is NaN without validation data).

    ``time`` is the training time in seconds since the start (validation included).
    """

    step: list[int] = field(default_factory=list)  # steps done at this evaluation
    train_loss: list[float] = field(default_factory=list)  # mean over the steps since the last
    val_loss: list[float] = field(default_factory=list)
    val_dice: list[float] = field(default_factory=list)  # Dice of the foreground (argmax != 0)
    lr: list[float] = field(default_factory=list)  # learning rate at the last step
    time: list[float] = field(default_factory=list)
    interrupted: bool = False  # True when Ctrl-C (or SIGTERM) stopped the run

    def append(self, **row: float) -> None:
        missing = set(HISTORY_KEYS) - set(row)
        if missing:
            raise ValueError(f"history row lacks {sorted(missing)}")
        for key in HISTORY_KEYS:
            getattr(self, key).append(row[key])

    def __len__(self) -> int:
        return len(self.step)

    def last(self) -> dict[str, float]:
        """The latest row as a dict (empty dict for an empty history)."""
        return {key: getattr(self, key)[-1] for key in HISTORY_KEYS} if len(self) else {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {key: list(getattr(self, key)) for key in HISTORY_KEYS}
        d["interrupted"] = self.interrupted
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> History:
        """A history from :meth:`to_dict` (older files' ``epoch`` column is ignored)."""
        d = d or {}
        h = cls(**{key: list(d.get(key, [])) for key in HISTORY_KEYS})
        h.interrupted = bool(d.get("interrupted", False))
        return h

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON (atomically: temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json_safe(self.to_dict()), indent=1)
        write_atomically(path, lambda handle: handle.write(text.encode()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))


def json_safe(value: Any) -> Any:
    """NaN/inf become None (in dicts and lists too) so that the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
