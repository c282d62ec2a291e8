"""The training loop shared by the command line and the training notebook.

:func:`train` runs ``config.steps`` optimisation steps of AdamW on a segmentation loss
(cross-entropy + soft Dice by default); every ``config.eval_interval`` steps it validates, adds a
row to the :class:`~.history.History` and writes a checkpoint. It reads top to bottom like
nanoGPT's ``train.py``: resume, step, evaluate, checkpoint. What it takes care of:

- device: ``config.device="auto"`` picks CUDA, then Apple MPS, then the CPU (``$GRUUNET_DEVICE``
  overrides), with a one-line notice on the CPU; under ``torchrun`` one device per process;
- mixed precision (:mod:`.precision`), ``channels_last``, optional ``torch.compile``;
- learning rate: linear warm-up, then cosine decay (:func:`~.config.learning_rate`);
- reproducibility: the same seed gives the same run on the CPU; the batch of every step is fixed
  by the seed (:class:`~gruunet_edu.data.sampler.StepBatchSampler`), so a resumed run sees the
  same batches as an uninterrupted one;
- checkpoints written atomically (:mod:`.checkpoint`); ``resume=True`` continues from the
  checkpoint's step with its weights, optimiser state and history;
- Ctrl-C (KeyboardInterrupt, also the notebook's "interrupt kernel") and SIGTERM stop training,
  keep the last checkpoint on disk and return the history up to it (``history.interrupted``);
- a NaN or infinite loss raises :class:`TrainingDiverged` saying what to try;
- data-parallel training under ``torchrun`` (:mod:`.distributed`): only rank 0 writes files and
  shows progress.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .batches import to_device, train_batches
from .checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint, unwrap_model
from .config import TrainConfig, learning_rate
from .device import device_notice, set_seed
from .history import History, json_safe
from .losses import make_loss
from .precision import autocast, resolve_amp, use_channels_last
from .recipes import preset_name
from .validation import evaluate_loss_dice


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to try."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a scheduler or ``kill`` ending the job): handled like Ctrl-C."""


def train(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    config: TrainConfig | None = None,
    loss_fn: nn.Module | None = None,
    model_config: Any = None,
    **overrides: Any,
) -> History:
    """Train ``model`` in place and return its :class:`History` (a row every eval_interval steps).

    ``train_data`` and ``val_data`` are map-style datasets whose items are ``(image (C, H, W),
    target (H, W))`` (e.g. ``SyntheticNucleiDataset``), or DataLoaders / iterables of
    ``(images, targets)`` batches. Keyword ``overrides`` change fields of ``config``
    (``train(model, ds, steps=100)``). ``model_config`` is stored in the checkpoint (default: the
    model's ``config`` attribute) so that :func:`~.checkpoint.load_model` can rebuild the network.

    Raises :class:`TrainingDiverged` on a NaN/inf loss. Ctrl-C returns the history so far.
    """
    config = (config or TrainConfig()).replace(**overrides)
    procs = distributed.setup(config.device)  # this process's device (and rank under torchrun)
    base = unwrap_model(model)
    model_config = model_config if model_config is not None else getattr(base, "config", None)
    say = _printer(config, procs)
    say(
        device_notice(procs.device, preset_name(model_config)) if procs.device.type == "cpu" else ""
    )
    set_seed(config.seed)
    stepper = _Stepper(base, loss_fn, config, procs)

    # resume: weights, optimiser state and history from the checkpoint, if asked and present
    history, start = _resume(base, stepper.optimizer, config, procs.device, say)
    total = config.total_steps
    if start >= total:
        say(f"Nothing to do: the checkpoint is at step {start} of {total}.")
        return history
    saver = _Saver(config, procs, base, model_config, stepper.optimizer, start)
    t0, elapsed0 = time.perf_counter(), (history.time[-1] if len(history) else 0.0)
    running, count, step = 0.0, 0, start
    bar = _progress_bar(config, procs, start)
    try:
        with _sigterm_as_interrupt(), bar:
            for batch in train_batches(
                train_data, config, start, procs.device, procs.rank, procs.world_size
            ):
                # one optimisation step (forward, backward, AdamW) at this step's learning rate
                lr = learning_rate(step, config)
                loss, over_time = stepper.step(batch, lr, step, time.perf_counter() - t0)
                step, running, count = step + 1, running + loss, count + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                if step % config.eval_interval and step < total and not over_time:
                    continue
                # every eval_interval steps (and at the end): validate, record, checkpoint
                val_loss, val_dice = stepper.validate(val_data)
                history.append(
                    step=step,
                    train_loss=running / count,
                    val_loss=val_loss,
                    val_dice=val_dice,
                    lr=lr,
                    time=elapsed0 + time.perf_counter() - t0,
                )
                running, count = 0.0, 0
                bar.set_postfix(loss=f"{loss:.3f}", val_dice=f"{val_dice:.3f}")
                saver.save(step, history)
                if over_time:
                    say(f"Time limit of {config.max_time:.0f} s reached at step {step}.")
                    break
    except KeyboardInterrupt as stop:
        return saver.interrupted(history, step, stop, say)
    say(_summary(history, step - start, time.perf_counter() - t0))
    return history


