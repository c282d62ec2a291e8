"""Checks for notebook 00 (set-up and data): percentile normalisation and the three-class target.

Exercises: ``normalize`` (:func:`check_normalize`) and ``three_class`` (:func:`check_three_class`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from gruunet_edu.data.normalize import percentile_normalize
from gruunet_edu.data.synthetic import make_nuclei
from gruunet_edu.data.targets import three_class
from gruunet_edu.exercises.core import (
    Exercise,
    Mismatch,
    StudentError,
    call,
    diagnose,
    expect,
    expect_shape,
    max_difference,
    plural,
)
from gruunet_edu.exercises.mistakes import Spread
from gruunet_edu.exercises.mistakes.nb0 import normalize_variants, three_class_variants
from gruunet_edu.exercises.probes import expect_unchanged, snapshot

NOTEBOOK = "solutions/00_setup_and_data.ipynb"

_HINTS = {
    "normalize": (
        "np.percentile(image, [low, high]) returns both percentiles at once; use the "
        "arguments, not the numbers 1 and 99.8.",
        "Map p_low to 0 and p_high to 1 with one affine formula; do not clip.",
        "return ((image - lo) / (hi - lo + eps)).astype(np.float32)",
    ),
    "three_class": (
        "Start with interior = 1 wherever labels > 0, then overwrite the boundary pixels with 2.",
        "A pixel is boundary when it is inside a nucleus and one of its 4 neighbours has a "
        "different label: compare labels[1:, :] with labels[:-1, :] (vertical pairs) and "
        "labels[:, 1:] with labels[:, :-1] (horizontal pairs).",
        "A differing pair marks both of its pixels; finally keep only pixels with labels > 0.",
    ),
}


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


def _blobs(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A small fluorescence-like image of its own (three blurred nuclei of different brightness
    on a noisy background), fixed here so that the check does not change with the sample data:
    nothing saturates, so the maximum and every high percentile differ."""
    yy, xx = np.mgrid[:size, :size]
    image = 0.1 + 0.02 * rng.standard_normal((size, size))
    for cy, cx, radius, brightness in ((12, 14, 6, 0.6), (30, 33, 8, 0.8), (36, 10, 5, 0.35)):
        image += brightness * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
    return image.astype(np.float32)


def _normalize_images() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    image = _blobs(rng)
    hot = image.copy()
    hot[rng.integers(0, 48, 5), rng.integers(0, 48, 5)] = 50.0  # a few hot pixels
    scaled = (image * 4000 + 300).astype(np.uint16)  # a 16-bit camera image
    return [
        ("a small image of three nuclei", image),
        ("an image with hot pixels", hot),
        ("a uint16 image", scaled),
    ]


# (low, high, eps): the notebook's defaults first, then other values the arguments must honour
_NORMALIZE_ARGS = ((1.0, 99.8, 1e-6), (5.0, 95.0, 1e-6), (0.0, 100.0, 1e-6), (10.0, 99.8, 1e-6))


