"""The training loop shared by the command line and the training notebook.

One function, :func:`train`, runs ``config.steps`` optimisation steps of Adam on a segmentation
loss (cross-entropy + soft Dice by default) and validates every ``config.val_every`` steps. Such a
block of steps is an *epoch* of the :class:`History`: one row with the mean training loss, the
validation loss and the validation Dice of the foreground, the learning rate and the time.

What it takes care of, so a notebook cell stays short:

- device: ``config.device="auto"`` picks CUDA, then Apple MPS, then the CPU (``$GRUUNET_DEVICE``
  overrides), with a one-line notice on the CPU;
- mixed precision (``amp``): on CUDA bfloat16 where the GPU supports it, else float16 with a
  ``GradScaler`` (gradients of float16 underflow without loss scaling); on the CPU off by default,
  ``amp="bf16"`` runs the CPU's bfloat16 autocast (the loss is always computed in float32);
- ``channels_last`` memory format (faster convolutions on tensor-core GPUs) and optional
  ``torch.compile`` (``compile=True``, or the name of a backend such as ``"eager"``);
- learning rate: linear warm-up over ``warmup`` steps, then cosine decay to ``lr * min_lr_ratio``,
  a pure function of the step, so a resumed run follows the same schedule;
- reproducibility: the same seed gives the same run on the CPU; the order of the training samples
  is drawn from ``(seed, pass over the data)``, so a resumed run sees the same batches as an
  uninterrupted one;
- checkpoints after every epoch, written atomically (see :mod:`.checkpoint`); ``resume=True``
  continues from the checkpoint's step with its weights, optimiser state and history;
- Ctrl-C (KeyboardInterrupt, also the notebook's "interrupt kernel") stops training, keeps the last
  good checkpoint and returns the history so far (``history.interrupted`` is True);
- a NaN or infinite loss raises :class:`TrainingDiverged` saying what to try.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state,
    save_checkpoint,
    unwrap_model,
    write_atomically,
)
from .device import choose_device, device_notice, set_seed
from .losses import make_loss

AMP_MODES = ("auto", "bf16", "fp16", "off")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to try."""


# ---------------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Settings of one training run (every field has a default that works for the tiny preset)."""

    steps: int = 300  # optimisation steps in total (ignored when `epochs` is set)
    epochs: int | None = None  # if set: epochs * val_every steps
    val_every: int = 50  # steps per epoch: validate, record history, save checkpoint
    batch_size: int = 8  # images per step
    lr: float = 3e-3  # peak learning rate of Adam
    weight_decay: float = 0.0  # Adam(W) weight decay
    warmup: int = 20  # steps of linear learning-rate warm-up
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # clip the gradient norm (None: no clipping)
    loss: str = "ce+dice"  # see losses.make_loss
    class_weights: tuple[float, ...] | None = None  # per-class weights of the CE / focal terms
    crop: int = 128  # training crop size (used by helpers that build datasets)
    amp: str = "auto"  # "auto" (bf16/fp16 on CUDA, off on CPU), "bf16", "fp16", "off"
    channels_last: bool = False  # NHWC memory format (helps on GPUs)
    compile: bool | str = False  # torch.compile: True, or a backend name ("inductor", "eager")
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    seed: int = 0  # seeds weights (if the model is built inside), data order, everything
    num_workers: int = 0  # DataLoader worker processes
    checkpoint: str | None = None  # path of the checkpoint written after every epoch
    history_path: str | None = None  # JSON history (default: next to the checkpoint)
    resume: bool = False  # continue from `checkpoint` if it exists
    max_time: float | None = None  # stop after this many seconds of training (then validate)
    progress: bool = True  # tqdm progress bar (widget in JupyterLab, text in a terminal)
    verbose: bool = True  # print the device notice and end-of-run lines

    def __post_init__(self) -> None:
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        for name in ("val_every", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"TrainConfig.epochs must be >= 1, got {self.epochs}")
        if self.epochs is None and self.steps < 1:
            raise ValueError(f"TrainConfig.steps must be >= 1, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr}")
        if self.resume and not self.checkpoint:
            raise ValueError("resume=True needs a checkpoint path to resume from")

    @property
    def total_steps(self) -> int:
        """Number of optimisation steps of the whole run."""
        return self.epochs * self.val_every if self.epochs is not None else int(self.steps)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------------------------- history

