"""The settings of one training run, and the learning-rate schedule they define.

Names follow what the loop does (as nanoGPT's ``train.py`` does): ``steps`` optimisation steps in
all; every ``eval_interval`` steps the loop validates, records a row of the history and writes a
checkpoint. A *pass* is one visit of every training item (see
:class:`~gruunet_edu.data.sampler.StepBatchSampler`); it has nothing to do with ``eval_interval``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .precision import AMP_MODES

# Names of earlier versions, still read from old checkpoints and settings files.
_RENAMED = {"val_every": "eval_interval"}


@dataclass
class TrainConfig:
    """Settings of one training run (every field has a default that works for the tiny preset)."""

    steps: int = 300  # optimisation steps in total
    eval_interval: int = 50  # validate, record history, save a checkpoint every this many steps
    batch_size: int = 8  # images per step (the global batch: all processes together)
    lr: float = 3e-3  # peak learning rate of Adam
    weight_decay: float = 0.0  # Adam(W) weight decay
    warmup: int = 20  # steps of linear learning-rate warm-up
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # clip the gradient norm (None: no clipping)
    loss: str = "ce+dice"  # see losses.make_loss
    class_weights: tuple[float, ...] | None = None  # per-class weights of the CE / focal terms
    crop: int = 128  # training crop size (used by helpers that build datasets)
    amp: str = "auto"  # "auto" (bf16/fp16 on CUDA, bf16 on a CPU with bf16 instructions), "off"...
    channels_last: bool = False  # NHWC memory format (helps on GPUs)
    compile: bool | str = False  # torch.compile: True, or a backend name ("inductor", "eager")
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps" (under torchrun: LOCAL_RANK)
    seed: int = 0  # seeds weights (if the model is built inside), data order, everything
    num_workers: int = 0  # DataLoader worker processes
    checkpoint: str | None = None  # path of the checkpoint written every eval_interval steps
    history_path: str | None = None  # JSON history (default: next to the checkpoint)
    resume: bool = False  # continue from `checkpoint` if it exists
    max_time: float | None = None  # stop after this many seconds of training (then validate)
    progress: bool = True  # tqdm progress bar (widget in JupyterLab, text in a terminal)
    verbose: bool = True  # print the device notice and end-of-run lines
    sync_batchnorm: bool = True  # under DDP: BatchNorm statistics over all processes' shares

    def __post_init__(self) -> None:
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        for name in ("steps", "eval_interval", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr}")
        if self.resume and not self.checkpoint:
            raise ValueError("resume=True needs a checkpoint path to resume from")

    @property
    def total_steps(self) -> int:
        """Number of optimisation steps of the whole run."""
        return int(self.steps)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Settings from a dict; names of earlier versions (``val_every``, ``epochs``) are read."""
        d = {_RENAMED.get(k, k): v for k, v in d.items()}
        if d.get("epochs") is not None:  # earlier versions: epochs * val_every steps
            d["steps"] = int(d["epochs"]) * int(d.get("eval_interval", cls.eval_interval))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def learning_rate(step: int, config: TrainConfig) -> float:
    """Learning rate of optimisation step ``step`` (0-based): linear warm-up, then cosine decay.

    A pure function of the step, so a resumed run follows the same schedule.
    """
    if config.warmup > 0 and step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    span = max(1, config.total_steps - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))
