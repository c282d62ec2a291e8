"""Bonus of notebook 00: which nuclei touch (pairs of 4-neighbouring labels)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import Mismatch, call, expect


def reference_touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (a, b), a < b, of nuclei with 4-neighbouring pixels (corners meeting do not touch)."""
    labels = np.asarray(labels)
    pairs: set[tuple[int, int]] = set()
    for a, b in ((labels[:-1, :], labels[1:, :]), (labels[:, :-1], labels[:, 1:])):
        both = (a != b) & (a > 0) & (b > 0)  # two different nuclei side by side
        for u, v in zip(a[both].tolist(), b[both].tolist(), strict=True):
            pairs.add((min(u, v), max(u, v)))
    return pairs


def _touching_cases() -> list[tuple[str, np.ndarray]]:
    side = np.zeros((6, 8), np.uint16)
    side[1:4, 1:4], side[1:4, 4:7] = 1, 2  # side by side
    above = np.zeros((7, 5), np.uint16)
    above[0:3, 1:4], above[3:6, 1:4] = 5, 9  # one above the other, labels not consecutive
    diagonal = np.zeros((6, 6), np.uint16)
    diagonal[0:2, 0:2], diagonal[2:4, 2:4] = 1, 2  # corners meet: not 4-neighbours
    apart = np.zeros((6, 9), np.uint16)
    apart[1:4, 1:3], apart[1:4, 5:8] = 1, 2
    chain = np.zeros((4, 9), np.uint16)
    chain[:, 0:3], chain[:, 3:6], chain[:, 6:9] = 3, 1, 2  # 3-1 and 1-2 touch, 3-2 do not
    return [
        ("two nuclei side by side", side),
        ("one nucleus above another (labels 5 and 9)", above),
        ("two nuclei whose corners meet diagonally", diagonal),
        ("two nuclei apart", apart),
        ("three nuclei in a row", chain),
    ]


def _check_touching_pairs(student: Any) -> int:
    for what, labels in _touching_cases():
        original = labels.copy()
        got = call(student, labels, what="your function")
        expect(np.array_equal(labels, original), "your function changed the label image in place")
        try:
            got = {tuple(int(v) for v in pair) for pair in got}
        except TypeError:
            raise Mismatch(
                f"return a set of pairs (a, b) of labels, got {type(got).__name__}"
            ) from None
        expected = reference_touching_pairs(labels)
        if any(a > b for a, b in got):
            raise Mismatch(f"{what}: write each pair with the smaller label first, (a, b), a < b")
        if any(0 in pair for pair in got):
            raise Mismatch(f"{what}: the background (label 0) is not a nucleus; leave it out")
        if got != expected:
            extra, missing = sorted(got - expected), sorted(expected - got)
            detail = f"{extra} should not be there" if extra else f"{missing} is missing"
            if what.startswith("two nuclei whose corners"):
                detail += " (only 4-neighbours touch: up, down, left, right)"
            raise Mismatch(f"{what}: you found {sorted(got)}; {detail}")
    return len(_touching_cases())


_HINTS = (
    "Compare every pixel with its neighbour below (labels[:-1, :] vs labels[1:, :]) and "
    "with its neighbour to the right (labels[:, :-1] vs labels[:, 1:]).",
    "A touching pair is where both are > 0 and differ; collect (min, max) of the two labels "
    "in a set.",
)

touching_pairs_exercise = bonus(
    "touching_pairs",
    "touching nuclei",
    _check_touching_pairs,
    reference_touching_pairs,
    _HINTS,
    "00_setup_and_data",
)
check_touching_pairs = touching_pairs_exercise.check
