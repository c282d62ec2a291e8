"""Checks for notebook 05 (evaluation): the IoU matrix of two label images and instance matching.

The student writes

- ``instance_iou(gt, pred)``: the IoU of every true object (rows, in label order) with every
  predicted object (columns), background (0) excluded, labels not necessarily consecutive;
- ``match_counts(iou, tau)``: ``(TP, FP, FN)`` of the one-to-one matching at ``IoU >= tau`` for
  ``tau >= 0.5`` (then an object overlaps at most one other by that much, so the matching is
  simply "every pair with IoU >= tau").

Each check compares with :mod:`gruunet_edu.evaluation.metrics` on hand-made label images and IoU
matrices that expose the usual mistakes (background row, transposed matrix, Dice instead of IoU,
``>`` instead of ``>=``, FP and FN swapped...).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gruunet_edu.evaluation.metrics import _match, match_instances
from gruunet_edu.evaluation.metrics import iou_matrix as reference_iou_matrix
from gruunet_edu.exercises.core import Exercise, Mismatch, as_numpy, call

__all__ = [
    "check_instance_iou",
    "check_match_counts",
    "reference_instance_iou",
    "reference_match_counts",
]

NOTEBOOK = "solutions/05_evaluation.ipynb"

_HINTS = {
    "instance_iou": [
        "The objects are the non-zero labels: ids = np.unique(labels); ids = ids[ids != 0]. "
        "Labels can skip numbers (1, 4, 9), so loop over ids, not over range(labels.max()).",
        "For true object a and predicted object b: inter = np.logical_and(gt == a, pred == b).sum()"
        " and union = np.logical_or(gt == a, pred == b).sum().",
        "Fill out = np.zeros((len(gt_ids), len(pred_ids))) with out[i, j] = inter / union; rows "
        "are true objects, columns predicted ones.",
    ],
    "match_counts": [
        "For tau >= 0.5 a true object can reach IoU >= tau with at most one predicted object, so "
        "every entry of the matrix with iou >= tau is one matched pair.",
        "TP = number of entries with iou >= tau (note: >=, a pair at exactly tau counts). "
        "FP are predictions without a match, FN true objects without a match.",
        "n_true, n_pred = iou.shape; fp = n_pred - tp; fn = n_true - tp; return tp, fp, fn.",
    ],
}


#: The reference IoU matrix is the package's own ``gruunet_edu.evaluation.metrics.iou_matrix``.
reference_instance_iou = reference_iou_matrix


def reference_match_counts(iou: np.ndarray, tau: float = 0.5) -> tuple[int, int, int]:
    """(TP, FP, FN) of the one-to-one matching at IoU >= tau of an IoU matrix (n_true, n_pred)."""
    iou = np.asarray(iou, dtype=np.float64)
    n_true, n_pred = iou.shape
    rows, _ = _match(iou, tau)  # the package's matching (gruunet_edu.evaluation.metrics)
    tp = int(rows.size)
    return tp, n_pred - tp, n_true - tp


# ------------------------------------------------------------------------------ IoU matrix
def _label_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    gt = np.zeros((12, 14), np.uint16)
    gt[1:5, 1:6] = 1
    gt[6:11, 2:7] = 2
    gt[2:9, 9:13] = 3
    pred = np.zeros_like(gt)
    pred[1:6, 1:6] = 1  # overlaps true 1
    pred[7:11, 3:8] = 2  # overlaps true 2
    pred[0:3, 8:14] = 3  # small overlap with true 3
    pred[10:12, 10:14] = 4  # false positive
    gaps = np.zeros_like(gt)
    gaps[gt == 1], gaps[gt == 2], gaps[gt == 3] = 4, 9, 2  # labels 2, 4, 9: not consecutive
    return [
        ("3 true and 4 predicted objects", gt, pred),
        ("true labels 2, 4 and 9 (not consecutive)", gaps, pred),
        ("an empty prediction", gt, np.zeros_like(gt)),
    ]


def _iou_variants(gt: np.ndarray, pred: np.ndarray) -> list[tuple[np.ndarray, str]]:
    from gruunet_edu.evaluation.metrics import contingency

    table, _, _ = contingency(gt, pred)
    inter = table[1:, 1:].astype(np.float64)
    a = table[1:, :].sum(axis=1, keepdims=True).astype(np.float64)
    b = table[:, 1:].sum(axis=0, keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [
            (
                np.nan_to_num(2 * inter / (a + b)),
                "these are Dice values 2|A n B| / (|A| + |B|); IoU divides by the union "
                "|A u B| = |A| + |B| - |A n B|",
            ),
            (
                np.nan_to_num(inter / (a + b)),
                "your union counts the overlap twice: |A u B| = |A| + |B| - |A n B|",
            ),
            (
                np.nan_to_num(inter / np.broadcast_to(a, inter.shape)),
                "you divide the overlap by the area of the true object; IoU divides by the union",
            ),
            (
                np.nan_to_num(inter / np.broadcast_to(b, inter.shape)),
                "you divide the overlap by the area of the predicted object; IoU divides by the "
                "union",
            ),
        ]


def _iou_checks(fn: Callable) -> int:
    passed = 0
    for name, gt, pred in _label_cases():
        gt_in, pred_in = gt.copy(), pred.copy()
        out = call(fn, gt_in, pred_in, what="your instance_iou")
        if not (np.array_equal(gt_in, gt) and np.array_equal(pred_in, pred)):
            raise Mismatch("your function changed the label images in place; work on copies")
        try:
            got = np.asarray(as_numpy(out), dtype=np.float64)
        except (TypeError, ValueError):
            raise Mismatch(
                f"your instance_iou must return a 2-d array, it returned {type(out).__name__}"
            ) from None
        expected = reference_instance_iou(gt, pred)
        n_true, n_pred = expected.shape
        where = f"for {name}"
        if got.shape != expected.shape:
            if got.shape == (n_true + 1, n_pred + 1):
                raise Mismatch(
                    f"your matrix has shape {got.shape} {where}, expected {expected.shape}: it has "
                    "a row and a column for the background (label 0); leave label 0 out"
                )
            if got.shape == (n_pred, n_true) and n_pred != n_true:
                raise Mismatch(
                    f"your matrix has shape {got.shape} {where}, expected {expected.shape}: it is "
                    "transposed; rows are true objects, columns predicted objects"
                )
            if got.ndim == 2 and got.shape[0] == int(gt.max()) and n_true != gt.max():
                raise Mismatch(
                    f"your matrix has {got.shape[0]} rows {where}, but there are only {n_true} "
                    "true objects: labels need not be consecutive, take the ids from np.unique"
                )
            raise Mismatch(f"your matrix has shape {got.shape} {where}, expected {expected.shape}")
        if np.allclose(got, expected, atol=1e-6):
            passed += 1
            continue
        if got.size and (got.min() < -1e-9 or got.max() > 1 + 1e-9):
            raise Mismatch(
                f"IoU lies between 0 and 1, yours ranges {got.min():.3g}..{got.max():.3g} {where}"
            )
        for wrong, message in _iou_variants(gt, pred):
            if np.allclose(got, wrong, atol=1e-6):
                raise Mismatch(message)
        if n_true == n_pred and np.allclose(got.T, expected, atol=1e-6):
            raise Mismatch(
                "your matrix is transposed: rows are true objects, columns predicted objects"
            )
        i, j = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
        raise Mismatch(
            f"entry [{i}, {j}] (true object {i + 1}, predicted object {j + 1} in label order) is "
            f"{got[i, j]:.4f} {where}, expected {expected[i, j]:.4f}"
        )
    return passed


# ------------------------------------------------------------------------------ matching
def _matrix_cases() -> list[tuple[str, np.ndarray, float]]:
    m = np.array(
        [
            [0.82, 0.10, 0.00, 0.00],
            [0.05, 0.50, 0.00, 0.00],
            [0.00, 0.20, 0.45, 0.00],
        ]
    )
    return [
        ("3 true x 4 predicted objects, tau=0.5 (one pair at exactly 0.5)", m, 0.5),
        ("the same matrix, tau=0.75", m, 0.75),
        ("no predictions (shape (3, 0)), tau=0.5", np.zeros((3, 0)), 0.5),
        ("no true objects (shape (0, 2)), tau=0.5", np.zeros((0, 2)), 0.5),
        ("2 true x 2 predicted, all matched, tau=0.6", np.array([[0.9, 0.0], [0.1, 0.7]]), 0.6),
    ]


def _match_checks(fn: Callable) -> int:
    passed = 0
    for name, iou, tau in _matrix_cases():
        given = iou.copy()
        out = call(fn, given, tau, what="your match_counts")
        if not np.array_equal(given, iou):
            raise Mismatch("your function changed the IoU matrix in place; work on a copy")
        try:
            got = tuple(int(v) for v in as_numpy(out))
        except (TypeError, ValueError):
            raise Mismatch(
                f"your match_counts must return three integers (tp, fp, fn), it returned {out!r}"
            ) from None
        if len(got) != 3:
            raise Mismatch(
                f"your match_counts must return three numbers (tp, fp, fn), it returned {len(got)}"
            )
        expected = reference_match_counts(iou, tau)
        if got == expected:
            passed += 1
            continue
        tp, fp, fn_ = expected
        where = f"for {name}"
        if got == (tp, fn_, fp):
            raise Mismatch(
                f"FP and FN are swapped {where}: FP counts predicted objects without a match, "
                "FN true objects without a match"
            )
        strict = int((iou > tau).sum())
        if got[0] == strict != tp:
            raise Mismatch(
                f"a pair with IoU exactly equal to tau must count as a match (IoU >= tau); you "
                f"found {got[0]} matches {where}, expected {tp}"
            )
        if got[0] != tp:
            raise Mismatch(f"you found {got[0]} true positives {where}, expected {tp}")
        raise Mismatch(f"you returned (tp, fp, fn) = {got} {where}, expected {expected}")
    return passed


def match_counts_of_labels(gt: np.ndarray, pred: np.ndarray, tau: float = 0.5):
    """(TP, FP, FN) of two label images with the package's matching (for comparisons)."""
    r = match_instances(gt, pred, tau)
    return r.tp, r.fp, r.fn


# ------------------------------------------------------------------------------ the exercises
iou_exercise = Exercise(
    name="instance_iou",
    title="Instance IoU matrix",
    checker=_iou_checks,
    reference=reference_instance_iou,
    hints=_HINTS["instance_iou"],
    solution_notebook=NOTEBOOK,
)
check_instance_iou = iou_exercise.check

match_exercise = Exercise(
    name="match_counts",
    title="Matching at IoU >= tau",
    checker=_match_checks,
    reference=reference_match_counts,
    hints=_HINTS["match_counts"],
    solution_notebook=NOTEBOOK,
)
check_match_counts = match_exercise.check
