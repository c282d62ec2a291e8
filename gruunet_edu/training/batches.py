"""Batches for the training loop: from a dataset (or a DataLoader) to tensors on the device."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from ..data.dataset import NucleiDataset
from ..data.sampler import StepBatchSampler
from .config import TrainConfig


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(image (C, H, W) or (H, W), target (H, W)), ...]`` -> images (B, C, H, W), targets."""
    images = torch.stack([torch.as_tensor(np.asarray(item[0])) for item in items])
    targets = torch.stack([torch.as_tensor(np.asarray(item[1])) for item in items])
    if images.ndim == 3:  # (B, H, W) -> (B, 1, H, W)
        images = images[:, None]
    return images.float(), targets.long()


def is_map_dataset(data: Any) -> bool:
    """A dataset with ``__getitem__`` and ``__len__`` (not a DataLoader)."""
    return (
        not isinstance(data, torch.utils.data.DataLoader)
        and hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
    )


def train_batches(
    data: Any,
    config: TrainConfig,
    start: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator:
    """(images, targets) batches for steps ``start .. total - 1`` (this process's share).

    A map-style dataset is sampled by :class:`~gruunet_edu.data.sampler.StepBatchSampler`, so the
    batch of every step is fixed by the seed. A DataLoader or any other re-iterable of batches is
    cycled through in its own order (single process only).
    """
    if is_map_dataset(data):
        if len(data) == 0:
            raise ValueError("the training data set is empty")
        sampler = StepBatchSampler(
            len(data),
            config.batch_size,
            config.seed,
            start,
            config.total_steps,
            draws=isinstance(data, NucleiDataset),
            rank=rank,
            world_size=world_size,
        )
        loader = torch.utils.data.DataLoader(
            data,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
        )
        yield from loader
        return
    if not isinstance(data, Iterable):
        raise TypeError(f"training data must be a Dataset or an iterable of batches, not {data!r}")
    if world_size > 1:
        raise TypeError("data-parallel training needs a map-style dataset, not a DataLoader")
    step = start
    while step < config.total_steps:
        empty = True
        for batch in data:
            empty = False
            yield batch
            step += 1
            if step >= config.total_steps:
                return
        if empty:
            raise ValueError("the training data yielded no batch")


def val_batches(data: Any, batch_size: int, rank: int = 0, world_size: int = 1) -> Iterable:
    """Batches of a map-style dataset in order (items ``rank, rank + world_size, ...``); items of
    different sizes go in separate batches. Other iterables are returned as they are."""
    if not is_map_dataset(data):
        return data

    def batches() -> Iterator:
        pending: list = []
        for i in range(rank, len(data), world_size):
            item = data[i]
            if pending and (
                len(pending) == batch_size or tuple(item[0].shape) != tuple(pending[0][0].shape)
            ):
                yield collate(pending)
                pending = []
            pending.append(item)
        if pending:
            yield collate(pending)

    return batches()


def to_device(batch, device: torch.device, channels_last: bool = False):
    """``(images (B, C, H, W) float, targets (B, H, W) long)`` on ``device``."""
    images, targets = batch[0], batch[1]
    images = images.to(device, non_blocking=True).float()
    if images.ndim == 3:
        images = images[:, None]
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, targets.to(device, non_blocking=True).long()
