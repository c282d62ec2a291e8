"""Data-parallel training with ``torchrun``: one process per device, one model replica each.

``torchrun --nproc_per_node=N -m gruunet_edu train ...`` starts N processes and tells each its
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. :func:`setup` reads them, joins the process group (NCCL
on CUDA, Gloo on the CPU) and picks this process's device (``cuda:LOCAL_RANK``). Every step, each
process takes its share of the global batch (see :class:`~gruunet_edu.data.sampler
.StepBatchSampler`), ``DistributedDataParallel`` averages the gradients, and the batch-wide sums
(BatchNorm statistics, the soft Dice sums) are taken over all shares with a differentiable
all-reduce, so N processes with global batch B compute what one process computes with batch B.

Why synchronised BatchNorm by default: with N processes each BatchNorm layer would otherwise
normalise with the mean and variance of B/N images only (2 on 8 GPUs with the paper recipe), which
is noisier than the single-process run and makes the result depend on N. Syncing costs one small
all-reduce per BatchNorm layer per step; ``sync_batchnorm=False`` turns it off (each process then
uses its own share's statistics, and rank 0's running statistics are kept, as DDP broadcasts them).

A process that fails or is interrupted never leaves the others waiting for ever: every collective
operation has a timeout (``$GRUUNET_DIST_TIMEOUT`` seconds, default 300), and ``torchrun`` stops the
remaining processes when one exits with an error.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from .device import choose_device

TIMEOUT_ENV = "GRUUNET_DIST_TIMEOUT"
_ACROSS_PROCESSES = contextvars.ContextVar("gruunet_across_processes", default=False)


@dataclass(frozen=True)
class Processes:
    """Where this process stands in a (possibly one-process) training job."""

    device: torch.device
    rank: int = 0  # 0 .. world_size - 1; rank 0 writes files and shows progress
    world_size: int = 1
    local_rank: int = 0  # index of this process on its machine: its GPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_sum(self, values: list[float]) -> list[float]:
        """``values`` summed over all processes (themselves when there is one process)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher) started more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """True in a single process and in rank 0 of a ``torchrun`` job (the one that writes files)."""
    return int(os.environ.get("RANK", "0")) == 0


def timeout() -> timedelta:
    """Timeout of every collective operation: ``$GRUUNET_DIST_TIMEOUT`` s, default 300."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        seconds = float(value) if value else 300.0
    except ValueError as err:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {value!r}") from err
    return timedelta(seconds=seconds)


def setup(device: str = "auto") -> Processes:
    """Join the process group when launched by ``torchrun``; the device of this process.

    One process: :func:`~.device.choose_device` as always. Several: ``cuda:LOCAL_RANK`` when CUDA
    is chosen (NCCL), else the CPU (Gloo).
    """
    chosen = choose_device(device)
    if not launched_by_torchrun():
        return Processes(chosen)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices: "
                f"start at most {torch.cuda.device_count()} processes per machine"
            )
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    elif chosen.type != "cpu":
        raise RuntimeError(f"data-parallel training runs on CUDA or the CPU, not {chosen.type}")
    if not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timeout())
        atexit.register(shutdown)
    return Processes(chosen, rank, world, local_rank)


def shutdown() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def across_processes(active: bool) -> Iterator[None]:
    """Inside: batch-wide sums (:func:`global_sum`) run over all processes' shares."""
    token = _ACROSS_PROCESSES.set(bool(active))
    try:
        yield
    finally:
        _ACROSS_PROCESSES.reset(token)


def global_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all processes inside :func:`across_processes` (differentiable: the
    gradient flows back to every process's share), else ``t`` itself."""
    if _ACROSS_PROCESSES.get() and dist.is_initialized() and dist.get_world_size() > 1:
        return _AllSum.apply(t)
    return t


class _AllSum(torch.autograd.Function):
    """Sum over processes; the gradient of every process's input is the sum of all gradients
    of the output (each process's loss depends on every process's input)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose batch statistics cover the images of all processes.

    ``mean = sum x / N`` and ``var = sum (x - c)^2 / N - (mean - c)^2``, with the sums and N
    all-reduced over processes in one call (:func:`global_sum`), so that the layer normalises as
    a single process with the whole global batch would. The shift ``c`` (the running mean, the
    same on every process) keeps the variance free of cancellation. Outside a data-parallel step
    it is an ordinary ``BatchNorm2d`` (same parameters and buffers, so checkpoints load into
    either). Unlike ``torch.nn.SyncBatchNorm`` it also works on the CPU (Gloo).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _ACROSS_PROCESSES.get() and dist.is_initialized()):
            return super().forward(x)
        c = x.shape[1]
        xf = x.float()
        shape = (1, c, 1, 1)
        shift = (
            self.running_mean.detach().float().clone()
            if self.track_running_stats
            else xf.new_zeros(c)
        )
        xc = xf - shift.view(shape)
        local = torch.cat(
            [
                xc.sum((0, 2, 3)),  # (C,)
                (xc * xc).sum((0, 2, 3)),  # (C,)
                xf.new_tensor([x.numel() / c]),  # pixels of this share per channel
            ]
        )
        total = global_sum(local)
        n = total[-1]
        mean_c = total[:c] / n  # mean - shift
        mean = mean_c + shift
        var = (total[c : 2 * c] / n - mean_c * mean_c).clamp_min(0.0)  # biased, as BatchNorm
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * unbiased.detach())
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Make every ``BatchNorm2d`` in ``module`` a :class:`SyncBatchNorm2d`, in place.

    The layers keep their parameter and buffer tensors (an optimiser built before still updates
    them) and their state-dict keys, so checkpoints stay interchangeable.
    """
    for child in module.modules():
        if type(child) is nn.BatchNorm2d:
            child.__class__ = SyncBatchNorm2d
    return module


def wrap(model: nn.Module, processes: Processes, sync_batchnorm: bool = True) -> nn.Module:
    """``DistributedDataParallel(model)`` (with synchronised BatchNorm) under ``torchrun``; the
    model itself in a single process."""
    if not processes.distributed:
        return model
    if sync_batchnorm:
        convert_sync_batchnorm(model)
    ids = [processes.device.index] if processes.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