def _normalized(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """The student's result as a float32 NumPy array of ``shape``, or a Mismatch saying why not."""
    if isinstance(value, torch.Tensor):
        raise Mismatch(
            f"{what} returned a torch tensor; return a NumPy array (the notebook indexes the "
            "result with NumPy masks and the dataset converts it to a tensor later)"
        )
    if not isinstance(value, np.ndarray):
        _as_array(value, what)  # None and `...` get their own sentence
        raise Mismatch(
            f"{what} returned a {type(value).__name__}, expected a NumPy array of shape {shape} "
            "(arithmetic on the image gives one)"
        )
    expect_shape(value, shape, "the normalised image", "the image's shape")
    expect(
        value.dtype == np.float32,
        f"the result has dtype {value.dtype}; return float32 (.astype(np.float32)), the dtype "
        "the network's weights use",
    )
    return value


def _call_normalize(student: Any, image: np.ndarray, low: float, high: float, eps: float) -> Any:
    """normalize(image) for the defaults, normalize(image, low=..., high=..., eps=...) else."""
    if (low, high, eps) == _NORMALIZE_ARGS[0]:
        return call(student, image, what="your normalize(image)")
    what = f"your normalize(image, low={low:g}, high={high:g}, eps={eps:g})"
    try:
        return call(student, image, low=low, high=high, eps=eps, what=what)
    except StudentError as err:
        if err.kind == "TypeError" and "argument" in (err.original or str(err)):
            raise Mismatch(
                f"{err.brief} Keep the notebook's signature normalize(image, low=1.0, "
                "high=99.8, eps=1e-6): the check also calls it with other percentiles and eps"
            ) from None
        raise


def _check_one_normalize(student: Any, name: str, image: np.ndarray, args: tuple) -> None:
    low, high, eps = args
    before = snapshot([image])
    got = _call_normalize(student, image, low, high, eps)
    expect_unchanged([image], before, ["image"])
    got = _normalized(got, "your normalize(image)", image.shape)
    expect(bool(np.isfinite(got).all()), "the result contains NaN or infinite values")
    diagnose(
        got,
        percentile_normalize(image, low, high, eps),
        lambda: normalize_variants(image, low, high, eps),
        "the normalised image",
        atol=1e-4,
        compared=f"for {name} with low={low:g}, high={high:g}, eps={eps:g}",
    )


def _check_normalize(student: Any) -> None:
    images = _normalize_images()
    for name, image in images:  # the notebook's defaults first
        _check_one_normalize(student, name, image, _NORMALIZE_ARGS[0])
    flat = np.full((16, 16), 0.25, np.float32)
    got = _normalized(_call_normalize(student, flat, *_NORMALIZE_ARGS[0]), "normalize", flat.shape)
    expect(
        bool(np.isfinite(got).all()),
        "a constant image gives NaN or infinity (division by p_high - p_low = 0): add eps to the "
        "denominator",
    )
    expect(bool(np.allclose(got, 0.0, atol=1e-3)), "a constant image should map to 0 everywhere")
    for name, image in images:  # then the arguments must be used, not the example's numbers
        for args in _NORMALIZE_ARGS[1:]:
            _check_one_normalize(student, name, image, args)
    # eps must be the argument: a narrow-range image with a large eps
    narrow = (images[0][1] * 0.01).astype(np.float32)
    _check_one_normalize(student, "a low-contrast image", narrow, (1.0, 99.8, 0.5))


_exercise = partial(Exercise, solution_notebook=NOTEBOOK)

normalize_exercise = _exercise(
    "normalize",
    "Percentile normalisation",
    _check_normalize,
    percentile_normalize,
    _HINTS["normalize"],
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
    many = np.zeros(shape, np.uint16)
    many[_disk(shape, 12, 10, 6)] = 1
    many[_disk(shape, 12, 21, 6)] = 257  # 257 and 1 are the same number in 8 bits
    full = np.ones(shape, np.int32)  # every pixel belongs to a nucleus: no background at all
    full[:, 16:] = 2
    _, sample = make_nuclei(1, size=64, density=8)
    return [
        ("one nucleus", one),
        ("a nucleus at the image border", border),
        ("two touching nuclei", touching),
        ("labels above 255 (nuclei 1 and 257 touching)", many),
        ("an image without background (two nuclei fill it)", full),
        ("a synthetic image", sample),
        ("an empty image", np.zeros(shape, np.uint16)),
    ]


def diagnose_known(got: np.ndarray, variants: dict[str, tuple[np.ndarray, str]]) -> None:
    """Raise the message of a known mistake that ``got`` reproduces exactly (if any)."""
    for output, message in variants.values():
        if output.shape == got.shape and np.array_equal(output, got):
            raise Mismatch(message)


def _check_three_class(student: Any) -> None:
    what = "your three_class(labels)"
    for name, labels in _label_cases():
        before = snapshot([labels])
        got = call(student, labels, what=what)
        expect_unchanged([labels], before, ["labels"])
        if not isinstance(got, np.ndarray):
            _as_array(got, what)  # None and `...` get their own sentence
            raise Mismatch(
                f"{what} returned a {type(got).__name__}, expected a NumPy array (H, W) of "
                "class numbers"
            )
        expect_shape(got, labels.shape, f"the target for {name}", "the labels' shape")
        expect(
            got.dtype == np.uint8,
            f"the target has dtype {got.dtype}; return np.uint8 (.astype(np.uint8)), the class "
            "numbers' dtype in the rest of the course",
        )
        values = set(np.unique(got).tolist())
        expect(
            values <= {0, 1, 2},
            f"the target for {name} contains {sorted(values)}; only 0, 1 and 2 are classes",
        )
        reference = three_class(labels)
        if np.array_equal(got, reference):
            expect(True, "")
            continue
        diagnose_known(got, three_class_variants(labels))
        if not (labels == 0).any():
            expect(
                bool(((got == 0) == (labels == 0)).all()),
                f"for {name}: class 0 must be exactly label 0; in an image without background "
                "no pixel is class 0 (test labels > 0, not against the smallest label)",
            )
        expect(
            (got == 1).any() or not (reference == 1).any(),
            f"the target for {name} has no interior (class 1): start from 1 on every nucleus "
            "pixel, then overwrite the boundary with 2",
        )
        expect(
            bool(((got == 0) == (labels == 0)).all()),
            f"for {name}: class 0 must be exactly the background (label 0)",
        )
        raise Mismatch(_three_class_difference(name, labels, got, reference))


def _three_class_difference(name: str, labels: np.ndarray, got: np.ndarray, ref: np.ndarray) -> str:
    """Which boundary pixels are wrong, in words: next to the background or between nuclei."""
    padded = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    neighbours = [padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _FOUR]
    next_to_background = np.zeros(labels.shape, bool)
    next_to_nucleus = np.zeros(labels.shape, bool)
    for n in neighbours:
        next_to_background |= (n == 0) & (labels > 0)
        next_to_nucleus |= (n != labels) & (n > 0) & (labels > 0)
    missing = (got == 1) & (ref == 2)
    extra = (got == 2) & (ref == 1)
    parts = []
    if (missing & next_to_background).any():
        parts.append(
            f"{plural(int((missing & next_to_background).sum()), 'pixel')} next to the "
            "background should be boundary (2)"
        )
    if (missing & next_to_nucleus & ~next_to_background).any():
        parts.append(
            f"{plural(int((missing & next_to_nucleus & ~next_to_background).sum()), 'pixel')} "
            "where two nuclei touch should be boundary (2) on both sides"
        )
    if extra.any():
        parts.append(
            f"{plural(int(extra.sum()), 'interior pixel')} (all 4 neighbours with the same "
            "label) are marked as boundary"
        )
    detail = "; ".join(parts) or f"{plural(int((got != ref).sum()), 'pixel')} differ"
    return (
        f"the target for {name} is wrong: {detail} (a boundary pixel is a nucleus pixel whose 4 "
        "neighbours include another label)"
    )


_FOUR = ((-1, 0), (1, 0), (0, -1), (0, 1))


three_class_exercise = _exercise(
    "three_class", "Three-class target", _check_three_class, three_class, _HINTS["three_class"]
)
check_three_class = three_class_exercise.check


def variant_spread() -> Spread:
    """How far each known mistake of the two checks moves the output (see :class:`Spread`)."""
    spread = Spread()
    images = _normalize_images()
    narrow = ("a low-contrast image", (images[0][1] * 0.01).astype(np.float32))
    for _name, image in [*images, narrow]:
        for low, high, eps in (*_NORMALIZE_ARGS, (1.0, 99.8, 0.5)):
            reference = percentile_normalize(image, low, high, eps)
            for key, (output, _m) in normalize_variants(image, low, high, eps).items():
                spread.note("normalize", key, max_difference(output, reference), 1e-4)
    for _name, labels in _label_cases():
        reference = three_class(labels)
        for key, (output, _m) in three_class_variants(labels).items():
            spread.note("three_class", key, float((output != reference).any()), 0.0)
    return spread
