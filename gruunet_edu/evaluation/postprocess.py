"""From the network's 3-class output to instance labels.

The network predicts, per pixel, probabilities for background, nucleus interior and nucleus
boundary. The boundary class is what separates touching nuclei, so instances are recovered as:

1. seeds from the interior class (``p_interior > interior_threshold``; pieces smaller than
   ``min_seed_size`` pixels dropped). Holes in an interior piece that lie inside the foreground
   (a nucleus whose centre the network calls "boundary", e.g. a dark nucleolus) are filled first:
   they would turn the piece into a ring with several distance maxima and split one nucleus into
   several. Thin slits (under 4 px across) stay open: they are seams between merged nuclei.
   With ``seeds="interior"`` every connected piece of the interior is one seed: touching
   nuclei give separate seeds when the network predicts the boundary (the seam) between them. A
   small network often predicts only part of that seam, and the two interiors stay joined by a
   neck; ``seeds="distance"`` (default) therefore takes as seeds the maxima of the
   (Gaussian-smoothed, ``seed_sigma``) distance d of every interior pixel to the interior's edge
   that stand out by at least

       h = max(seed_h, seed_h_rel * max_piece(d))

   (h-maxima, the classic distance-transform watershed), where d is first weighted by the
   network's own evidence for a seam,

       d' = d * (1 - p_boundary)^boundary_power

   so a line of raised boundary probability across a merged interior (a seam the network saw
   but did not call) lowers the landscape there and leaves one maximum on either side
   (``boundary_power=0``: plain distance; filled holes keep their plain distance).
   The defaults (``seed_h=0.5``, ``boundary_power=1``) suit networks trained on the widened
   contact boundary of :func:`~gruunet_edu.data.targets.three_class` (``contact_radius=3``):
   such a network calls the band between touching nuclei more readily, and with the former
   ``seed_h=0.25, boundary_power=2`` it over-split single nuclei (chosen on tuning images, not
   the test sets: ``benchmarks/bench_rescale.py --postprocess --seeds 0 1 2``).
   ``seed_h_rel > 0`` makes the test
   scale-free (a large, irregular nucleus keeps one seed) but also keeps touching nuclei joined
   by a wide neck together, which cost more than it gained on the synthetic test set
   (``benchmarks/bench_train.py`` measures it), so it is off (0) by default; filling the holes
   already keeps a nucleus with a hollow interior in one piece;
2. growth: a marker-controlled watershed (``skimage.segmentation.watershed``) grows each seed
   into the foreground (``p_interior + p_boundary > foreground_threshold``) over ``-p_interior``
   (interior seeds) or the negative distance (distance seeds), so the pixels between two nuclei
   are split along the valley between their seeds;
3. foreground regions without any seed (small nuclei predicted as boundary only) become objects
   of their own (``keep_unseeded``);
4. objects smaller than ``min_size`` pixels are removed and the labels renumbered 1..N (uint16).

Memory: the maps are float32 (the distance transform's float64 is converted at once), and images
with more than ``tile`` pixels on a side are processed tile by tile (:func:`instances_tiled`):
each tile plus an ``overlap`` of context on every side is post-processed on its own, and an
object is kept from the tile whose core holds its centre, so the peak memory is set by the tile,
not by the image (benchmarks/bench_postprocess.py: 8192 x 8192 px stays below 2 GB).

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
# Objects smaller than this (px) are dropped: the sample data's smallest nuclei (radius about
# 5 px) cover some 70 px, while specks of amplified noise in dim images cover 15-60 px. For images
# at another scale, `predict --diameter` resizes to the training scale first.
MIN_SIZE = 40


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


def _fill_holes(
    pieces: np.ndarray, foreground: np.ndarray, min_hole_width: float = 2.0
) -> np.ndarray:
    """Interior mask with the holes of every piece filled where they are foreground (bool).

    Piece by piece: a gap enclosed by two or more pieces (a seam between touching nuclei) is not
    a hole and stays open. Only holes at least ``2 * min_hole_width`` px across are filled (the
    largest distance from a hole pixel to the hole's edge is >= ``min_hole_width``): a thin slit
    inside one piece is the part of a seam the network did predict between two nuclei that it
    otherwise merged, and it is what splits them.
    """
    filled = pieces > 0
    for i, box in enumerate(ndi.find_objects(pieces), start=1):
        if box is None:
            continue
        piece = pieces[box] == i
        holes = ndi.binary_fill_holes(piece) & ~piece & foreground[box] & (pieces[box] == 0)
        if not holes.any():
            continue
        hole_ids, n = ndi.label(holes)
        width = ndi.maximum(ndi.distance_transform_edt(holes), hole_ids, np.arange(1, n + 1))
        wide = np.concatenate([[False], np.asarray(width) >= min_hole_width])
        filled[box] |= wide[hole_ids]
    return filled


def _seeds_and_landscape(
    interior: np.ndarray,  # (H, W) float32 p_interior
    boundary: np.ndarray,  # (H, W) float32 p_boundary
    foreground: np.ndarray,  # (H, W) bool
    interior_threshold: float,
    min_seed_size: int,
    seeds: str,
    seed_h: float,
    seed_h_rel: float,
    seed_sigma: float,
    fill_holes: bool = True,
    boundary_power: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Markers (int32 (H, W)) and the landscape (float32 (H, W)) the watershed floods."""
    pieces, _ = ndi.label((interior > interior_threshold) & foreground)
    pieces = remove_small_objects(pieces, min_seed_size)
    inner = pieces > 0
    filled = _fill_holes(pieces, foreground) if fill_holes else inner
    if seeds == "interior":
        if filled.sum() > inner.sum():
            pieces, _ = ndi.label(filled)
        return pieces.astype(np.int32, copy=False), -interior
    pieces, n = ndi.label(filled)
    distance = ndi.distance_transform_edt(filled).astype(np.float32)  # (H, W) px to the edge
    if boundary_power > 0:  # not in filled holes: they are interior by construction
        weight = np.clip(1.0 - boundary, 0.0, 1.0) ** np.float32(boundary_power)
        distance *= np.where(inner, weight, np.float32(1.0))
    if seed_sigma > 0:
        distance = ndi.gaussian_filter(distance, seed_sigma)
    if n == 0:
        return pieces.astype(np.int32, copy=False), -distance
    # h = max(seed_h, seed_h_rel * max_piece(d)): divide d in each piece by h / seed_h, then one
    # h-maxima transform with seed_h does every piece at its own h
    peak = np.asarray(ndi.maximum(distance, pieces, np.arange(1, n + 1)), np.float32)  # (n,)
    scale = np.concatenate([[1.0], np.maximum(1.0, seed_h_rel * peak / seed_h)]).astype(np.float32)
    scaled = distance / scale[pieces]
    peaks = h_maxima(scaled, seed_h).astype(bool) & filled
    markers, _ = ndi.label(peaks)
    return markers.astype(np.int32, copy=False), -distance


def _instances(
    probs: np.ndarray,  # (3, H, W) or (2, H, W) float32
    interior_threshold: float,
    foreground_threshold: float,
    min_size: int,
    min_seed_size: int,
    keep_unseeded: bool,
    seeds: str,
    seed_h: float,
    seed_h_rel: float,
    seed_sigma: float,
    fill_holes: bool = True,
    boundary_power: float = 0.0,
) -> np.ndarray:  # (H, W) int32, objects not yet renumbered
    foreground = (1.0 - probs[0]) > foreground_threshold  # (H, W)
    if probs.shape[0] == 2:
        labels, _ = ndi.label(foreground)
        return remove_small_objects(labels, min_size)
    markers, landscape = _seeds_and_landscape(
        probs[1],
        probs[2],
        foreground,
        interior_threshold,
        min_seed_size,
        seeds,
        seed_h,
        seed_h_rel,
        seed_sigma,
        fill_holes,
        boundary_power,
    )
    labels = watershed(landscape, markers=markers, mask=foreground).astype(np.int32, copy=False)
    if keep_unseeded:
        # Foreground islands that no seed reached (their own connected components).
        rest, n_rest = ndi.label(foreground & (labels == 0))
        if n_rest:
            offset = int(labels.max(initial=0))
            labels = np.where(rest > 0, rest + offset, labels)
    return remove_small_objects(labels, min_size)


def probabilities_to_instances(
    probs,  # (3, H, W) or (2, H, W)
    interior_threshold: float = 0.5,
    foreground_threshold: float = 0.5,
    min_size: int = MIN_SIZE,
    min_seed_size: int = 4,
    keep_unseeded: bool = True,
    seeds: str = "distance",
    seed_h: float = 0.5,
    seed_h_rel: float = 0.0,
    seed_sigma: float = 1.0,
    fill_holes: bool = True,
    boundary_power: float = 1.0,
    tile: int | None = 1024,
    overlap: int = 96,
    progress: bool | None = None,
) -> np.ndarray:  # (H, W) uint16
    """Instances from class probabilities: seeds in the interior, watershed into the foreground.

    ``probs`` is a softmax output (channels: background, interior, boundary). ``seeds`` is
    "distance" (distance-transform maxima of the interior, see the module docstring) or
    "interior" (connected pieces of the interior). Images with a side longer than ``tile``
    pixels (None: never) are processed tile by tile with ``overlap`` pixels of context, which
    must exceed the diameter of the largest nucleus; ``progress`` shows a bar over the tiles
    (None: for images of more than 4 tiles). ``fill_holes=False`` gives the former behaviour
    (for comparisons), and so does ``boundary_power=0`` (seeds from the plain distance). Returns
    consecutive uint16 labels (0 = background).
    """
    if seeds not in SEED_MODES:
        raise ValueError(f"seeds must be one of {SEED_MODES}, got {seeds!r}")
    if seed_h <= 0 or seed_h_rel < 0:
        raise ValueError(f"need seed_h > 0 and seed_h_rel >= 0, got {seed_h}, {seed_h_rel}")
    if boundary_power < 0:
        raise ValueError(f"need boundary_power >= 0, got {boundary_power}")
    probs = _as_probs(probs)
    options = dict(
        interior_threshold=interior_threshold,
        foreground_threshold=foreground_threshold,
        min_size=min_size,
        min_seed_size=min_seed_size,
        keep_unseeded=keep_unseeded,
        seeds=seeds,
        seed_h=seed_h,
        seed_h_rel=seed_h_rel,
        seed_sigma=seed_sigma,
        fill_holes=fill_holes,
        boundary_power=boundary_power,
    )
    if tile is not None and max(probs.shape[-2:]) > tile:
        return instances_tiled(probs, tile, overlap, progress, **options)
    return relabel(_instances(probs, **options))


def instances_tiled(
    probs: np.ndarray,  # (K, H, W) float32
    tile: int = 1024,
    overlap: int = 96,
    progress: bool | None = None,
    **options,
) -> np.ndarray:  # (H, W) uint16
    """:func:`probabilities_to_instances` of a large image, one ``tile x tile`` core at a time.

    The cores partition the image. Each core is post-processed with ``overlap`` pixels of
    context on every side (less at the image border); of the objects found there, those whose
    centre lies in the core are written to the output (pixels already claimed by a neighbouring
    tile's object are left to it), and renumbered consecutively as they are written. An object
    farther than ``overlap`` from its core's edge would be cut: choose ``overlap`` above the
    diameter of the largest nucleus.
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"need tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    _, height, width = probs.shape
    cores = [(y, x) for y in range(0, height, tile) for x in range(0, width, tile)]
    out = np.zeros((height, width), np.uint16)  # written directly: no int32 copy of the image
    count = 0
    limit = int(np.iinfo(np.uint16).max)
    if progress is None:
        progress = len(cores) > 4
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cores), desc=f"post-processing {height} x {width} px", unit="tile")
    for y0, x0 in cores:
        y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
        wy0, wx0 = max(y0 - overlap, 0), max(x0 - overlap, 0)
        wy1, wx1 = min(y1 + overlap, height), min(x1 + overlap, width)
        window = np.ascontiguousarray(probs[:, wy0:wy1, wx0:wx1], dtype=np.float32)
        labels = _instances(window, **options)  # (h, w) int32
        n = int(labels.max(initial=0))
        if n:
            # centre of every object (window coordinates) -> keep those inside the core
            area = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64)
            rows, cols = np.indices(labels.shape, dtype=np.int32)
            cy = np.bincount(labels.ravel(), rows.ravel(), n + 1) / np.maximum(area, 1) + wy0
            cx = np.bincount(labels.ravel(), cols.ravel(), n + 1) / np.maximum(area, 1) + wx0
            keep = (area > 0) & (cy >= y0) & (cy < y1) & (cx >= x0) & (cx < x1)
            keep[0] = False
            if count + int(keep.sum()) > limit:
                raise ValueError(f"more than {limit} objects do not fit into uint16 labels")
            lut = np.zeros(n + 1, np.uint16)
            lut[keep] = np.arange(count + 1, count + 1 + int(keep.sum()), dtype=np.uint16)
            count += int(keep.sum())
            new = lut[labels]
            target = out[wy0:wy1, wx0:wx1]  # view
            free = (target == 0) & (new > 0)
            target[free] = new[free]
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    # objects can lose pixels to a neighbour's version of them: renumber only if one vanished
    present = np.bincount(out.ravel(), minlength=count + 1) > 0
    if not present[1:].all():
        kept = np.flatnonzero(present[1:]) + 1
        lut = np.zeros(count + 1, np.uint16)
        lut[kept] = np.arange(1, kept.size + 1, dtype=np.uint16)
        return lut[out]
    return out


def logits_to_instances(logits, **kwargs) -> np.ndarray:  # (H, W) uint16
    """Softmax over the class axis of ``logits`` (K, H, W) or (1, K, H, W), then
    :func:`probabilities_to_instances` with the same keyword arguments."""
    if not isinstance(logits, torch.Tensor):
        logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    dim = 1 if logits.ndim == 4 else 0
    probs = torch.softmax(logits.detach().float(), dim=dim)
    return probabilities_to_instances(probs, **kwargs)