_HISTORY_KEYS = ("epoch", "step", "train_loss", "val_loss", "val_dice", "lr", "time")


@dataclass
class History:
    """One entry per epoch in each list (``val_*`` is NaN without validation data).

    ``time`` is the training time in seconds since the start (validation included).
    """

    epoch: list[int] = field(default_factory=list)
    step: list[int] = field(default_factory=list)  # steps done at the end of the epoch
    train_loss: list[float] = field(default_factory=list)  # mean over the epoch's steps
    val_loss: list[float] = field(default_factory=list)
    val_dice: list[float] = field(default_factory=list)  # Dice of the foreground (argmax != 0)
    lr: list[float] = field(default_factory=list)  # learning rate at the last step
    time: list[float] = field(default_factory=list)
    interrupted: bool = False  # True when Ctrl-C stopped the run

    def append(self, **row: float) -> None:
        missing = set(_HISTORY_KEYS) - set(row)
        if missing:
            raise ValueError(f"history row lacks {sorted(missing)}")
        for key in _HISTORY_KEYS:
            getattr(self, key).append(row[key])

    def __len__(self) -> int:
        return len(self.step)

    def last(self) -> dict[str, float]:
        """The latest row as a dict (empty dict for an empty history)."""
        return {key: getattr(self, key)[-1] for key in _HISTORY_KEYS} if len(self) else {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {key: list(getattr(self, key)) for key in _HISTORY_KEYS}
        d["interrupted"] = self.interrupted
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> History:
        d = d or {}
        h = cls(**{key: list(d.get(key, [])) for key in _HISTORY_KEYS})
        h.interrupted = bool(d.get("interrupted", False))
        return h

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON (atomically: temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_json_safe(self.to_dict()), indent=1)
        write_atomically(path, lambda handle: handle.write(text.encode()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _json_safe(value: Any) -> Any:
    """NaN/inf become None so that the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# ---------------------------------------------------------------------------------- pieces


def learning_rate(step: int, config: TrainConfig) -> float:
    """Learning rate for optimisation step ``step`` (0-based): linear warm-up, then cosine."""
    total = config.total_steps
    if config.warmup > 0 and step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    span = max(1, total - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: full float32).

    ``auto``: bfloat16 on CUDA GPUs that support it, else float16; off on CPU and MPS.
    ``fp16`` on the CPU falls back to bfloat16 (the CPU autocast type).
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16":
            return torch.float16
        if amp == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type == "cpu":
        return None if amp == "auto" else torch.bfloat16
    return None if amp == "auto" else (torch.float16 if amp == "fp16" else torch.bfloat16)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for the device, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.stack([torch.as_tensor(np.asarray(item[0])) for item in items])
    targets = torch.stack([torch.as_tensor(np.asarray(item[1])) for item in items])
    if images.ndim == 3:  # (B, H, W) -> (B, 1, H, W)
        images = images[:, None]
    return images.float(), targets.long()


class _StepBatches(torch.utils.data.Sampler):
    """Index batches for steps ``start..total-1``: pass p over the data is the permutation drawn
    from ``(seed, p)``, so the batch of any step is known without replaying the earlier ones.

    With ``draws=True`` (a :class:`~gruunet_edu.data.dataset.NucleiDataset`) every index comes with
    a draw number for its random crop and augmentation, so each pass sees new crops."""

    def __init__(
        self, n: int, batch_size: int, seed: int, start: int, total: int, draws: bool = False
    ) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.total, self.draws = start, total, draws
        self.per_pass = max(1, n // batch_size)  # full batches per pass (last partial dropped)

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self) -> Iterator[list]:
        order = draw = None
        current = -1
        for step in range(self.start, self.total):
            p, k = divmod(step, self.per_pass)
            if p != current:
                rng = np.random.default_rng((self.seed, p))
                order = rng.permutation(self.n)
                draw = rng.integers(0, 2**62, self.n)
                current = p
            assert order is not None and draw is not None
            if self.n < self.batch_size:  # tiny data sets: sample with repetition
                pos = np.arange(self.batch_size)
            else:
                pos = np.arange(k * self.batch_size, (k + 1) * self.batch_size)
            # with repetition, the r-th copy of an item gets draw + r (a different crop)
            batch = [
                (int(order[j % self.n]), int(draw[j % self.n]) + int(j // self.n)) for j in pos
            ]
            yield batch if self.draws else [index for index, _ in batch]


def _is_map_dataset(data: Any) -> bool:
    return (
        not isinstance(data, torch.utils.data.DataLoader)
        and hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
    )


def _takes_draws(data: Any) -> bool:
    from ..data.dataset import NucleiDataset

    return isinstance(data, NucleiDataset)


def _train_batches(data: Any, config: TrainConfig, start: int, device: torch.device) -> Iterator:
    """An iterator of (images, targets) batches for steps start..total-1."""
    total = config.total_steps
    if _is_map_dataset(data):
        if len(data) == 0:
            raise ValueError("the training data set is empty")
        sampler = _StepBatches(
            len(data), config.batch_size, config.seed, start, total, draws=_takes_draws(data)
        )
        loader = torch.utils.data.DataLoader(
            data,
            batch_sampler=sampler,
            collate_fn=_collate,
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
        )
        yield from loader
        return
    # A DataLoader or any re-iterable of batches: cycle through it (its own order).
    if not isinstance(data, Iterable):
        raise TypeError(f"training data must be a Dataset or an iterable of batches, not {data!r}")
    step = start
    while step < total:
        empty = True
        for batch in data:
            empty = False
            yield batch
            step += 1
            if step >= total:
                return
        if empty:
            raise ValueError("the training data yielded no batch")


def _val_batches(data: Any, batch_size: int) -> Iterable:
    """Batches of a map-style dataset in order; items of different sizes go in separate batches."""
    if not _is_map_dataset(data):
        return data

    def batches() -> Iterator:
        pending: list = []
        for i in range(len(data)):
            item = data[i]
            if pending and (
                len(pending) == batch_size or tuple(item[0].shape) != tuple(pending[0][0].shape)
            ):
                yield _collate(pending)
                pending = []
            pending.append(item)
        if pending:
            yield _collate(pending)

    return batches()


def _to_device(batch, device: torch.device, channels_last: bool):
    images, targets = batch[0], batch[1]
    images = images.to(device, non_blocking=True).float()
    if images.ndim == 3:
        images = images[:, None]
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, targets.to(device, non_blocking=True).long()


@torch.no_grad()
def evaluate_loss_dice(
    model: nn.Module,
    data: Any,
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
    amp_dtype: torch.dtype | None = None,
    batch_size: int = 8,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Mean loss and foreground Dice (pixels pooled over the data set) of ``model`` on ``data``.

    The foreground is every pixel whose arg-max class is not background (class 0).
    """
    from ..evaluation.inference import eval_mode, model_device

    loss_fn = loss_fn or make_loss()
    device = torch.device(device) if device is not None else model_device(model)
    total_loss, n_batches = 0.0, 0
    inter = p_sum = t_sum = 0
    with eval_mode(model):
        for batch in _val_batches(data, batch_size):
            images, targets = _to_device(batch, device, channels_last)
            with autocast(device, amp_dtype):
                logits = model(images)
            total_loss += float(loss_fn(logits.float(), targets))
            n_batches += 1
            pred = logits.argmax(1) != 0
            true = targets != 0
            inter += int((pred & true).sum())
            p_sum += int(pred.sum())
            t_sum += int(true.sum())
    if n_batches == 0:
        return float("nan"), float("nan")
    dice = 1.0 if p_sum + t_sum == 0 else 2.0 * inter / (p_sum + t_sum)
    return total_loss / n_batches, dice


def _divergence_message(step: int, value: float, config: TrainConfig, checkpoint: str) -> str:
    kind = "NaN" if math.isnan(value) else "infinite"
    return (
        f"training diverged: the loss became {kind} at step {step} "
        f"(learning rate {learning_rate(step, config):.2g}). Things to try: "
        f"a lower learning rate (e.g. lr={config.lr / 3:.2g}); check the data normalisation "
        f"(images should be percentile-normalised to about [0, 1], targets 0..num_classes-1); "
        f"turn mixed precision off (amp='off'); keep gradient clipping on (grad_clip=1.0)."
        + (f" The last good checkpoint is kept: {checkpoint}" if checkpoint else "")
    )


def _history_path(config: TrainConfig) -> Path | None:
    if config.history_path:
        return Path(config.history_path)
    if config.checkpoint:
        ckpt = Path(config.checkpoint)
        return ckpt.with_name(ckpt.stem + "_history.json")
    return None


def _say(config: TrainConfig, message: str) -> None:
    if config.verbose:
        print(message, file=sys.stdout, flush=True)


def _maybe_compile(model: nn.Module, option: bool | str) -> nn.Module:
    if not option:
        return model
    if not hasattr(torch, "compile"):
        raise RuntimeError("torch.compile is not available in this PyTorch version")
    backend = option if isinstance(option, str) else "inductor"
    return torch.compile(model, backend=backend)


def preset_name(model_config: Any) -> str:
    """The name of the preset ``model_config`` equals (``"custom"`` if none)."""
    from ..models import PRESETS, GRUUNetConfig

    if isinstance(model_config, GRUUNetConfig):
        for name in PRESETS:
            preset = GRUUNetConfig.preset(
                name, in_channels=model_config.in_channels, num_classes=model_config.num_classes
            )
            if preset == model_config:
                return name
    return "custom"


# ---------------------------------------------------------------------------------- train


def train(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    config: TrainConfig | None = None,
    loss_fn: nn.Module | None = None,
    model_config: Any = None,
    **overrides: Any,
) -> History:
    """Train ``model`` in place and return its :class:`History` (one row per epoch).

    ``train_data`` and ``val_data`` are map-style datasets whose items are ``(image (C, H, W),
    target (H, W))`` (e.g. ``SyntheticNucleiDataset``), or DataLoaders / iterables of
    ``(images, targets)`` batches. Keyword ``overrides`` change fields of ``config``
    (``train(model, ds, steps=100)``). ``model_config`` is stored in the checkpoint (default: the
    model's ``config`` attribute) so that :func:`~.checkpoint.load_model` can rebuild the network.

    Raises :class:`TrainingDiverged` on a NaN/inf loss. Ctrl-C returns the history so far.
    """
    config = config or TrainConfig()
    if overrides:
        config = config.replace(**overrides)
    device = choose_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    base = unwrap_model(model)
    model_config = model_config if model_config is not None else getattr(base, "config", None)
    if device.type == "cpu":
        _say(config, device_notice(device, preset_name(model_config)))
    set_seed(config.seed)
    if loss_fn is None:
        weights = None if config.class_weights is None else list(config.class_weights)
        loss_fn = make_loss(config.loss, class_weights=weights)
    loss_fn = loss_fn.to(device)

    base.to(device)
    if config.channels_last:
        base.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(base.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(
        device.type, enabled=device.type == "cuda" and amp_dtype == torch.float16
    )

    history = History()
    start = 0
    ckpt_path = config.checkpoint
    if config.resume and ckpt_path and Path(ckpt_path).exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        load_state(base, state, ckpt_path)
        if state.get("optimizer"):
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as err:
                raise CheckpointError(
                    f"optimizer state in {ckpt_path} does not fit this model: {err}"
                ) from err
        start = int(state["step"])
        history = History.from_dict(state.get("history"))
        _say(config, f"Resuming from {ckpt_path} at step {start}.")
    total = config.total_steps
    if start >= total:
        _say(config, f"Nothing to do: the checkpoint is at step {start} of {total}.")
        return history

    net = _maybe_compile(base, config.compile)
    hist_path = _history_path(config)
    elapsed0 = history.time[-1] if len(history) else 0.0
    t0 = time.perf_counter()

    def save(step: int) -> None:
        extra = {"train_config": config.to_dict()}
        if ckpt_path:
            save_checkpoint(
                ckpt_path,
                model=base,
                config=model_config,
                optimizer=optimizer,
                step=step,
                history=history,
                extra=_json_safe(extra),
            )
        if hist_path:
            history.save(hist_path)

    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=start,
        desc="training",
        unit="step",
        disable=not config.progress,
        dynamic_ncols=True,
    )
    net.train()
    running, count = 0.0, 0
    step = start
    try:
        for batch in _train_batches(train_data, config, start, device):
            images, targets = _to_device(batch, device, config.channels_last)
            lr = learning_rate(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device, amp_dtype):
                logits = net(images)
            loss = loss_fn(logits.float(), targets)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(_divergence_message(step, value, config, ckpt_path or ""))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(base.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            running += value
            count += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            out_of_time = config.max_time is not None and (
                time.perf_counter() - t0 >= config.max_time
            )
            if step % config.val_every == 0 or step == total or out_of_time:
                val_loss, val_dice = (float("nan"), float("nan"))
                if val_data is not None:
                    val_loss, val_dice = evaluate_loss_dice(
                        net,
                        val_data,
                        loss_fn,
                        device,
                        amp_dtype,
                        config.batch_size,
                        config.channels_last,
                    )
                history.append(
                    epoch=len(history) + 1,
                    step=step,
                    train_loss=running / max(count, 1),
                    val_loss=val_loss,
                    val_dice=val_dice,
                    lr=lr,
                    time=elapsed0 + time.perf_counter() - t0,
                )
                running, count = 0.0, 0
                bar.set_postfix(loss=f"{value:.3f}", val_dice=f"{val_dice:.3f}")
                save(step)
                if out_of_time:
                    _say(config, f"Time limit of {config.max_time:.0f} s reached at step {step}.")
                    break
    except KeyboardInterrupt:
        history.interrupted = True
        bar.close()
        where = (
            f"; the last checkpoint (step {history.step[-1]}) is kept at {ckpt_path}"
            if (ckpt_path and len(history))
            else ""
        )
        _say(config, f"Training interrupted at step {step}{where}. Returning the history so far.")
        if hist_path and len(history):
            history.save(hist_path)
        return history
    finally:
        bar.close()
    if len(history):
        last = history.last()
        _say(
            config,
            f"Trained {step - start} steps in {time.perf_counter() - t0:.0f} s: "
            f"train loss {last['train_loss']:.3f}, val Dice {last['val_dice']:.3f}.",
        )
    return history


# ---------------------------------------------------------------------------------- quick_train

#: Training settings per preset for :func:`quick_train` (the CPU recipe for ``tiny`` and
#: ``small``, the GPU recipe for ``paper`` and ``blog``).
PRESET_RECIPES: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=150, batch_size=8, lr=3e-3, crop=128, val_every=25),
    "small": dict(steps=600, batch_size=8, lr=2e-3, crop=128, val_every=100),
    "paper": dict(steps=4000, batch_size=16, lr=1e-3, crop=256, val_every=250),
    "blog": dict(steps=4000, batch_size=16, lr=1e-3, crop=256, val_every=250),
}


def recipe(preset: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a preset's recipe, with fields overridden."""
    if preset not in PRESET_RECIPES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESET_RECIPES)}")
    return TrainConfig(**{**PRESET_RECIPES[preset], **overrides})


def _recipe_with_steps(preset: str, steps: int | None, **overrides: Any) -> TrainConfig:
    """:func:`recipe`, run for exactly ``steps`` steps when given (shared by :func:`quick_train`
    and :func:`~.pretrained.pretrained_path`, so the cache key matches the run)."""
    config = recipe(preset, **overrides)
    if steps is not None:
        config = config.replace(steps=int(steps), epochs=None)
    return config


def synthetic_data(
    crop: int = 128,
    seed: int = 0,
    n_train: int = 4096,
    pool: int | None = 64,
    n_val: int = 8,
    val_size: int = 128,
    augment: bool = True,
):
    """Training and validation sets of synthetic nuclei: ``(train, val)`` datasets.

    Training items are random crops of ``crop`` pixels (augmented) from ``pool`` generated
    256 x 256 images; validation is ``n_val`` whole images of ``val_size`` pixels from a separate
    seed stream, so it never shares an image with training.
    """
    from ..data.dataset import SyntheticNucleiDataset

    train_set = SyntheticNucleiDataset(
        n_train,
        size=max(256, crop),
        seed=seed,
        crop=crop,
        augment=augment,
        pool=pool,
        split="train",
    )
    val_set = SyntheticNucleiDataset(n_val, size=val_size, seed=seed, split="val", pool=n_val)
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
    from :data:`PRESET_RECIPES`; keyword arguments override any :class:`TrainConfig` field;
    ``data_options`` go to :func:`synthetic_data` (e.g. ``pool``, ``n_val``, ``val_size``). The
    model is returned in eval mode on ``device``.
    """
    from ..models import GRUUNetConfig, build_model

    config = _recipe_with_steps(preset, steps, seed=seed, device=device, **overrides)
    set_seed(seed)
    model_config = GRUUNetConfig.preset(preset)
    model = build_model(model_config, arch=arch)
    train_set, val_set = synthetic_data(crop=config.crop, seed=seed, **(data_options or {}))
    history = train(model, train_set, val_set, config, model_config=model_config)
    return model.eval(), history
