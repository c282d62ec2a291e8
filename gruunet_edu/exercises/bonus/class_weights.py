"""Bonus of notebook 04: inverse-frequency class weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import Mismatch, call, close, expect


def reference_class_weights(targets: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """w_k = N / (K * n_k) for the N pixels of ``targets`` (class maps), 0 for absent classes.

    With these weights every present class contributes the same total weight, N / K.
    """
    targets = np.asarray(targets)
    counts = np.bincount(targets.ravel().astype(np.int64), minlength=num_classes)[:num_classes]
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = targets.size / (num_classes * counts[present])
    return weights


def _check_class_weights(student: Any) -> int:
    rng = np.random.default_rng(4)
    skewed = rng.choice(3, size=(2, 16, 16), p=[0.7, 0.25, 0.05]).astype(np.uint8)
    balanced = np.tile(np.array([0, 1, 2], np.uint8), 12).reshape(6, 6)
    absent = np.zeros((4, 4), np.uint8)
    absent[:2] = 1  # no boundary pixel at all
    cases = (("a skewed batch", skewed), ("balanced classes", balanced), ("no boundary", absent))
    for what, targets in cases:
        expected = reference_class_weights(targets)
        got = np.asarray(call(student, targets.copy(), 3, what="your function"), dtype=float)
        expect(
            got.shape == (3,), f"{what}: return one weight per class, shape (3,), got {got.shape}"
        )
        if close(got, expected):
            continue
        counts = np.bincount(targets.ravel(), minlength=3)
        if np.any(~np.isfinite(got)):
            raise Mismatch(f"{what}: a class with no pixels must get weight 0, not inf or nan")
        if close(got / got.sum(), expected / expected.sum()):
            raise Mismatch(
                f"{what}: the ratios are right but the scale is not: with w_k = N / (K n_k) every "
                "present class weighs N / K in total"
            )
        raise Mismatch(
            f"{what}: pixel counts {counts.tolist()}: weights {got}, expected {expected}"
        )
    return len(cases)


_HINTS = (
    "np.bincount(targets.ravel(), minlength=K) counts the pixels n_k of every class.",
    "w_k = N / (K * n_k) with N = targets.size; where n_k == 0 leave w_k = 0.",
)

class_weights_exercise = bonus(
    "class_weights",
    "inverse-frequency class weights",
    _check_class_weights,
    reference_class_weights,
    _HINTS,
    "04_training",
)
check_class_weights = class_weights_exercise.check
