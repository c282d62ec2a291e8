"""From the network's 3-class output to instance labels.

The network predicts, per pixel, probabilities for background, nucleus interior and nucleus
boundary. The boundary class is what separates touching nuclei, so instances are recovered as:

1. seeds from the interior class (``p_interior > interior_threshold``; pieces smaller than
   ``min_seed_size`` pixels dropped). With ``seeds="interior"`` every connected piece of the
   interior is one seed: touching nuclei give separate seeds when the network predicts the
   boundary between them. A small network often predicts only part of that boundary, and the two
   interiors stay joined by a neck; ``seeds="distance"`` (default) therefore takes as seeds the
   maxima of the (Gaussian-smoothed, ``seed_sigma``) distance of every interior pixel to the
   interior's edge that stand out by at least ``seed_h`` pixels (h-maxima): one seed per convex
   bulge, the classic distance-transform watershed, which splits merged pairs;
2. growth: a marker-controlled watershed (``skimage.segmentation.watershed``) grows each seed
   into the foreground (``p_interior + p_boundary > foreground_threshold``) over ``-p_interior``
   (interior seeds) or the negative distance (distance seeds), so the pixels between two nuclei
   are split along the valley between their seeds;
3. foreground regions without any seed (small nuclei predicted as boundary only) become objects
   of their own (``keep_unseeded``);
4. objects smaller than ``min_size`` pixels are removed and the labels renumbered 1..N (uint16).

A 2-class output (background / foreground) has no boundary class: its instances are the connected
components of the foreground.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

SEED_MODES = ("distance", "interior")


def _as_probs(probs) -> np.ndarray:
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 4 and probs.shape[0] == 1:
        probs = probs[0]
    if probs.ndim != 3 or probs.shape[0] not in (2, 3):
        raise ValueError(
            f"expected class probabilities of shape (3, H, W) or (2, H, W), got {probs.shape}"
        )
    return probs


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects with fewer than ``min_size`` pixels to background (returns a copy)."""
    labels = np.asarray(labels)
    if min_size <= 1 or labels.max(initial=0) == 0:
        return labels.copy()
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber objects 1..N in order of first label value; uint16 (raises if N > 65535)."""
    out, _, _ = relabel_sequential(np.asarray(labels).astype(np.int64, copy=False))
    if out.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"{out.max()} objects do not fit into uint16 labels")
    return out.astype(np.uint16)


def probabilities_to_instances(
    probs,  # (3, H, W) or (2, H, W)
    interior_threshold: float = 0.5,
    foreground_threshold: float = 0.5,
    min_size: int = 16,
    min_seed_size: int = 4,
    keep_unseeded: bool = True,
    seeds: str = "distance",
    seed_h: float = 0.25,
    seed_sigma: float = 1.0,
) -> np.ndarray:  # (H, W) uint16
    """Instances from class probabilities: seeds in the interior, watershed into the foreground.

    ``probs`` is a softmax output (channels: background, interior, boundary). ``seeds`` is
    "distance" (distance-transform maxima of the interior, see the module docstring) or
    "interior" (connected pieces of the interior). Returns consecutive uint16 labels
    (0 = background).
    """
    if seeds not in SEED_MODES:
        raise ValueError(f"seeds must be one of {SEED_MODES}, got {seeds!r}")
    probs = _as_probs(probs)
    foreground = (1.0 - probs[0]) > foreground_threshold  # (H, W)
    if probs.shape[0] == 2:
        labels, _ = ndi.label(foreground)
        return relabel(remove_small_objects(labels, min_size))

    interior = probs[1]  # (H, W)
    pieces, _ = ndi.label((interior > interior_threshold) & foreground)
    pieces = remove_small_objects(pieces, min_seed_size)
    if seeds == "interior":
        markers, landscape = pieces, -interior
    else:
        inner = pieces > 0
        distance = ndi.distance_transform_edt(inner)  # (H, W) px to the interior's edge
        if seed_sigma > 0:
            distance = ndi.gaussian_filter(distance, seed_sigma)
        peaks = h_maxima(distance, seed_h).astype(bool) & inner if inner.any() else inner
        markers, _ = ndi.label(peaks)
        landscape = -distance
    labels = watershed(landscape, markers=markers, mask=foreground)
    if keep_unseeded:
        # Foreground islands that no seed reached (their own connected components).
        rest, n_rest = ndi.label(foreground & (labels == 0))
        if n_rest:
            offset = int(labels.max(initial=0))
            labels = np.where(rest > 0, rest + offset, labels)
    return relabel(remove_small_objects(labels, min_size))


def logits_to_instances(logits, **kwargs) -> np.ndarray:  # (H, W) uint16
    """Softmax over the class axis of ``logits`` (K, H, W) or (1, K, H, W), then
    :func:`probabilities_to_instances` with the same keyword arguments."""
    if not isinstance(logits, torch.Tensor):
        logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    dim = 1 if logits.ndim == 4 else 0
    probs = torch.softmax(logits.detach().float(), dim=dim)
    return probabilities_to_instances(probs, **kwargs)
