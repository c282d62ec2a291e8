"""Training recipes: the settings each model preset is trained with, and the course's one run.

The model presets themselves are :data:`gruunet_edu.models.config.PRESETS`; the synthetic data's
presets are :data:`gruunet_edu.data.synthetic.SYNTHETIC_PRESETS` (the recipes use its default).
This module is the only place that says how long, with which batch and crop, each preset trains.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.config import PRESETS, GRUUNetConfig
from .config import TrainConfig
from .device import default_preset

#: Training settings per model preset (the CPU recipe for ``tiny`` and ``small``, the GPU recipe
#: for ``paper`` and ``blog``); every other :class:`TrainConfig` field keeps its default.
PRESET_RECIPES: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=600, batch_size=4, lr=6e-3, crop=128, eval_interval=100),
    "small": dict(steps=600, batch_size=8, lr=2e-3, crop=128, eval_interval=100),
    "paper": dict(steps=4000, batch_size=16, lr=1e-3, crop=256, eval_interval=250),
    "blog": dict(steps=4000, batch_size=16, lr=1e-3, crop=256, eval_interval=250),
}
assert set(PRESET_RECIPES) == set(PRESETS), "every model preset needs a training recipe"

#: The course's training run on a CPU: notebook 04 trains it and caches the model, notebooks 05
#: and 06 load that model (:func:`~.pretrained.course_model`). Smaller crops and fewer steps than
#: the recipe, so that it takes well under a minute on a laptop; on a GPU the course runs the
#: preset's full recipe instead.
COURSE_TRAINING: dict[str, Any] = {
    "steps": 300,
    "batch_size": 4,
    "crop": 96,
    "lr": 3e-3,
    "eval_interval": 50,
}
#: The synthetic data of the course's run (see :func:`~.quick.synthetic_data`).
COURSE_DATA: dict[str, Any] = {"pool": 32, "n_val": 8, "val_size": 128}


def recipe(preset: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a preset's recipe, with fields overridden."""
    if preset not in PRESET_RECIPES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESET_RECIPES)}")
    return TrainConfig(**{**PRESET_RECIPES[preset], **overrides})


def recipe_with_steps(preset: str, steps: int | None = None, **overrides: Any) -> TrainConfig:
    """:func:`recipe`, run for exactly ``steps`` steps when given (shared by ``quick_train`` and
    ``pretrained_path``, so that a cache key always matches the run it names)."""
    config = recipe(preset, **overrides)
    return config if steps is None else config.replace(steps=int(steps))


def course_run(device: torch.device | str) -> tuple[str, dict[str, Any]]:
    """``(preset, settings)`` of the course's run on ``device``.

    The preset is :func:`~.device.default_preset` (``tiny`` on a CPU, ``paper`` on CUDA,
    ``$GRUUNET_PRESET`` when set); on anything but CUDA the settings are :data:`COURSE_TRAINING`,
    on CUDA the preset's full recipe (no overrides).
    """
    preset = default_preset(device)
    settings = {} if torch.device(device).type == "cuda" else dict(COURSE_TRAINING)
    return preset, settings


def preset_name(model_config: Any) -> str:
    """The name of the preset ``model_config`` equals (``"custom"`` if none)."""
    if isinstance(model_config, GRUUNetConfig):
        for name in PRESETS:
            preset = GRUUNetConfig.preset(
                name, in_channels=model_config.in_channels, num_classes=model_config.num_classes
            )
            if preset == model_config:
                return name
    return "custom"
