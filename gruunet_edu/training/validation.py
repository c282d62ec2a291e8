"""Validation during training: mean loss and foreground Dice, pooled over images and processes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..evaluation.metrics import dice_from_counts, foreground_counts
from ..evaluation.prepare import eval_mode, model_device
from .batches import to_device, val_batches
from .distributed import Processes
from .losses import make_loss
from .precision import autocast


@torch.no_grad()
def evaluate_loss_dice(
    model: nn.Module,
    data: Any,
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
    amp_dtype: torch.dtype | None = None,
    batch_size: int = 8,
    channels_last: bool = False,
    processes: Processes | None = None,
) -> tuple[float, float]:
    """Mean loss (per image) and foreground Dice of ``model`` on ``data``.

    The foreground is every pixel whose arg-max class is not background (class 0); its Dice pools
    the pixel counts of all images (:func:`~gruunet_edu.evaluation.metrics.foreground_counts`).
    Under data-parallel training each process evaluates every ``world_size``-th image and the
    counts are summed over processes, so every process gets the Dice of the whole set.
    """
    loss_fn = loss_fn or make_loss()
    device = torch.device(device) if device is not None else model_device(model)
    processes = processes or Processes(device)
    sums = [0.0, 0.0, 0.0, 0.0, 0.0]  # loss * images, images, |P n T|, |P|, |T|
    with eval_mode(model):
        for batch in val_batches(data, batch_size, processes.rank, processes.world_size):
            images, targets = to_device(batch, device, channels_last)
            with autocast(device, amp_dtype):
                logits = model(images)  # (B, K, H, W)
            sums[0] += float(loss_fn(logits.float(), targets)) * len(images)
            sums[1] += len(images)
            for k, count in enumerate(foreground_counts(logits.argmax(1), targets)):
                sums[2 + k] += count
    loss_sum, n_images, inter, p_sum, t_sum = processes.all_sum(sums)
    if n_images == 0:
        return float("nan"), float("nan")
    return loss_sum / n_images, dice_from_counts(inter, p_sum, t_sum)
