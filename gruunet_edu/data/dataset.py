"""Torch datasets of nuclei images and a deterministic DataLoader helper.

An item is ``(image, target)``: image float32 (C, H, W), percentile-normalised (1st percentile -> 0,
99.8th -> 1, computed on the whole image so all crops of it agree); target int64 (H, W), by default
the three-class map (0 background, 1 interior, 2 boundary) computed *after* cropping and
augmenting the instance labels, so the outline is always one pixel wide, and where nuclei touch
the boundary widens to ``contact_radius`` px on either side (``targets.CONTACT_RADIUS``; 0: the
one-pixel textbook target of notebook 00). With ``weights=True`` an item is
``(image, target, weights)``.

Randomness (crop position, augmentation) is drawn from a generator seeded by
``(dataset seed, index, draw)``: ``dataset[i]`` always gives the same item, and `make_loader` gives
every item of every pass its own ``draw`` number from the loader's seed, in the main process. So a
loader with the same seed yields the same batches with 0, 2 or any number of workers, and each
pass sees new crops and augmentations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .augment import AugmentConfig, Augmenter
from .normalize import percentile_range
from .readers import Sample
from .sampler import StepBatchSampler
from .synthetic import SyntheticConfig, make_nuclei
from .targets import CONTACT_RADIUS, TARGET_KINDS, boundary_weights, make_target

SPLITS = {"train": 0, "val": 1, "test": 2, "shift": 3}  # seed streams: splits never share images
_NORM_EPS = 1e-6


def _split_id(split: str | int) -> int:
    if isinstance(split, int):
        return split
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {tuple(SPLITS)} or an int")
    return SPLITS[split]


def synthetic_samples(
    n: int,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    split: str | int = "train",
    config: SyntheticConfig | None = None,
    **overrides: Any,
) -> list[Sample]:
    """`n` synthetic samples; sample i is ``make_nuclei((seed, split_id, i))``.

    The splits "train", "val" and "test" draw from separate seed streams, so they never share an
    image, whatever `n`; the same (seed, split, i) always gives the same sample.
    """
    sid = _split_id(split)
    out = []
    for i in range(n):
        image, labels = make_nuclei((seed, sid, i), config, size=size, **overrides)
        out.append(Sample(image, labels, f"{split}_{i:03d}"))
    return out


def shift_samples(n: int, size: int | tuple[int, int] = 256, seed: int = 0) -> list[Sample]:
    """The shift test set: `n` images of ``SyntheticConfig.shift()`` (other parameter ranges than
    training; see there), alternately 8-bit and 16-bit camera counts, from their own seed stream.
    """
    base = SyntheticConfig.shift()
    out = []
    for i in range(n):
        config = base.replace(bit_depth=8 if i % 2 == 0 else 16)
        image, labels = make_nuclei((seed, SPLITS["shift"], i), config, size=size)
        out.append(Sample(image, labels, f"shift_{i:03d}"))
    return out


def synthetic_test_sets(
    n: int = 8, size: int | tuple[int, int] = 256, seed: int = 0
) -> dict[str, list[Sample]]:
    """The two held-out synthetic test sets: ``{"synthetic": ..., "shift": ...}``.

    "synthetic" is the "test" split of the default config (the training data's task, less its
    alike touching neighbours: ``SyntheticConfig.training``), "shift" from other parameter
    ranges (:func:`shift_samples`), to measure generalisation.
    """
    return {
        "synthetic": synthetic_samples(n, size, seed, "test"),
        "shift": shift_samples(n, size, seed),
    }


def _crop_shape(crop: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if crop is None:
        return None
    h, w = (crop, crop) if isinstance(crop, int | np.integer) else crop
    if h < 1 or w < 1:
        raise ValueError(f"crop must be positive, got {crop}")
    return int(h), int(w)


def _make_augmenter(augment: bool | AugmentConfig | Augmenter | None) -> Augmenter | None:
    if augment is None or augment is False:
        return None
    if augment is True:
        return Augmenter(config=AugmentConfig())
    if isinstance(augment, AugmentConfig):
        return Augmenter(config=augment)
    if isinstance(augment, Augmenter):
        return augment
    raise TypeError(f"augment must be a bool, AugmentConfig or Augmenter, got {type(augment)}")


class NucleiDataset(Dataset):
    """Samples (image + instance labels) as training items, with random crops and augmentation.

    Args:
        samples: a sequence of `Sample` (from a reader or `synthetic_samples`).
        crop: crop size (int or (h, w)); None = whole images. Images smaller than the crop are
            padded with zeros (the normalised background level) and background labels.
        augment: False, True (``AugmentConfig()``), an `AugmentConfig` or an `Augmenter`.
        target: "three_class" (default), "foreground" or "labels" (instance ids).
        weights: also return the U-Net boundary weight map (float32 (H, W)).
        seed: seed of the crops and augmentations.
        length: number of items (default ``len(samples)``); item i uses sample ``i % len(samples)``,
            so a few large images can give many random crops per epoch.
        percentiles: (low, high) percentiles of the normalisation.
        contact_radius: width (px) of the boundary band on either side of the line where two
            nuclei touch, for the "three_class" target (see ``targets.three_class``).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        crop: int | tuple[int, int] | None = None,
        augment: bool | AugmentConfig | Augmenter = False,
        target: str = "three_class",
        weights: bool = False,
        seed: int = 0,
        length: int | None = None,
        percentiles: tuple[float, float] = (1.0, 99.8),
        contact_radius: int = CONTACT_RADIUS,
    ) -> None:
        if target not in TARGET_KINDS:
            raise ValueError(f"unknown target {target!r}; choose one of {TARGET_KINDS}")
        self.samples = list(samples)
        self.crop = _crop_shape(crop)
        self.augmenter = _make_augmenter(augment)
        self.target = target
        self.weights = weights
        self.seed = int(seed)
        self.percentiles = percentiles
        self.contact_radius = int(contact_radius)
        self._length = len(self.samples) if length is None else int(length)
        if self._length > 0 and not self._num_sources():
            raise ValueError("NucleiDataset needs at least one sample")
        self._ranges: dict[int, tuple[float, float]] = {}

    # --- sources: overridden by SyntheticNucleiDataset ---
    def _num_sources(self) -> int:
        return len(self.samples)

    def _source(self, j: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        """Image, labels and normalisation range (p_low, p_high) of source sample j."""
        sample = self.samples[j]
        if j not in self._ranges:
            self._ranges[j] = percentile_range(sample.image, *self.percentiles)
        return np.asarray(sample.image), np.asarray(sample.labels), self._ranges[j]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, ...]:
        if isinstance(key, tuple):  # (index, draw) from make_loader's sampler
            index, draw = int(key[0]), int(key[1])
            rng = np.random.default_rng([self.seed, index, draw])
        else:
            index = int(key)
            if index < 0:
                index += len(self)
            rng = np.random.default_rng([self.seed, index])
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        image, labels, (lo, hi) = self._source(index % self._num_sources())
        if labels.ndim != 2 or image.shape[-2:] != labels.shape:
            raise ValueError(f"sample {index}: image {image.shape} and labels {labels.shape}")
        image, labels = self._random_crop(image, labels, rng)  # (H, W) or (C, H, W)
        image = (image.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo + _NORM_EPS)
        image, labels = self._pad(image, labels)
        if self.augmenter is not None:
            image, labels = self.augmenter(image, labels, rng=rng)
        if image.ndim == 2:
            image = image[None]  # (1, H, W)
        target = make_target(labels, self.target, self.contact_radius).astype(np.int64)
        item = (torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(target))
        if self.weights:
            item = item + (torch.from_numpy(boundary_weights(labels)),)
        return item

    def _random_crop(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        if self.crop is None:
            return image, labels
        (ch, cw), (h, w) = self.crop, labels.shape
        y0 = int(rng.integers(h - ch + 1)) if h > ch else 0
        x0 = int(rng.integers(w - cw + 1)) if w > cw else 0
        window = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        return image[(..., *window)], labels[window]

    def _pad(self, image: np.ndarray, labels: np.ndarray):
        if self.crop is None or labels.shape == self.crop:
            return image, labels
        ph, pw = self.crop[0] - labels.shape[0], self.crop[1] - labels.shape[1]
        pad = ((0, max(ph, 0)), (0, max(pw, 0)))
        image = np.pad(image, ((0, 0),) * (image.ndim - 2) + pad)
        return image, np.pad(labels, pad)


class SyntheticNucleiDataset(NucleiDataset):
    """Synthetic nuclei generated deterministically: item i comes from image ``(seed, split, i)``.

    Without `pool`, every item is generated when it is requested (about 20 ms for 256 x 256 on
    one core). With ``pool=k``, k images are generated once, at construction, and item i is a
    random crop (and augmentation) of image ``i % k``: then an item costs only the crop,
    augmentation and target (about 1-2 ms for a 128 x 128 crop), for training loops that must not
    wait for data. The pooled images are the first k images of the un-pooled dataset.

    Args:
        n: number of items.
        size: side of the generated images (or (height, width)).
        seed: seed of the images, the crops and the augmentation.
        crop, augment, target, weights, percentiles, contact_radius: as in `NucleiDataset`.
        pool: number of images to pre-generate (None: generate every item on demand).
        split: "train", "val", "test" (separate image streams) or an int.
        config: a `SyntheticConfig`; **overrides change its fields (e.g. ``density=8``).
    """

    def __init__(
        self,
        n: int = 256,
        size: int | tuple[int, int] = 256,
        seed: int = 0,
        crop: int | tuple[int, int] | None = None,
        augment: bool | AugmentConfig | Augmenter = False,
        target: str = "three_class",
        weights: bool = False,
        pool: int | None = None,
        split: str | int = "train",
        config: SyntheticConfig | None = None,
        percentiles: tuple[float, float] = (1.0, 99.8),
        contact_radius: int = CONTACT_RADIUS,
        **overrides: Any,
    ) -> None:
        base = SyntheticConfig() if config is None else config
        self.config = base.replace(size=size, **overrides)
        self.split = split
        self._split = _split_id(split)
        self.pool = None if pool is None else int(pool)
        if self.pool is not None and self.pool < 1:
            raise ValueError(f"pool must be >= 1, got {pool}")
        samples = []
        if self.pool is not None:
            samples = synthetic_samples(self.pool, size, seed, split, self.config)
        super().__init__(
            samples, crop, augment, target, weights, seed, n, percentiles, contact_radius
        )
        for j, sample in enumerate(self.samples):  # pooled images: normalisation ranges now
            self._ranges[j] = percentile_range(sample.image, *percentiles)

    def _num_sources(self) -> int:
        return len(self) if self.pool is None else self.pool

    def _source(self, j: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        if self.pool is not None:
            return super()._source(j)
        image, labels = make_nuclei((self.seed, self._split, j), self.config)
        return image, labels, percentile_range(image, *self.percentiles)

    def sample(self, i: int) -> Sample:
        """The synthetic image and labels behind item i (uncropped, raw intensities)."""
        j = i % self._num_sources()
        image, labels, _ = self._source(j)
        return Sample(image, labels, f"{self.split}_{j:03d}")


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # workers prepare data; the main process keeps the cores for compute


def make_loader(
    dataset: Dataset,
    batch_size: int = 8,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    **kwargs: Any,
) -> DataLoader:
    """A DataLoader whose batches depend only on `seed` (not on `num_workers`).

    For a `NucleiDataset` the batches come from the `StepBatchSampler` the training loop uses
    (order and per-item augmentation draws from ``(seed, pass)``); iterating the loader again
    gives the next pass. Other datasets get a
    torch generator seeded with `seed`. Workers use one thread each and stay alive between
    epochs; extra keyword arguments go to ``DataLoader``.
    """
    if num_workers > 0:
        kwargs.setdefault("persistent_workers", True)
        kwargs.setdefault("worker_init_fn", _worker_init)
    if isinstance(dataset, NucleiDataset):
        sampler = StepBatchSampler(
            len(dataset), batch_size, seed, draws=True, shuffle=shuffle, drop_last=drop_last
        )
        return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        **kwargs,
    )
