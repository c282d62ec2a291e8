"""Percentile normalisation of microscopy images.

    x' = (x - p_low) / (p_high - p_low + eps)

with p_low, p_high the `low`-th and `high`-th percentiles of the image (default 1 and 99.8, as in
CSBDeep/StarDist). Percentiles rather than min/max keep a few hot or saturated pixels from squashing
the useful range: up to (100 - high) % of the pixels may be saturated without moving p_high beyond
the brightest nuclei. Background lands near 0 and bright nuclei near 1; values outside [0, 1] are
kept unless `clip=True`.
"""

from __future__ import annotations

import numpy as np


def percentile_range(
    image: np.ndarray, low: float = 1.0, high: float = 99.8
) -> tuple[float, float]:
    """The `low`-th and `high`-th percentiles of an image (NaNs ignored), as two floats.

    Computing them once per image lets a dataset normalise random crops of it consistently:
    ``(crop - lo) / (hi - lo + eps)`` equals the crop of ``percentile_normalize(image)``.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    x = np.asarray(image, dtype=np.float32)
    if np.isnan(x).any():
        lo, hi = np.nanpercentile(x, [low, high])
    else:
        lo, hi = np.percentile(x, [low, high])
    return float(lo), float(hi)


def percentile_normalize(
    image: np.ndarray,
    low: float = 1.0,
    high: float = 99.8,
    eps: float = 1e-6,
    clip: bool = False,
    per_channel: bool = False,
) -> np.ndarray:
    """Map the `low`-th percentile to 0 and the `high`-th to 1; returns float32, same shape.

    Args:
        image: (H, W) or (C, H, W) array of any real dtype; NaNs are ignored for the percentiles.
        low, high: percentiles, 0 <= low < high <= 100.
        eps: added to the denominator, so a constant image gives zeros instead of a division by 0.
        clip: clip the result to [0, 1].
        per_channel: for (C, H, W), normalise every channel on its own percentiles.
    """
    x = np.asarray(image, dtype=np.float32)
    if per_channel and x.ndim == 3:
        return np.stack([percentile_normalize(c, low, high, eps, clip) for c in x])
    lo, hi = percentile_range(x, low, high)
    out = (x - np.float32(lo)) / np.float32(hi - lo + eps)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out.astype(np.float32, copy=False)
