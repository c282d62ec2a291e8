"""A trained network for the notebooks that need one, trained once and then cached.

The evaluation and hidden-state notebooks look at a *trained* GRUU-Net. Instead of shipping
weights, :func:`pretrained_model` trains the requested preset on the synthetic sample data with
:func:`~gruunet_edu.training.quick.quick_train` the first time it is called, saves the checkpoint
atomically in the cache folder, and loads it on every later call (in about a second). The course's
own run (:func:`course_model`) is the one notebook 04 trains and caches, so notebooks 05 and 06
load exactly the model trained there.

The cache folder is ``$GRUUNET_CACHE`` if set, else ``~/.cache/gruunet-edu``. A cached file is
keyed by everything that determines the weights (architecture, model config, training settings,
seed, format version), so changing any of them trains a new model instead of returning a stale
one. A damaged cache file is retrained and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import CheckpointError, load_model, save_checkpoint
from .history import History
from .recipes import COURSE_DATA, course_run, recipe_with_steps

CACHE_ENV = "GRUUNET_CACHE"
CACHE_VERSION = 5  # bump when the training recipe or the sample data change in a way the key
# does not capture (2: the sample data of many brightness levels, sizes, seams and debris; 3: no
# hidden slivers, larger mitotic nuclei, deeper seams, crops renormalised on their own range;
# 4: the boundary widened to CONTACT_RADIUS px where nuclei touch; 5: training data with
# touching nuclei of alike brightness, SyntheticConfig.training)


def cache_dir() -> Path:
    """``$GRUUNET_CACHE`` or ``~/.cache/gruunet-edu``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gruunet-edu"


def cache_key(arch: str, model_config: Any, train_config: Any, data_options: Any = None) -> str:
    """A short hash of everything that determines the trained weights."""
    settings = train_config.to_dict()
    for volatile in ("device", "progress", "verbose", "checkpoint", "history_path", "resume"):
        settings.pop(volatile, None)
    text = json.dumps(
        {
            "version": CACHE_VERSION,
            "arch": arch,
            "model": model_config.to_dict(),
            "train": settings,
            "data": data_options or {},
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pretrained_path(
    preset: str = "tiny",
    steps: int | None = None,
    seed: int = 0,
    arch: str = "gruunet",
    data_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Where :func:`pretrained_model` caches the model for these arguments."""
    from ..models import GRUUNetConfig

    train_config = recipe_with_steps(preset, steps, seed=seed, **overrides)
    key = cache_key(arch, GRUUNetConfig.preset(preset), train_config, data_options)
    return cache_dir() / f"{arch}-{preset}-{key}.pt"


def pretrained_model(
    preset: str = "tiny",
    steps: int | None = None,
    seed: int = 0,
    arch: str = "gruunet",
    device: str = "auto",
    retrain: bool = False,
    progress: bool = True,
    data_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> nn.Module:
    """A network of ``preset`` trained on synthetic nuclei, from the cache or trained now.

    ``steps``, ``seed`` and further :class:`~.loop.TrainConfig` fields in ``overrides`` choose the
    training run (default: the preset's recipe), ``data_options`` the synthetic data (see
    :func:`~.quick.synthetic_data`); ``retrain=True`` ignores the cache. Returns the
    model in eval mode on the CPU (``model.history`` holds its training :class:`~.history.History`).
    """
    from . import quick

    path = pretrained_path(preset, steps, seed, arch, data_options, **overrides)
    if path.exists() and not retrain:
        try:
            model, checkpoint = load_model(path)
            model.history = History.from_dict(checkpoint.get("history"))
            return model
        except CheckpointError as err:
            print(f"The cached model {path} cannot be read ({err}); training it again.")
    print(f"Training the '{preset}' preset once; it will be cached in {path}.")
    model, history = quick.quick_train(
        preset,
        steps=steps,
        seed=seed,
        arch=arch,
        device=device,
        progress=progress,
        data_options=data_options,
        **overrides,
    )
    train_config = recipe_with_steps(preset, steps, seed=seed, **overrides)
    save_checkpoint(
        path,
        model=model,
        config=model.config,
        step=history.step[-1] if len(history) else 0,
        history=history,
        extra={"train_config": train_config.to_dict(), "steps": steps},
        arch=arch,
    )
    model = model.cpu().eval()
    model.history = history
    return model


def course_model_path(device: torch.device | str = "auto", arch: str = "gruunet") -> Path:
    """Where the course's model for ``device`` is cached (notebook 04 writes its checkpoint here).

    The run is :func:`~.recipes.course_run` on :data:`~.recipes.COURSE_DATA`, seed 0.
    """
    from .device import choose_device

    preset, settings = course_run(choose_device(device))
    return pretrained_path(preset, arch=arch, data_options=COURSE_DATA, **settings)


def course_model(
    device: torch.device | str = "auto", arch: str = "gruunet", progress: bool = True
) -> nn.Module:
    """The course's trained model: the run of notebook 04, loaded from the cache where notebook
    04 left it (trained now, once, if it is not there yet)."""
    from .device import choose_device

    chosen = choose_device(device)
    preset, settings = course_run(chosen)
    return pretrained_model(
        preset,
        arch=arch,
        device=str(chosen),
        progress=progress,
        data_options=COURSE_DATA,
        **settings,
    )
