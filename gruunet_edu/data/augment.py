"""Data augmentation applied identically to an image and its target.

Geometric transforms move image and target together; intensity transforms touch the image only:

- flips (vertical, horizontal) and 90-degree rotations: exact, no interpolation (a 90- or
  270-degree rotation only for square arrays, so shapes never change);
- a small random affine map (rotation, isotropic scale, shear) and/or an elastic deformation
  (Simard et al., ICDAR 2003: a random displacement field, Gaussian-smoothed with `elastic_sigma`
  and scaled to `elastic_alpha` pixels). Both are folded into one sampling grid

      x_in = A (x_out - c) + c + d(x_out)

  that is applied to every array once: the image with linear interpolation, integer targets with
  nearest-neighbour interpolation, so labels stay integers and never blend. Both use mirror
  padding, so image content and target agree up to the border;
- intensity (image only), robust to a few very bright objects: the reference range [lo, hi] is
  the image's 1st and 99.8th percentile (not its min and max, which one saturated speck sets).
  With u = (x - lo) / (hi - lo),

      u' = u^gamma            for 0 <= u <= 1   (gamma: dim nuclei brighter or dimmer)
      u' = 1 + gamma (u - 1)  for u > 1         (continued linearly: bright objects stay on top)
      x' = lo + (hi - lo) (c u' + offset)

  with the contrast c and gamma log-uniform. A contrast c < 1 is what percentile normalisation
  does to an image where a few saturated nuclei set the 99.8th percentile: every other nucleus
  lands far below 1 (in the 2018 Data Science Bowl images dim nuclei sit only about 0.13 above the
  background); c > 1 is the opposite (no bright object: the brightest nuclei clip at 1). The
  sample data already holds dim nuclei next to saturated ones, so the ranges stay moderate: with
  c in (0.35, 1.3) and gamma in (0.6, 1.6) the tiny preset after 140 steps scored AP50 0.70 / 0.57
  (synthetic / shift test set), with (0.55, 1.25) and (0.75, 1.35) 0.76 / 0.58, with the former
  (0.8, 1.25) and (0.8, 1.25) 0.71 / 0.60 (one seed, 8 + 8 test images, the former sample data and
  140-step recipe; bench_train.py).

- own range (image only): with probability `own_range_p` a crop is renormalised on its own
  percentile range, ``(x - p_lo(crop)) / (p_hi(crop) - p_lo(crop))``, instead of its whole
  image's. That is what percentile normalisation does to a small image, or one with only a few
  dim nuclei: the background and its noise are stretched to a large part of [0, 1]. A model that
  never saw such crops calls the stretched noise nuclei (notebook 05's last test image, three dim
  nuclei in 128 px, shows it).

Randomness comes from one ``numpy.random.Generator``; an `Augmenter` made with the same seed gives
the same sequence of transforms. The dataset passes its own per-item generator instead, which keeps
loaders deterministic with any number of workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .normalize import percentile_normalize


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to draw and how strong (probabilities in [0, 1], lengths in px)."""

    flips: bool = True  # random vertical and horizontal flips (p = 0.5 each)
    rot90: bool = True  # random multiple of 90 degrees (of 180 only for non-square arrays)
    affine_p: float = 0.5  # probability of a small affine map
    rotation: float = 15.0  # max rotation of the affine map (degrees)
    scale: tuple[float, float] = (0.9, 1.1)  # range of the isotropic scale factor
    shear: float = 0.1  # max shear (fraction)
    elastic_p: float = 0.25  # probability of an elastic deformation
    elastic_alpha: float = 3.0  # typical displacement of the elastic field (px)
    elastic_sigma: float = 8.0  # smoothness of the elastic field (Gaussian sigma, px)
    intensity_p: float = 0.8  # probability of an intensity change (image only)
    intensity_scale: tuple[float, float] = (0.55, 1.25)  # contrast c (log-uniform)
    intensity_offset: tuple[float, float] = (-0.05, 0.05)  # additive offset (fraction of hi - lo)
    gamma: tuple[float, float] = (0.75, 1.35)  # gamma exponent (log-uniform)
    percentiles: tuple[float, float] = (1.0, 99.8)  # reference range [lo, hi] of the intensity
    own_range_p: float = 0.3  # probability of renormalising a crop on its own percentile range

    def __post_init__(self) -> None:
        for name in ("affine_p", "elastic_p", "intensity_p", "own_range_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1]")
        for name in ("scale", "intensity_scale", "intensity_offset", "gamma"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"AugmentConfig.{name} must be (low, high), got {(lo, hi)}")
        if self.scale[0] <= 0 or self.gamma[0] <= 0 or self.intensity_scale[0] <= 0:
            raise ValueError(
                "AugmentConfig.scale, .intensity_scale and .gamma must be positive, got "
                f"{self.scale}, {self.intensity_scale}, {self.gamma}"
            )
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError(
                f"AugmentConfig.percentiles must be 0 <= low < high <= 100, got {lo, hi}"
            )

    def replace(self, **changes: Any) -> AugmentConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def geometric(cls, **overrides: Any) -> AugmentConfig:
        """Geometric transforms only (no intensity change)."""
        return cls(**{"intensity_p": 0.0, "own_range_p": 0.0, **overrides})

    @classmethod
    def none(cls) -> AugmentConfig:
        """Identity: nothing is changed."""
        return cls(
            flips=False, rot90=False, affine_p=0.0, elastic_p=0.0, intensity_p=0.0, own_range_p=0.0
        )


