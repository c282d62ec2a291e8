"""Train a preset on the synthetic sample data in one call (for notebooks and the model cache)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..data.targets import CONTACT_RADIUS
from .device import set_seed
from .history import History
from .loop import train
from .recipes import recipe_with_steps


def synthetic_data(
    crop: int = 128,
    seed: int = 0,
    n_train: int = 4096,
    pool: int | None = 64,
    n_val: int = 8,
    val_size: int = 128,
    augment: bool | Any = True,
    config: Any = None,
    contact_radius: int = CONTACT_RADIUS,
):
    """Training and validation sets of synthetic nuclei: ``(train, val)`` datasets.

    Training items are random crops of ``crop`` pixels (augmented; ``augment`` may also be an
    `AugmentConfig`) from ``pool`` generated 256 x 256 images; validation is ``n_val`` whole
    images of ``val_size`` pixels from a separate seed stream, so it never shares an image with
    training. ``config`` (a `SyntheticConfig`, default ``SyntheticConfig.training()``: the
    default task with touching nuclei of alike brightness) sets how both look;
    ``contact_radius`` the width of the boundary between touching nuclei in the targets.
    """
    from ..data.dataset import SyntheticNucleiDataset
    from ..data.synthetic_config import SyntheticConfig

    if config is None:
        config = SyntheticConfig.training()

    train_set = SyntheticNucleiDataset(
        n_train,
        size=max(256, crop),
        seed=seed,
        crop=crop,
        augment=augment,
        pool=pool,
        split="train",
        config=config,
        contact_radius=contact_radius,
    )
    val_set = SyntheticNucleiDataset(
        n_val,
        size=val_size,
        seed=seed,
        split="val",
        pool=n_val,
        config=config,
        contact_radius=contact_radius,
    )
    return train_set, val_set


def quick_train(
    preset: str = "tiny",
    steps: int | None = None,
    seed: int = 0,
    arch: str = "gruunet",
    device: str = "auto",
    data_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> tuple[nn.Module, History]:
    """Build a network of ``preset`` and train it on synthetic nuclei: ``(model, history)``.

    For notebooks: ``model, history = quick_train("tiny", steps=300)``. The training settings come
    from :data:`~.recipes.PRESET_RECIPES`; keyword arguments override any
    :class:`~.config.TrainConfig` field; ``data_options`` go to :func:`synthetic_data` (e.g.
    ``pool``, ``n_val``, ``val_size``). The model is returned in eval mode on ``device``.
    """
    from ..models import GRUUNetConfig, build_model

    config = recipe_with_steps(preset, steps, seed=seed, device=device, **overrides)
    set_seed(seed)
    model_config = GRUUNetConfig.preset(preset)
    model = build_model(model_config, arch=arch)
    train_set, val_set = synthetic_data(crop=config.crop, seed=seed, **(data_options or {}))
    history = train(model, train_set, val_set, config, model_config=model_config)
    return model.eval(), history
