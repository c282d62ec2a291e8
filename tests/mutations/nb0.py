"""Notebook 00: ``normalize(image, low=1.0, high=99.8, eps=1e-6)`` and ``three_class(labels)``."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import find_boundaries

# ------------------------------------------------------------------------------ normalize


def minmax(image, low=1.0, high=99.8, eps=1e-6):
    return ((image - image.min()) / (image.max() - image.min() + eps)).astype(np.float32)


def fixed_percentiles(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [1, 99.8])  # the notebook's values, not the arguments
    return ((image - lo) / (hi - lo + eps)).astype(np.float32)


def fixed_high(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, 99.8])
    return ((image - lo) / (hi - lo + eps)).astype(np.float32)


def clipped(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return np.clip((image - lo) / (hi - lo + eps), 0, 1).astype(np.float32)


def swapped(image, low=1.0, high=99.8, eps=1e-6):
    hi, lo = np.percentile(image, [low, high])
    return ((image - lo) / (hi - lo + eps)).astype(np.float32)


def no_shift(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return (image / (hi - lo + eps)).astype(np.float32)


def no_eps(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return ((image - lo) / (hi - lo)).astype(np.float32)


def in_place(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    image -= lo.astype(image.dtype)
    image /= np.asarray(hi - lo + eps).astype(image.dtype)
    return image.astype(np.float32)


def float64(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return (image - lo) / (hi - lo + eps)


def per_column(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high], axis=0)
    return ((image - lo) / (hi - lo + eps)).astype(np.float32)


def zscore(image, low=1.0, high=99.8, eps=1e-6):
    return ((image - image.mean()) / (image.std() + eps)).astype(np.float32)


def as_torch(image, low=1.0, high=99.8, eps=1e-6):
    x = torch.as_tensor(image.astype(np.float32))
    lo, hi = torch.quantile(x.flatten(), torch.tensor([low / 100, high / 100]))
    return (x - lo) / (hi - lo + eps)


def fixed_eps(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return ((image - lo) / (hi - lo + 1e-6)).astype(np.float32)


def as_list(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return ((image - lo) / (hi - lo + eps)).astype(np.float32).tolist()


def uint8_result(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high])
    return ((image - lo) / (hi - lo + eps) * 255).astype(np.uint8)


def max_as_high(image, low=1.0, high=99.8, eps=1e-6):
    lo = np.percentile(image, low)
    return ((image - lo) / (image.max() - lo + eps)).astype(np.float32)


def percent_as_fraction(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low / 100, high / 100])
    return ((image - lo) / (hi - lo + eps)).astype(np.float32)


def nearest_percentile(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.percentile(image, [low, high], method="nearest")
    return ((image - lo) / (hi - lo + eps)).astype(np.float32)


def quantile_fraction(image, low=1.0, high=99.8, eps=1e-6):
    lo, hi = np.quantile(image, [low / 100, high / 100])
    return ((image.astype(np.float32) - lo) / (hi - lo + eps)).astype(np.float32)


def two_calls(image, low=1.0, high=99.8, eps=1e-6):
    x = np.asarray(image, dtype=np.float32)
    p_low = np.percentile(x, low)
    p_high = np.percentile(x, high)
    out = x - p_low
    return (out / (p_high - p_low + eps)).astype(np.float32)


# ------------------------------------------------------------------------------ three_class


def _target(labels, boundary):
    t = (labels > 0).astype(np.uint8)
    t[boundary] = 2
    return t


def erosion(labels):
    fg = labels > 0
    return _target(labels, fg & ~ndimage.binary_erosion(fg, border_value=1))


def erosion_border(labels):
    fg = labels > 0
    return _target(labels, fg & ~ndimage.binary_erosion(fg))


def outer(labels):
    fg = labels > 0
    return _target(labels, ~fg & ndimage.binary_dilation(fg))


def eight(labels):
    return _target(labels, find_boundaries(labels, mode="inner", connectivity=2))


def thick(labels):
    return _target(labels, find_boundaries(labels, mode="thick"))


def classes_swapped(labels):
    t = np.where(labels > 0, 2, 0).astype(np.uint8)
    t[find_boundaries(labels, mode="inner")] = 1
    return t


def one_side(labels):
    edge = np.zeros(labels.shape, bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    return _target(labels, edge & (labels > 0))


def rolled(labels):
    edge = np.zeros(labels.shape, bool)
    for shift, axis in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
        edge |= np.roll(labels, shift, axis=axis) != labels
    return _target(labels, edge & (labels > 0))


def overwrites_labels(labels):
    edge = find_boundaries(labels, mode="inner")
    labels[labels > 0] = 1
    labels[edge] = 2
    return labels.astype(np.uint8)


def int64_result(labels):
    return np.where(find_boundaries(labels, mode="inner"), 2, np.where(labels > 0, 1, 0))


def eight_bit_labels(labels):
    small = labels.astype(np.uint8)  # fine for fewer than 256 nuclei
    return _target(labels, find_boundaries(small, mode="inner"))


def min_is_background(labels):
    fg = labels > labels.min()
    t = fg.astype(np.uint8)
    t[find_boundaries(labels, mode="inner") & fg] = 2
    return t


def boundary_only(labels):
    return (find_boundaries(labels, mode="inner") * 2).astype(np.uint8)


def bool_list(labels):
    return _target(labels, find_boundaries(labels, mode="inner")).tolist()


def contacts_only(labels):
    return _target(labels, find_boundaries(labels, mode="outer") & (labels > 0))


def skimage_inner(labels):
    return _target(labels, find_boundaries(labels, mode="inner"))


def padded_compare(labels):
    p = np.pad(labels, 1, mode="edge")
    c = p[1:-1, 1:-1]
    edge = (p[:-2, 1:-1] != c) | (p[2:, 1:-1] != c) | (p[1:-1, :-2] != c) | (p[1:-1, 2:] != c)
    out = np.zeros(labels.shape, np.uint8)
    out[labels > 0] = 1
    out[edge & (labels > 0)] = 2
    return out


WRONG = {
    "normalize": [
        ("min-max scaling", minmax, "minimum and maximum"),
        ("fixed percentiles", fixed_percentiles, "low and high arguments"),
        ("fixed high percentile", fixed_high, "high argument"),
        ("clipped", clipped, "clipped"),
        ("swapped percentiles", swapped, "percentiles are swapped"),
        ("no shift", no_shift, "subtract the low percentile"),
        ("no eps", no_eps, "eps"),
        ("in place", in_place, "changed its input"),
        ("float64 result", float64, "float32"),
        ("percentiles per column", per_column, "whole image"),
        ("z-score", zscore, "mean and standard deviation"),
        ("torch tensor", as_torch, "NumPy array"),
        ("fixed eps", fixed_eps, "eps argument"),
        ("a list", as_list, "returned a list"),
        ("uint8 result", uint8_result, "float32"),
        ("maximum as p_high", max_as_high, "maximum as p_high"),
        ("percentages as fractions", percent_as_fraction, "percentages from 0 to 100"),
        ("nearest-pixel percentiles", nearest_percentile, "method='nearest'"),
    ],
    "three_class": [
        ("foreground erosion", erosion, "not the foreground mask"),
        ("erosion marks the image border", erosion_border, "image border"),
        ("outer boundary", outer, "outside the nuclei"),
        ("8 neighbours", eight, "8 neighbours"),
        ("thick boundary", thick, "outside the nuclei"),
        ("classes swapped", classes_swapped, "classes 1 and 2 are swapped"),
        ("one side only", one_side, "both of its pixels"),
        ("np.roll wraps around", rolled, "wraps around"),
        ("overwrites labels", overwrites_labels, "changed its input"),
        ("int64 result", int64_result, "uint8"),
        ("labels cast to uint8", eight_bit_labels, "above 255"),
        ("minimum is background", min_is_background, "without background"),
        ("boundary only", boundary_only, "interior"),
        ("a list", bool_list, "returned a list"),
        ("only where nuclei touch", contacts_only, "next to the background should be boundary"),
    ],
}

RIGHT = {
    "normalize": [("np.quantile", quantile_fraction), ("two percentile calls", two_calls)],
    "three_class": [("skimage inner", skimage_inner), ("padded comparison", padded_compare)],
}
