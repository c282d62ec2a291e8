"""Bonus of notebook 05: SEG and AP50 disagree on a prediction covering half a nucleus."""

from __future__ import annotations

from typing import Any

import numpy as np

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import call, expect


def reference_half_nucleus(labels: np.ndarray, label: int) -> np.ndarray:
    """A prediction with one object (label 1): the first half (n // 2 pixels, in row-major order)
    of nucleus ``label``, so its IoU with that nucleus is (n // 2) / n."""
    labels = np.asarray(labels)
    ys, xs = np.nonzero(labels == label)
    if ys.size == 0:
        raise ValueError(f"there is no nucleus with label {label}")
    pred = np.zeros(labels.shape, dtype=np.int32)
    half = ys.size // 2
    pred[ys[:half], xs[:half]] = 1
    return pred


def _check_half_nucleus(student: Any) -> int:
    labels = np.zeros((12, 14), np.uint16)
    labels[1:5, 1:7] = 3  # 24 pixels
    labels[6:11, 3:12] = 8  # 45 pixels
    checks = 0
    for label in (3, 8):
        original = labels.copy()
        got = np.asarray(call(student, labels, label, what="your function"))
        expect(np.array_equal(labels, original), "your function changed the label image in place")
        expect(
            got.shape == labels.shape, f"the prediction has shape {got.shape}, not {labels.shape}"
        )
        ids = np.unique(got[got > 0])
        n = int((labels == label).sum())
        expect(
            ids.size == 1,
            f"label {label}: the prediction must hold exactly one object, got {ids.size}",
        )
        obj = got == ids[0]
        expect(
            not (obj & (labels != label)).any(),
            f"label {label}: your object covers pixels outside nucleus {label}",
        )
        expect(
            int(obj.sum()) == n // 2,
            f"label {label}: your object has {int(obj.sum())} pixels; half of the nucleus's {n} "
            f"pixels is {n // 2} (n // 2)",
        )
        checks += 1
    return checks


_HINTS = (
    "ys, xs = np.nonzero(labels == label) lists the nucleus's pixels.",
    "Make pred = np.zeros(labels.shape, int) and set pred[ys[:n // 2], xs[:n // 2]] = 1.",
)

half_nucleus_exercise = bonus(
    "half_nucleus",
    "half a nucleus",
    _check_half_nucleus,
    reference_half_nucleus,
    _HINTS,
    "05_evaluation",
)
check_half_nucleus = half_nucleus_exercise.check
