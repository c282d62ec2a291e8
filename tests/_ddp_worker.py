"""Runs under ``torchrun`` for tests/test_distributed.py: tiny trainings on 2 CPU processes.

    torchrun --standalone --nproc_per_node=2 tests/_ddp_worker.py equivalence OUT
    torchrun --standalone --nproc_per_node=2 tests/_ddp_worker.py fail OUT

``equivalence`` writes, from rank 0: ``full.pt`` (an uninterrupted run), ``resumed.pt`` (the same
run interrupted after its first checkpoint and resumed) with the weights and histories.
``fail`` makes rank 1 raise while reading its second batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from gruunet_edu.data.normalize import percentile_normalize
from gruunet_edu.data.synthetic import make_nuclei
from gruunet_edu.data.targets import three_class
from gruunet_edu.models import GRUUNetConfig, build_model
from gruunet_edu.training.config import TrainConfig

TINY = GRUUNetConfig.preset("tiny", encoder_widths=(8, 16), decoder_widths=(8,), hidden_channels=8)
GLOBAL_BATCH = 4


def items(n: int = 8) -> list:
    """``n`` synthetic 32 x 32 samples as (image (1, H, W), target (H, W)) pairs."""
    out = []
    for i in range(n):
        image, labels = make_nuclei(i, size=32, density=12)
        out.append(
            (
                torch.from_numpy(percentile_normalize(image))[None],
                torch.from_numpy(three_class(labels).astype(np.int64)),
            )
        )
    return out


def fresh_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TINY)


def settings(**kw) -> TrainConfig:
    base = dict(steps=4, eval_interval=2, batch_size=GLOBAL_BATCH, lr=3e-3, warmup=1)
    # float32: the runs are compared to 1e-5, and bfloat16 rounds a batch of 2b differently from
    # two shares of b (amp="auto" is bfloat16 on CPUs with bfloat16 instructions)
    base.update(device="cpu", progress=False, verbose=False, amp="off")
    return TrainConfig(**{**base, **kw})


class InterruptAfter:
    """A dataset that raises KeyboardInterrupt (like Ctrl-C) after ``n`` items were read."""

    def __init__(self, data, n, error=KeyboardInterrupt):
        self.data, self.n, self.reads, self.error = data, n, 0, error

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.reads += 1
        if self.reads > self.n:
            raise self.error("rank failed on purpose")
        return self.data[i]


def state(model, history) -> dict:
    return {"weights": model.state_dict(), "history": history.to_dict()}


def equivalence(out: Path) -> None:
    from gruunet_edu.training.loop import train

    data = items()
    full_model = fresh_model()
    full = train(full_model, data, data[:3], settings())
    rank = torch.distributed.get_rank()
    if rank == 0:
        torch.save(state(full_model, full), out / "full.pt")

    ckpt = str(out / "ckpt.pt")
    cut = train(fresh_model(), InterruptAfter(data, 2 * 2), data[:3], settings(checkpoint=ckpt))
    assert cut.interrupted and cut.step == [2], cut.step  # 2 items per process per step
    torch.manual_seed(123)
    resumed_model = build_model(TINY)  # other initial weights: they come from the checkpoint
    resumed = train(resumed_model, data, data[:3], settings(checkpoint=ckpt, resume=True))
    if rank == 0:
        torch.save(state(resumed_model, resumed), out / "resumed.pt")


def fail(out: Path) -> None:
    from gruunet_edu.training import distributed
    from gruunet_edu.training.loop import train

    distributed.setup("cpu")
    data = items()
    if torch.distributed.get_rank() == 1:
        data = InterruptAfter(data, 2, error=RuntimeError)
    train(fresh_model(), data, None, settings(steps=50))


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"equivalence": equivalence, "fail": fail}[sys.argv[1]](Path(sys.argv[2]))
