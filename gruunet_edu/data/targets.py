"""Training targets from instance labels: foreground, three classes, boundary weights.

A network that predicts only foreground merges touching nuclei into one blob. The three-class
target (Caicedo et al., "Evaluation of deep learning strategies for nucleus segmentation in
fluorescence images", Cytometry A 2019) adds a boundary class: every nucleus pixel that has a
4-neighbour with another label (another nucleus or background) is a boundary pixel. Then the
interior pixels of two different nuclei are never 4- or 8-adjacent, so labelling the predicted
interior gives one seed per nucleus even where nuclei touch.

That two-pixel gap is all a network has to reproduce between two pressed nuclei, and a small one
often misses part of it. The training target therefore widens the boundary where nuclei touch
(``contact_radius``, default ``CONTACT_RADIUS`` in the datasets): every nucleus pixel within r px
(Euclidean) of a pixel of *another* nucleus is boundary too,

    boundary(x) = inner_boundary(x)  or  min_{y: 0 < L(y) != L(x)} |x - y| <= r,

so every interior pixel lies more than r px from any other nucleus: across a contact line the
interiors of two touching nuclei are about 2r px apart, while the outline towards the
background stays one pixel wide. A small nucleus squeezed between others would lose its whole
interior (or see it cut in two) and could not be grown back: such a nucleus keeps the one-pixel
rim (rare in the sample data). Post-processing grows the seeds back over the
whole foreground, so the instances keep their full size. On the sample data (nuclei about 19 px
across) r = 3 px is the default; ``benchmarks/bench_train.py --target former`` trains with r = 0
for comparison.

The optional weight map follows U-Net (Ronneberger et al., MICCAI 2015, eq. 2):

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

with d1, d2 the distances to the nearest and second-nearest nucleus (0 inside a nucleus), so the
thin gaps and boundaries between touching nuclei weigh most. Here w_c = 1 (no class balancing).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BACKGROUND = 0  # three-class target: background
INTERIOR = 1  # three-class target: inside a nucleus
BOUNDARY = 2  # three-class target: nucleus pixel touching another label or the background
TARGET_KINDS = ("three_class", "foreground", "labels")
CONTACT_RADIUS = 3  # px: the training target's boundary band where two nuclei touch


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2D (H, W) array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    return labels


def foreground(labels: np.ndarray) -> np.ndarray:
    """Foreground mask: 1 where any nucleus is, 0 elsewhere. uint8 (H, W)."""
    return (_check_labels(labels) > 0).astype(np.uint8)


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Nucleus pixels with a 4-neighbour of another label (bool (H, W)).

    Same as ``skimage.segmentation.find_boundaries(labels, mode="inner")`` (4-connectivity, the
    image border is not a boundary), with four array comparisons instead of morphology.
    """
    labels = _check_labels(labels)
    edge = np.zeros(labels.shape, bool)
    vertical = labels[1:, :] != labels[:-1, :]  # (H-1, W): pixel differs from the one below
    horizontal = labels[:, 1:] != labels[:, :-1]  # (H, W-1): differs from the right neighbour
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels > 0)


def contacts(labels: np.ndarray, radius: int) -> np.ndarray:
    """Nucleus pixels within ``radius`` px (Euclidean) of a pixel of another nucleus (bool (H, W)).

    A maximum and a minimum filter over a disk: a pixel of label L is near another nucleus when
    the largest label in the disk exceeds L or the smallest non-zero one is below it.
    """
    labels = _check_labels(labels)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0:
        return np.zeros(labels.shape, bool)
    lab = labels.astype(np.int64)
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = x * x + y * y <= radius * radius  # (2r+1, 2r+1)
    top = np.iinfo(np.int64).max  # stands for background in the minimum filter
    largest = ndimage.maximum_filter(lab, footprint=disk, mode="constant", cval=0)
    others = np.where(lab > 0, lab, top)
    smallest = ndimage.minimum_filter(others, footprint=disk, mode="constant", cval=top)
    return (lab > 0) & ((largest != lab) | (smallest != lab))


def three_class(labels: np.ndarray, contact_radius: int = 0) -> np.ndarray:
    """Three-class target: 0 background, 1 interior, 2 boundary. uint8 (H, W).

    Boundary = `inner_boundaries`: a one-pixel rim inside every nucleus, which also runs on both
    sides of the line where two nuclei touch, so their interiors never touch. With
    ``contact_radius`` r > 0 the pixels within r px of another nucleus (`contacts`) are boundary
    too: a band of about 2r px between touching nuclei (a nucleus the band would leave without an
    interior, or with its interior in pieces, keeps the one-pixel rim).
    """
    labels = _check_labels(labels)
    target = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    target[inner_boundaries(labels)] = BOUNDARY
    if contact_radius:
        target = _widen_contacts(labels, target, contact_radius)
    return target


def _widen_contacts(labels: np.ndarray, target: np.ndarray, radius: int) -> np.ndarray:
    """`target` with the `contacts` band as boundary, except for the nuclei it would leave with
    no interior or with the interior in pieces (small nuclei squeezed between others): those keep
    the one-pixel rim, so the band never takes a nucleus's seed away or cuts it in two."""
    wide = target.copy()
    wide[contacts(labels, radius)] = BOUNDARY
    pieces, _ = ndimage.label(wide == INTERIOR)  # 4-connected, as post-processing labels them
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        own = labels[box] == i
        seeds = np.unique(pieces[box][own & (wide[box] == INTERIOR)])
        if seeds.size != 1:
            wide[box][own] = target[box][own]
    return wide


def boundary_weights(
    labels: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
) -> np.ndarray:
    """U-Net weight map w = 1 + w0 exp(-(d1 + d2)^2 / (2 sigma^2)). float32 (H, W).

    d1, d2 are the Euclidean distances to the nearest and second-nearest nucleus (0 inside it).
    Each nucleus's distance map is computed only in its bounding box grown by 4 sigma (further
    away the term is below w0 * exp(-8)), so the cost grows with the nuclei, not with N x image.
    With fewer than two nuclei the weight is 1 everywhere.
    """
    labels = _check_labels(labels)
    h, w = labels.shape
    margin = int(np.ceil(4 * sigma))
    d1 = np.full(labels.shape, np.inf, np.float32)
    d2 = np.full(labels.shape, np.inf, np.float32)
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        y0, y1 = max(sl[0].start - margin, 0), min(sl[0].stop + margin, h)
        x0, x1 = max(sl[1].start - margin, 0), min(sl[1].stop + margin, w)
        d = ndimage.distance_transform_edt(labels[y0:y1, x0:x1] != i + 1).astype(np.float32)
        b1, b2 = d1[y0:y1, x0:x1], d2[y0:y1, x0:x1]  # views: updated in place
        np.minimum(b2, np.maximum(b1, d), out=b2)
        np.minimum(b1, d, out=b1)
    weights = 1.0 + w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))
    return weights.astype(np.float32)


def make_target(
    labels: np.ndarray, kind: str = "three_class", contact_radius: int = 0
) -> np.ndarray:
    """The target named `kind` ("three_class", "foreground" or "labels") for instance labels
    (``contact_radius``: see `three_class`)."""
    if kind == "three_class":
        return three_class(labels, contact_radius)
    if kind == "foreground":
        return foreground(labels)
    if kind == "labels":
        return _check_labels(labels)
    raise ValueError(f"unknown target {kind!r}; choose one of {TARGET_KINDS}")