# ---------------------------------------------------------------------------------- the pieces


class _Stepper:
    """The model, its optimiser and loss on this process's device: one step, one validation."""

    def __init__(
        self, base: nn.Module, loss_fn: nn.Module | None, config: TrainConfig, procs: Any
    ) -> None:
        device = procs.device
        self.config, self.procs, self.base = config, procs, base
        self.amp_dtype = resolve_amp(config.amp, device)
        self.channels_last = use_channels_last(config.channels_last, device, self.amp_dtype)
        if loss_fn is None:
            weights = None if config.class_weights is None else list(config.class_weights)
            loss_fn = make_loss(config.loss, class_weights=weights)
        self.loss_fn = loss_fn.to(device)
        base.to(device)
        if self.channels_last:
            base.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(
            base.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=device.type == "cuda" and self.amp_dtype == torch.float16
        )
        wrapped = distributed.wrap(base, procs, config.sync_batchnorm)  # DDP under torchrun
        self.net = _maybe_compile(wrapped, config.compile)
        # validation without DDP's forward (whose buffer broadcast would wait for all processes)
        self.eval_net = base if procs.distributed else self.net

    def step(self, batch, lr: float, step: int, elapsed: float) -> tuple[float, bool]:
        """One optimisation step; ``(mean loss over the global batch, stop: max_time is up)``."""
        config, procs = self.config, self.procs
        over_time = config.max_time is not None and elapsed >= config.max_time
        images, targets = to_device(batch, procs.device, self.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with distributed.across_processes(procs.distributed):  # batch sums over all shares
            with autocast(procs.device, self.amp_dtype):
                logits = self.net(images)  # (B, K, H, W)
            loss = self.loss_fn(logits.float(), targets)
        total, stop = procs.all_sum([float(loss.detach()), float(over_time)])
        value = total / procs.world_size
        if not math.isfinite(value):
            raise TrainingDiverged(_divergence_message(step, value, config))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # DDP averages the gradients over processes
        if config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.base.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return value, stop > 0

    def validate(self, val_data: Any) -> tuple[float, float]:
        if val_data is None:
            return float("nan"), float("nan")
        config = self.config
        return evaluate_loss_dice(
            self.eval_net,
            val_data,
            self.loss_fn,
            self.procs.device,
            self.amp_dtype,
            config.batch_size,
            self.channels_last,
            self.procs,
        )


class _Saver:
    """Writes checkpoint and history (rank 0 only) and knows which step is on disk."""

    def __init__(self, config, procs, base, model_config, optimizer, start: int) -> None:
        self.config, self.procs, self.base = config, procs, base
        self.model_config, self.optimizer = model_config, optimizer
        self.path = config.checkpoint
        self.history_path = history_path(config)
        self.on_disk: int | None = start if start > 0 else None  # step of the checkpoint file

    def save(self, step: int, history: History) -> None:
        if not self.procs.is_main:  # rank 0 writes for all processes
            self.on_disk = step if self.path else None
            return
        if self.path:
            save_checkpoint(
                self.path,
                model=self.base,
                config=self.model_config,
                optimizer=self.optimizer,
                step=step,
                history=history,
                extra=json_safe({"train_config": self.config.to_dict()}),
            )
            self.on_disk = step
        if self.history_path:
            history.save(self.history_path)

    def interrupted(self, history: History, step: int, stop: BaseException, say) -> History:
        """Ctrl-C or SIGTERM: keep what is on disk, say what that is, return its history."""
        history.interrupted = True
        if self.path:  # the rows after the checkpoint on disk are redone by a resume
            keep = sum(1 for s in history.step if self.on_disk is not None and s <= self.on_disk)
            for key in ("step", "train_loss", "val_loss", "val_dice", "lr", "time"):
                del getattr(history, key)[keep:]
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        if not self.path:
            where = ""
        elif self.on_disk is None:
            where = "; no checkpoint was written yet"
        else:
            where = f"; the checkpoint on disk at {self.path} holds step {self.on_disk}"
        say(f"Training {what} at step {step}{where}. Returning the history so far.")
        if self.procs.is_main and self.history_path and len(history):
            history.save(self.history_path)
        return history


def _resume(base, optimizer, config: TrainConfig, device, say) -> tuple[History, int]:
    """``(history, start step)``: from the checkpoint when resuming, else empty and 0."""
    path = config.checkpoint
    if not config.resume:
        return History(), 0
    if not (path and Path(path).exists()):
        say(f"Nothing to resume: there is no checkpoint at {path}; training from step 0.")
        return History(), 0
    state = load_checkpoint(path, map_location=device)
    load_state(base, state, path)
    if state.get("optimizer"):
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"optimizer state in {path} does not fit this model: {err}"
            ) from err
    start = int(state["step"])
    say(f"Resuming from {path} at step {start}.")
    return History.from_dict(state.get("history")), start


