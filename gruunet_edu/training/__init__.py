"""Training: device choice, losses, the training loop, checkpoints and a cached trained model."""

from gruunet_edu.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    load_state,
    save_checkpoint,
)
from gruunet_edu.training.config import TrainConfig, learning_rate
from gruunet_edu.training.device import choose_device, default_preset, device_notice, set_seed
from gruunet_edu.training.history import History, json_safe
from gruunet_edu.training.loop import Terminated, TrainingDiverged, train
from gruunet_edu.training.losses import (
    LOSS_NAMES,
    SegmentationLoss,
    cross_entropy_loss,
    focal_loss,
    make_loss,
    soft_dice_loss,
)
from gruunet_edu.training.precision import AMP_MODES, resolve_amp
from gruunet_edu.training.pretrained import (
    cache_dir,
    course_model,
    course_model_path,
    pretrained_model,
    pretrained_path,
)
from gruunet_edu.training.quick import quick_train, synthetic_data
from gruunet_edu.training.recipes import (
    COURSE_DATA,
    COURSE_TRAINING,
    PRESET_RECIPES,
    course_run,
    recipe,
    recipe_with_steps,
)
from gruunet_edu.training.validation import evaluate_loss_dice

__all__ = [
    "AMP_MODES",
    "COURSE_DATA",
    "COURSE_TRAINING",
    "LOSS_NAMES",
    "PRESET_RECIPES",
    "CheckpointError",
    "History",
    "SegmentationLoss",
    "Terminated",
    "TrainConfig",
    "TrainingDiverged",
    "cache_dir",
    "choose_device",
    "course_model",
    "course_model_path",
    "course_run",
    "cross_entropy_loss",
    "default_preset",
    "device_notice",
    "evaluate_loss_dice",
    "focal_loss",
    "json_safe",
    "learning_rate",
    "load_checkpoint",
    "load_model",
    "load_state",
    "make_loss",
    "pretrained_model",
    "pretrained_path",
    "quick_train",
    "recipe",
    "recipe_with_steps",
    "resolve_amp",
    "save_checkpoint",
    "set_seed",
    "soft_dice_loss",
    "synthetic_data",
    "train",
]