def _sampling_grid(
    rng: np.random.Generator, shape: tuple[int, int], cfg: AugmentConfig
) -> np.ndarray | None:
    """Input coordinates (2, H, W) for every output pixel, or None when no warp is drawn."""
    use_affine = cfg.affine_p > 0 and rng.random() < cfg.affine_p
    use_elastic = cfg.elastic_p > 0 and rng.random() < cfg.elastic_p
    if not (use_affine or use_elastic):
        return None
    h, w = shape
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0], np.float32)
    yy, xx = np.meshgrid(
        np.arange(h, dtype=np.float32) - centre[0],
        np.arange(w, dtype=np.float32) - centre[1],
        indexing="ij",
    )
    coords = np.stack([yy, xx])  # (2, H, W), relative to the centre
    if use_affine:
        angle = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))
        zoom = rng.uniform(*cfg.scale)
        shear = rng.uniform(-cfg.shear, cfg.shear)
        c, s = np.cos(angle), np.sin(angle)
        # output -> input: rotate, shear, then divide by the zoom (zoom > 1 enlarges the content)
        matrix = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) / zoom
        coords = np.einsum("ij,jhw->ihw", matrix.astype(np.float32), coords)
    coords += centre[:, None, None]
    if use_elastic:
        noise = rng.standard_normal((2, h, w), dtype=np.float32)
        field = ndimage.gaussian_filter(noise, (0, cfg.elastic_sigma, cfg.elastic_sigma))
        field *= cfg.elastic_alpha / (field.std() + 1e-6)
        coords += field
    return coords


def _warp(array: np.ndarray, coords: np.ndarray, order: int) -> np.ndarray:
    """Resample a (H, W) or (C, H, W) array at `coords` (2, H, W), mirror padding."""
    if array.ndim == 2:
        return ndimage.map_coordinates(array, coords, order=order, mode="mirror")
    return np.stack([_warp(channel, coords, order) for channel in array])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _intensity(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Gamma and contrast on the [lo, hi] percentile range, plus an offset (module docstring)."""
    gamma = np.float32(_log_uniform(rng, *cfg.gamma))
    contrast = np.float32(_log_uniform(rng, *cfg.intensity_scale))
    offset = np.float32(rng.uniform(*cfg.intensity_offset))
    lo, hi = (float(v) for v in np.percentile(image, cfg.percentiles))
    if not hi > lo:
        lo, hi = float(image.min()), float(image.max())
    span = np.float32(max(hi - lo, 1e-6))
    u = (image - np.float32(lo)) / span
    inside = np.clip(u, 0.0, 1.0)
    curved = np.where(u > 1.0, 1.0 + gamma * (u - 1.0), np.power(inside, gamma))
    curved = np.where(u < 0.0, u, curved)  # below lo (noise under the background): unchanged
    return (np.float32(lo) + span * (contrast * curved + offset)).astype(np.float32)


class Augmenter:
    """Random flips, 90-degree rotations, affine/elastic warps and intensity changes.

    ``augmenter(image, target)`` returns the augmented pair with the same shapes and dtypes:
    image (H, W) or (C, H, W) float, target (H, W) or (K, H, W), integer (labels or classes,
    warped with nearest neighbour) or float (e.g. weight maps, warped linearly). Intensity
    changes apply to the image only.

    Args:
        seed: seed of the augmenter's own generator (ignored when `rng` is given).
        config: an `AugmentConfig` (default ``AugmentConfig()``).
        rng: a ``numpy.random.Generator`` to draw from.
        **overrides: fields of the config to change, e.g. ``elastic_p=0``.
    """

    def __init__(
        self,
        seed: int | None = 0,
        config: AugmentConfig | None = None,
        rng: np.random.Generator | None = None,
        **overrides: Any,
    ) -> None:
        config = AugmentConfig() if config is None else config
        self.config = config.replace(**overrides) if overrides else config
        self.rng = rng if rng is not None else np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"Augmenter({self.config})"

    def __call__(
        self,
        image: np.ndarray,
        target: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment one (image, target) pair; `rng` overrides the augmenter's generator."""
        rng = self.rng if rng is None else rng
        cfg = self.config
        image = np.asarray(image)
        target = np.asarray(target)
        if image.ndim not in (2, 3) or target.ndim not in (2, 3):
            raise ValueError(
                f"expected image (H, W) or (C, H, W) and target (H, W) or (K, H, W), got "
                f"{image.shape} and {target.shape}"
            )
        if image.shape[-2:] != target.shape[-2:]:
            raise ValueError(f"image {image.shape} and target {target.shape} differ in (H, W)")
        image = image.astype(np.float32, copy=False)
        target_dtype = target.dtype
        integer_target = np.issubdtype(target_dtype, np.integer) or target_dtype.kind == "b"
        # flips and 90-degree rotations: exact permutations of the pixels
        if cfg.flips:
            for axis in (-2, -1):
                if rng.random() < 0.5:
                    image, target = np.flip(image, axis), np.flip(target, axis)
        if cfg.rot90:
            square = image.shape[-1] == image.shape[-2]
            k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
            image, target = np.rot90(image, k, (-2, -1)), np.rot90(target, k, (-2, -1))
        # affine and elastic warps: one sampling grid for image and target
        coords = _sampling_grid(rng, image.shape[-2:], cfg)
        if coords is not None:
            image = _warp(np.ascontiguousarray(image), coords, order=1)
            source = target.astype(np.uint8) if target_dtype.kind == "b" else target
            target = _warp(np.ascontiguousarray(source), coords, order=0 if integer_target else 1)
            target = target.astype(target_dtype, copy=False)
        if cfg.own_range_p > 0 and rng.random() < cfg.own_range_p:
            image = percentile_normalize(image, *cfg.percentiles)
        if cfg.intensity_p > 0 and rng.random() < cfg.intensity_p:
            image = _intensity(image, rng, cfg)
        image = np.ascontiguousarray(image, dtype=np.float32)
        target = np.ascontiguousarray(target)
        return image, target