def history_path(config: TrainConfig) -> Path | None:
    """Where the JSON history goes: ``config.history_path``, else next to the checkpoint."""
    if config.history_path:
        return Path(config.history_path)
    if config.checkpoint:
        ckpt = Path(config.checkpoint)
        return ckpt.with_name(ckpt.stem + "_history.json")
    return None


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), so it stops training
    as Ctrl-C does. Only the main thread can install signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress_bar(config: TrainConfig, procs, start: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=config.total_steps,
        initial=start,
        desc="training",
        unit="step",
        disable=not (config.progress and procs.is_main),
        dynamic_ncols=True,
    )


def _printer(config: TrainConfig, procs):
    def say(message: str) -> None:
        if message and config.verbose and procs.is_main:
            print(message, file=sys.stdout, flush=True)

    return say


def _maybe_compile(model: nn.Module, option: bool | str) -> nn.Module:
    if not option:
        return model
    if not hasattr(torch, "compile"):
        raise RuntimeError("torch.compile is not available in this PyTorch version")
    backend = option if isinstance(option, str) else "inductor"
    return torch.compile(model, backend=backend)


def _summary(history: History, steps: int, seconds: float) -> str:
    last = history.last()
    if not last:
        return f"Trained {steps} steps in {seconds:.0f} s."
    return (
        f"Trained {steps} steps in {seconds:.0f} s: train loss {last['train_loss']:.3f}, "
        f"val Dice {last['val_dice']:.3f}."
    )


def _divergence_message(step: int, value: float, config: TrainConfig) -> str:
    kind = "NaN" if math.isnan(value) else "infinite"
    return (
        f"training diverged: the loss became {kind} at step {step} "
        f"(learning rate {learning_rate(step, config):.2g}). Things to try: "
        f"a lower learning rate (e.g. lr={config.lr / 3:.2g}); check the data normalisation "
        f"(images should be percentile-normalised to about [0, 1], targets 0..num_classes-1); "
        f"turn mixed precision off (amp='off'); keep gradient clipping on (grad_clip=1.0)."
        + (f" The last good checkpoint is kept: {config.checkpoint}" if config.checkpoint else "")
    )
