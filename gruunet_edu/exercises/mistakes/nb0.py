"""Known mistakes of notebook 00: percentile normalisation and the three-class target.

Every table maps a mistake to (what the mistaken code returns, the message).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gruunet_edu.data.targets import inner_boundaries, three_class


def normalize_variants(
    image: np.ndarray, low: float, high: float, eps: float
) -> dict[str, tuple[np.ndarray, str]]:
    """The outputs of the usual mistakes for these arguments."""
    x = image.astype(np.float64)
    lo, hi = np.percentile(x, [low, high])
    mn, mx = x.min(), x.max()
    variants = {
        "minmax": (
            (x - mn) / (mx - mn + eps),
            "you used the minimum and maximum; use the low-th and high-th percentiles "
            "(np.percentile), so a few hot pixels cannot squash the nuclei's range",
        ),
        "clipped": (
            np.clip((x - lo) / (hi - lo + eps), 0, 1),
            "the result is clipped to [0, 1]; keep values outside (no np.clip here)",
        ),
        "swapped": (
            (x - hi) / (lo - hi + eps),
            "the percentiles are swapped: the low percentile must map to 0 and the high one to 1",
        ),
        "max_high": (
            (x - lo) / (mx - lo + eps),
            "you used the maximum as p_high; use the high-th percentile (np.percentile), so a "
            "few hot pixels cannot squash the nuclei's range",
        ),
        "min_low": (
            (x - mn) / (hi - mn + eps),
            "you used the minimum as p_low; use the low-th percentile (np.percentile)",
        ),
        "denominator": (
            (x - lo) / (hi + eps),
            "the denominator must be the range p_high - p_low (+ eps), not p_high alone",
        ),
        "fractions": (
            (x - np.percentile(x, low / 100))
            / (np.percentile(x, high / 100) - np.percentile(x, low / 100) + eps),
            "np.percentile takes percentages from 0 to 100 (low and high as they are); dividing "
            "by 100 is for np.quantile",
        ),
        "half": (
            (image.astype(np.float16) - np.float16(lo)) / np.float16(hi - lo + eps),
            "the result was computed in half precision (float16), which rounds to about 3 "
            "digits; compute in float32 or float64 and return float32",
        ),
        "no_shift": (
            x / (hi - lo + eps),
            "subtract the low percentile before dividing: (x - p_low) / (p_high - p_low + eps)",
        ),
        "zscore": (
            (x - x.mean()) / (x.std() + eps),
            "you used the mean and standard deviation (a z-score); map the low-th percentile "
            "to 0 and the high-th to 1 instead",
        ),
        "eps": (
            (x - lo) / (hi - lo + 1e-6),
            f"your code ignores the eps argument (called with eps={eps:g}); add eps, not a "
            "fixed number, to the denominator",
        ),
    }
    variants.update(_percentile_mistakes(x, low, high, eps))
    return variants


def _percentile_mistakes(
    x: np.ndarray, low: float, high: float, eps: float
) -> dict[str, tuple[np.ndarray, str]]:
    """The mistakes in taking the percentiles: the notebook's fixed 1 and 99.8 instead of the
    arguments, another interpolation method, per row or column. ``x``: the image as float64."""
    lo, hi = np.percentile(x, [low, high])
    d_lo, d_hi = np.percentile(x, [1.0, 99.8])
    variants: dict[str, tuple[np.ndarray, str]] = {}
    if (low, high) != (1.0, 99.8):
        variants["fixed"] = (
            (x - d_lo) / (d_hi - d_lo + eps),
            f"your code ignores the low and high arguments (called with low={low:g}, "
            f"high={high:g}, it used the notebook's 1 and 99.8): pass them to np.percentile",
        )
        if high == 99.8:
            lo_only = np.percentile(x, 1.0)
            variants["fixed_low"] = (
                (x - lo_only) / (hi - lo_only + eps),
                f"your code ignores the low argument (called with low={low:g}, it used 1)",
            )
        else:
            hi_only = np.percentile(x, 99.8)
            variants["fixed_high"] = (
                (x - lo) / (hi_only - lo + eps),
                f"your code ignores the high argument (called with high={high:g}, it used 99.8)",
            )
    for method in ("nearest", "lower", "higher", "midpoint"):
        m_lo, m_hi = np.percentile(x, [low, high], method=method)
        variants[f"method_{method}"] = (
            (x - m_lo) / (m_hi - m_lo + eps),
            f"your percentiles use method='{method}'; use np.percentile's default (linear "
            "interpolation between the two nearest pixel values), as the package does",
        )
    for axis, name in ((0, "column"), (1, "row")):
        a_lo, a_hi = np.percentile(x, [low, high], axis=axis, keepdims=True)
        variants[f"per_{name}"] = (
            (x - a_lo) / (a_hi - a_lo + eps),
            f"you computed the percentiles per {name} (axis={axis}); compute them over the whole "
            "image (no axis argument)",
        )
    return variants


def three_class_variants(labels: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
    fg = labels > 0
    interior = np.where(fg, 1, 0).astype(np.uint8)

    def with_boundary(mask: np.ndarray) -> np.ndarray:
        t = interior.copy()
        t[mask] = 2
        return t

    ref = three_class(labels)
    inner = inner_boundaries(labels)
    fg_edge = fg & ~ndimage.binary_erosion(fg, border_value=1)
    eight = np.zeros_like(fg)
    padded = np.pad(labels, 1, mode="edge")
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = padded[1 + dy : 1 + dy + labels.shape[0], 1 + dx : 1 + dx + labels.shape[1]]
            eight |= shifted != labels
    eight &= fg
    outer = ~fg & ndimage.binary_dilation(fg)
    border = np.zeros_like(fg)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    one_side = np.zeros_like(fg)
    one_side[1:, :] |= labels[1:, :] != labels[:-1, :]
    one_side[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    one_side &= fg
    swapped = np.where(ref == 1, 2, np.where(ref == 2, 1, 0)).astype(np.uint8)
    border_message = (
        "the image border is not a boundary: nuclei cut by the border keep interior pixels there "
        "(np.roll wraps around, comparing the first row with the last: compare shifted slices "
        "such as labels[1:, :] and labels[:-1, :] instead)"
    )
    rolled = np.zeros_like(fg)
    for shift, axis in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
        rolled |= np.roll(labels, shift, axis=axis) != labels
    return {
        "eight_bit": (
            three_class(labels.astype(np.uint8)),
            "labels above 255 are lost: converting the labels to uint8 (8 bits) turns 257 into "
            "1, so two touching nuclei become one; compare the labels as they are",
        ),
        "classes_swapped": (
            swapped,
            "classes 1 and 2 are swapped: 1 is the interior, 2 the boundary",
        ),
        "foreground_only": (
            with_boundary(fg_edge),
            "where two nuclei touch there must be boundary on both sides of the contact line: "
            "compare each pixel's label with its neighbours' labels, not the foreground mask",
        ),
        "outer": (
            with_boundary(outer),
            "your boundary lies outside the nuclei (on background pixels); it must be the inner "
            "rim: nucleus pixels with a neighbour of another label",
        ),
        "thick": (
            with_boundary(outer | inner),
            "your boundary also covers background pixels outside the nuclei (a 'thick' "
            "boundary); keep only the inner rim: nucleus pixels with a neighbour of another label",
        ),
        "eight": (
            with_boundary(eight),
            "you used 8 neighbours (diagonals too); use the 4 neighbours up, down, left, right",
        ),
        "image_border": (np.where(border & fg, 2, ref).astype(np.uint8), border_message),
        "rolled": (with_boundary(rolled & fg), border_message),
        "border_and_foreground": (with_boundary(fg_edge | (border & fg)), border_message),
        "one_side": (
            with_boundary(one_side),
            "only one pixel of each differing pair of neighbours is marked: a pair with two "
            "labels marks both of its pixels (edge[1:, :] |= ... and edge[:-1, :] |= ...)",
        ),
    }
