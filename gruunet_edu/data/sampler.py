"""The seeded batch sampler: which items (and which random crop of each) make up every batch.

Pass ``p`` over the data (a *pass* visits every item once) is the permutation drawn from a
generator seeded by ``(seed, p)``, together with one *draw* number per item that seeds its random
crop and augmentation (see :class:`~gruunet_edu.data.dataset.NucleiDataset`). So the batch of any
optimisation step is known without replaying the earlier ones: a resumed run sees the same batches
as an uninterrupted one, and the batches do not depend on the number of DataLoader workers.

Data-parallel training splits every *global* batch of ``batch_size`` items into ``world_size``
equal shares, share ``rank`` going to process ``rank``: the processes together see exactly the
crops a single process sees with the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class StepBatchSampler(Sampler):
    """Index batches for optimisation steps ``start .. total - 1`` (or pass after pass).

    Args:
        n: number of items in the dataset.
        batch_size: items per *global* batch (all processes together).
        seed: seeds the order and the draw numbers of every pass.
        start, total: the steps to yield. ``total=None``: every ``iter()`` yields the next pass
            (the batches of one pass, the last one partial unless ``drop_last``).
        draws: yield ``(index, draw)`` pairs (for a ``NucleiDataset``) instead of indices.
        shuffle: False keeps the items in order (draw numbers are still drawn).
        rank, world_size: this process's share of each global batch (data-parallel training).
        drop_last: in pass mode, drop the partial last batch of a pass.

    With fewer items than ``batch_size`` a batch repeats items; the r-th copy of an item gets
    draw + r, so it is another crop.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        start: int = 0,
        total: int | None = None,
        draws: bool = False,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if n < 1:
            raise ValueError("the data set is empty: no batches to sample")
        if batch_size < 1 or batch_size % world_size:
            raise ValueError(
                f"the global batch size ({batch_size}) must be a positive multiple of the number "
                f"of processes ({world_size})"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.start, self.total, self.draws, self.shuffle = int(start), total, draws, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.per_pass = max(1, self.n // self.batch_size)  # full batches per pass
        self.passes_done = 0  # pass mode: the pass the next iter() yields

    def __len__(self) -> int:
        if self.total is not None:
            return max(0, self.total - self.start)
        return (
            self.per_pass
            if (self.drop_last or self.n % self.batch_size == 0)
            else (self.per_pass + 1)
        )

    def _pass(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Order and draw numbers of pass ``p``."""
        rng = np.random.default_rng((self.seed, p))
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        return order, rng.integers(0, 2**62, self.n)

    def _batch(self, order: np.ndarray, draw: np.ndarray, pos: np.ndarray) -> list:
        share = len(pos) // self.world_size  # this process's part of the global batch
        pos = pos[self.rank * share : (self.rank + 1) * share] if self.world_size > 1 else pos
        batch = [(int(order[j % self.n]), int(draw[j % self.n]) + int(j // self.n)) for j in pos]
        return batch if self.draws else [index for index, _ in batch]

    def _positions(self, k: int) -> np.ndarray:
        if self.n < self.batch_size:  # tiny data sets: sample with repetition
            return np.arange(self.batch_size)
        return np.arange(k * self.batch_size, (k + 1) * self.batch_size)

    def __iter__(self) -> Iterator[list]:
        if self.total is None:
            yield from self._one_pass()
            return
        current, order, draw = -1, None, None
        for step in range(self.start, self.total):
            p, k = divmod(step, self.per_pass)
            if p != current:
                (order, draw), current = self._pass(p), p
            yield self._batch(order, draw, self._positions(k))

    def _one_pass(self) -> Iterator[list]:
        order, draw = self._pass(self.passes_done)
        self.passes_done += 1
        for k in range(self.per_pass):
            yield self._batch(order, draw, self._positions(k))
        rest = self.n - self.per_pass * self.batch_size
        if rest > 0 and not self.drop_last and self.n >= self.batch_size:
            yield self._batch(order, draw, np.arange(self.n - rest, self.n))
