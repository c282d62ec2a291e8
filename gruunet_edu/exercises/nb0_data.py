"""Checks for notebook 00 (set-up and data): percentile normalisation and the three-class target.

Exercises: ``normalize`` (:func:`check_normalize`) and ``three_class`` (:func:`check_three_class`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from gruunet_edu.data.normalize import percentile_normalize
from gruunet_edu.data.synthetic import make_nuclei
from gruunet_edu.data.targets import three_class
from gruunet_edu.exercises.core import (
    Exercise,
    Mismatch,
    call,
    diagnose,
    expect,
    expect_shape,
)

NOTEBOOK = "solutions/00_setup_and_data.ipynb"


def _as_array(value: Any, what: str) -> np.ndarray:
    if value is None:
        raise Mismatch(f"{what} returned None: is a `return` statement missing?")
    if value is Ellipsis:
        raise Mismatch(f"{what} returned `...`: replace the placeholder with your code")
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception:  # noqa: BLE001
        raise Mismatch(f"{what} returned a {type(value).__name__}, expected an array") from None


# ------------------------------------------------------------------------ percentile normalisation


def _normalize_images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    image, _ = make_nuclei(0, size=48)
    hot = image.copy()
    hot[rng.integers(0, 48, 5), rng.integers(0, 48, 5)] = 50.0  # a few hot pixels
    scaled = (image * 4000 + 300).astype(np.uint16)  # a 16-bit camera image
    return [image, hot, scaled]


def _check_normalize(student: Any) -> None:
    what = "your normalize(image)"
    for image in _normalize_images():
        original = image.copy()
        got = _as_array(call(student, image, what=what), what)
        expect_shape(got, image.shape, "the normalised image", "the image's shape")
        expect(np.array_equal(image, original), "normalize changed the image in place")
        expect(
            np.issubdtype(got.dtype, np.floating),
            f"the result has dtype {got.dtype}; return floats (e.g. .astype(np.float32))",
        )
        expect(bool(np.isfinite(got).all()), "the result contains NaN or infinite values")
        x = image.astype(np.float64)
        lo, hi = np.percentile(x, [1.0, 99.8])
        mn, mx = x.min(), x.max()
        diagnose(
            got,
            percentile_normalize(image),
            {
                "minmax": (
                    (x - mn) / (mx - mn),
                    "you used the minimum and maximum; use the 1st and 99.8th percentiles "
                    "(np.percentile), so a few hot pixels cannot squash the nuclei's range",
                ),
                "clipped": (
                    np.clip((x - lo) / (hi - lo), 0, 1),
                    "the result is clipped to [0, 1]; keep values outside (no np.clip here)",
                ),
                "swapped": (
                    (x - hi) / (lo - hi),
                    "the percentiles are swapped: the low percentile must map to 0 and the high "
                    "one to 1",
                ),
                "no_shift": (
                    x / (hi - lo),
                    "subtract the low percentile before dividing: (x - p_low) / (p_high - p_low)",
                ),
            },
            "the normalised image",
            atol=1e-4,
        )
    flat = np.full((16, 16), 0.25, np.float32)
    got = _as_array(call(student, flat, what=what), what)
    expect(
        bool(np.isfinite(got).all()),
        "a constant image gives NaN or infinity (division by p_high - p_low = 0): add a small "
        "eps, e.g. 1e-6, to the denominator",
    )
    expect(bool(np.allclose(got, 0.0, atol=1e-3)), "a constant image should map to 0 everywhere")


normalize_exercise = Exercise(
    name="normalize",
    title="Percentile normalisation",
    checker=_check_normalize,
    reference=percentile_normalize,
    hints=(
        "np.percentile(image, [1, 99.8]) returns both percentiles at once.",
        "Map p_low to 0 and p_high to 1 with one affine formula; do not clip.",
        "return ((image - lo) / (hi - lo + 1e-6)).astype(np.float32)",
    ),
    solution_notebook=NOTEBOOK,
)
check_normalize = normalize_exercise.check


# ------------------------------------------------------------------------ three-class target


def _disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _label_cases() -> list[tuple[str, np.ndarray]]:
    shape = (24, 32)
    one = _disk(shape, 12, 10, 6).astype(np.uint16)
    touching = np.zeros(shape, np.uint16)
    touching[_disk(shape, 12, 10, 6)] = 1
    touching[_disk(shape, 12, 21, 6)] = 2  # overlaps 1: the two nuclei touch along a line
    border = np.zeros(shape, np.uint16)
    border[:8, :10] = 3  # a nucleus cut by the image border, label not starting at 1
    _, sample = make_nuclei(1, size=64, density=8)
    return [
        ("one nucleus", one),
        ("two touching nuclei", touching),
        ("a nucleus at the image border", border),
        ("a synthetic image", sample),
        ("an empty image", np.zeros(shape, np.uint16)),
    ]


def _variant_targets(labels: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
    fg = labels > 0
    interior = np.where(fg, 1, 0).astype(np.uint8)

    def with_boundary(mask: np.ndarray) -> np.ndarray:
        t = interior.copy()
        t[mask] = 2
        return t

    ref = three_class(labels)
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
    swapped = np.where(ref == 1, 2, np.where(ref == 2, 1, 0)).astype(np.uint8)
    return {
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
        "eight": (
            with_boundary(eight),
            "you used 8 neighbours (diagonals too); use the 4 neighbours up, down, left, right",
        ),
        "image_border": (
            np.where(border & fg, 2, ref).astype(np.uint8),
            "the image border is not a boundary: nuclei cut by the border keep interior pixels "
            "there",
        ),
    }


def diagnose_known(got: np.ndarray, variants: dict[str, tuple[np.ndarray, str]]) -> None:
    """Raise the message of a known mistake that ``got`` reproduces exactly (if any)."""
    for output, message in variants.values():
        if output.shape == got.shape and np.array_equal(output, got):
            raise Mismatch(message)


def _check_three_class(student: Any) -> None:
    what = "your three_class(labels)"
    for name, labels in _label_cases():
        got = _as_array(call(student, labels.copy(), what=what), what)
        expect_shape(got, labels.shape, f"the target for {name}", "the labels' shape")
        expect(
            np.issubdtype(got.dtype, np.integer) or got.dtype == bool,
            f"the target has dtype {got.dtype}; class numbers are integers (np.uint8)",
        )
        values = set(np.unique(got).tolist())
        expect(
            values <= {0, 1, 2},
            f"the target for {name} contains {sorted(values)}; only 0, 1 and 2 are classes",
        )
        variants = _variant_targets(labels)
        if not np.array_equal(got, three_class(labels)):
            diagnose_known(got, variants)
        expect(
            bool(((got == 0) == (labels == 0)).all()),
            f"for {name}: class 0 must be exactly the background (label 0)",
        )
        diagnose(
            got,
            three_class(labels),
            variants,
            f"the target for {name}",
            atol=0,
        )


three_class_exercise = Exercise(
    name="three_class",
    title="Three-class target",
    checker=_check_three_class,
    reference=three_class,
    hints=(
        "Start with interior = 1 wherever labels > 0, then overwrite the boundary pixels with 2.",
        "A pixel is boundary when it is inside a nucleus and one of its 4 neighbours has a "
        "different label: compare labels[1:, :] with labels[:-1, :] (vertical pairs) and "
        "labels[:, 1:] with labels[:, :-1] (horizontal pairs).",
        "A differing pair marks both of its pixels; finally keep only pixels with labels > 0.",
    ),
    solution_notebook=NOTEBOOK,
)
check_three_class = three_class_exercise.check
