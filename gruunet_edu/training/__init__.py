"""Training: device choice, losses, the training loop, checkpoints and a cached trained model."""

from gruunet_edu.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    load_state,
    save_checkpoint,
)
from gruunet_edu.training.device import choose_device, default_preset, device_notice, set_seed
from gruunet_edu.training.loop import (
    AMP_MODES,
    PRESET_RECIPES,
    History,
    TrainConfig,
    TrainingDiverged,
    evaluate_loss_dice,
    learning_rate,
    quick_train,
    recipe,
    resolve_amp,
    synthetic_data,
    train,
)
from gruunet_edu.training.losses import (
    LOSS_NAMES,
    SegmentationLoss,
    cross_entropy_loss,
    focal_loss,
    make_loss,
    soft_dice_loss,
)
from gruunet_edu.training.pretrained import cache_dir, pretrained_model, pretrained_path

__all__ = [
    "AMP_MODES",
    "LOSS_NAMES",
    "PRESET_RECIPES",
    "CheckpointError",
    "History",
    "SegmentationLoss",
    "TrainConfig",
    "TrainingDiverged",
    "cache_dir",
    "choose_device",
    "cross_entropy_loss",
    "default_preset",
    "device_notice",
    "evaluate_loss_dice",
    "focal_loss",
    "learning_rate",
    "load_checkpoint",
    "load_model",
    "load_state",
    "make_loss",
    "pretrained_model",
    "pretrained_path",
    "quick_train",
    "recipe",
    "resolve_amp",
    "save_checkpoint",
    "set_seed",
    "soft_dice_loss",
    "synthetic_data",
    "train",
]
