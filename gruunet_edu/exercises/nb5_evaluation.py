"""Checks for notebook 05 (evaluation): the IoU matrix of two label images and instance matching.

The student writes

- ``instance_iou(gt, pred)``: the IoU ``|A n B| / |A u B|`` of every true object A (rows, in
  label order) with every predicted object B (columns), background (0) excluded, labels not
  necessarily consecutive, a NumPy array of shape (n_true, n_pred) (either may be 0);
- ``match_counts(iou, tau)``: ``(TP, FP, FN)`` of the one-to-one matching at ``IoU >= tau`` for
  ``tau >= 0.5``. For ``tau > 0.5`` an object overlaps at most one other by that much, so every
  entry ``>= tau`` is one match; at exactly ``tau = 0.5`` a true object can tie with two
  predictions that each cover half of it (a 2-pixel nucleus predicted as two 1-pixel objects),
  and each object may still be matched only once.

Each check compares with :mod:`gruunet_edu.evaluation.metrics` (``iou_matrix``, ``match``) on
hand-made label images and IoU matrices that expose the usual mistakes (background row,
transposed matrix, Dice instead of IoU, labels taken as 1..max, an image without background,
labels above 255, an empty truth or prediction, ``>`` instead of ``>=``, a tie at tau, FP and FN
swapped...), and checks that the caller's arrays are left unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from gruunet_edu.evaluation.metrics import iou_matrix as reference_iou_matrix
from gruunet_edu.evaluation.metrics import match, match_instances
from gruunet_edu.exercises._checks_common import exercise
from gruunet_edu.exercises.core import Mismatch, StudentError, as_numpy, call, expect
from gruunet_edu.exercises.mistakes.nb5 import iou_variants

__all__ = [
    "check_instance_iou",
    "check_match_counts",
    "known_mistake_outputs",
    "reference_instance_iou",
    "reference_match_counts",
]

NOTEBOOK = "solutions/05_evaluation.ipynb"

_HINTS = {
    "instance_iou": [
        "The objects are the non-zero labels: ids = np.unique(labels); ids = ids[ids != 0] (not "
        "np.unique(labels)[1:]: an image may have no background). Labels can skip numbers "
        "(1, 4, 9), so loop over enumerate(ids), not over range(labels.max()).",
        "For true object a and predicted object b: inter = np.logical_and(gt == a, pred == b).sum()"
        " and union = np.logical_or(gt == a, pred == b).sum().",
        "Fill out = np.zeros((len(gt_ids), len(pred_ids))) with out[i, j] = inter / union; rows "
        "are true objects, columns predicted ones. np.zeros also gives the right shape (0, n) "
        "when there are no true objects.",
    ],
    "match_counts": [
        "For tau > 0.5 a true object can reach IoU >= tau with at most one predicted object. At "
        "exactly tau = 0.5 it can tie with two (a 2-pixel nucleus predicted as two 1-pixel "
        "objects has IoU 0.5 with both), so count a pair only if neither object is matched yet.",
        "Go through the pairs with iou >= tau (note: >=, a pair at exactly tau counts), e.g. "
        "for i, j in zip(*np.nonzero(iou >= tau)), and keep two sets of the rows and columns "
        "already matched. FP are predictions without a match, FN true objects without a match.",
        "tp = number of pairs kept; n_true, n_pred = iou.shape; return tp, n_pred - tp, "
        "n_true - tp.",
    ],
}


#: The reference IoU matrix is the package's own ``gruunet_edu.evaluation.metrics.iou_matrix``.
reference_instance_iou = reference_iou_matrix


def reference_match_counts(iou: np.ndarray, tau: float = 0.5) -> tuple[int, int, int]:
    """(TP, FP, FN) of the one-to-one matching at IoU >= tau of an IoU matrix (n_true, n_pred)."""
    iou = np.asarray(iou, dtype=np.float64)
    n_true, n_pred = iou.shape
    rows, _ = match(iou, tau)  # the package's matching (gruunet_edu.evaluation.metrics)
    tp = int(rows.size)
    return tp, n_pred - tp, n_true - tp


# ------------------------------------------------------------------------------ IoU matrix
def _label_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(description, true labels, predicted labels); the description is what a message says."""
    gt = np.zeros((12, 14), np.uint16)
    gt[1:5, 1:6] = 1
    gt[6:11, 2:7] = 2
    gt[2:9, 9:13] = 3
    pred = np.zeros_like(gt)
    pred[1:6, 1:6] = 1  # overlaps true 1
    pred[7:11, 3:8] = 2  # overlaps true 2
    pred[0:3, 8:14] = 3  # small overlap with true 3
    pred[10:12, 10:14] = 4  # false positive
    gaps = np.zeros(gt.shape, np.int32)
    gaps[gt == 1], gaps[gt == 2], gaps[gt == 3] = 4, 9, 2  # labels 2, 4, 9: not consecutive
    full = np.ones((8, 10), np.uint16)  # every pixel is a nucleus: no background
    full[:, 4:] = 2
    full[5:, 7:] = 3
    full_pred = np.zeros_like(full)
    full_pred[1:7, 0:4] = 1
    full_pred[0:4, 5:10] = 2
    big = np.zeros_like(gt)
    big[gt == 1], big[gt == 2], big[gt == 3] = 300, 513, 70  # 300 and 513 do not fit in uint8
    big_pred = pred.copy()
    big_pred[pred == 1] = 257
    return [
        ("3 true and 4 predicted objects", gt, pred),
        ("true labels 2, 4 and 9 (not consecutive)", gaps, pred),
        ("an empty prediction", gt, np.zeros_like(gt)),
        ("an empty truth (no true objects)", np.zeros_like(gt), pred),
        ("an image without background (every pixel belongs to a true nucleus)", full, full_pred),
        ("labels above 255 (70, 300, 513 and 257)", big, big_pred),
    ]


def _iou_checks(fn: Callable) -> int:
    passed = 0
    for name, gt, pred in _label_cases():
        where = f"for {name}"
        gt_in, pred_in = gt.copy(), pred.copy()
        try:
            out = call(fn, gt_in, pred_in, what="your instance_iou")
        except StudentError as err:
            raise StudentError(_iou_error_hint(err.brief, name, where)) from None
        expect(
            np.array_equal(gt_in, gt) and np.array_equal(pred_in, pred),
            "your function changed the label images in place (the caller's gt or pred): the "
            "next cells use them again; work on copies or on masks such as gt == a",
        )
        expected = reference_iou_matrix(gt, pred)
        got = _as_matrix(out, expected, passed, name, where)
        if np.allclose(got, expected, atol=1e-6):
            passed += 1
            continue
        _explain_iou(got, expected, gt, pred, passed, name, where)
    return passed


def _iou_error_hint(brief: str, name: str, where: str) -> str:
    if "not consecutive" in name and "IndexError" in brief:
        return (
            f"{brief} This input has {name}: index the matrix by the position of a label in "
            "np.unique (for i, a in enumerate(ids)), not by its value."
        )
    if "empty" in name:
        return (
            f"{brief} This input has {name}: with no objects on one side the matrix is empty "
            "but still 2-d, e.g. np.zeros((len(gt_ids), len(pred_ids)))."
        )
    if "without background" in name:
        return f"{brief} This input is {name}: do not assume that label 0 occurs."
    return brief


def _as_matrix(out, expected: np.ndarray, passed: int, name: str, where: str) -> np.ndarray:
    """The student's result as a float array of the expected shape, or a Mismatch saying why."""
    n_true, n_pred = expected.shape
    if out is None:
        raise Mismatch("your instance_iou returned None: is a `return` statement missing?")
    if not isinstance(out, np.ndarray):
        raise Mismatch(
            f"your instance_iou returned a {type(out).__name__}; return a NumPy array "
            "(e.g. np.zeros((n_true, n_pred)) filled in): the next cells read its .shape"
        )
    try:
        got = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(
            f"your instance_iou must return a 2-d array of numbers, it returned {out.dtype}"
        ) from None
    if got.shape == expected.shape:
        return got
    if got.shape == (n_true + 1, n_pred + 1) or got.shape in ((n_true + 1, n_pred),):
        raise Mismatch(
            f"your matrix has shape {got.shape} {where}, expected {expected.shape}: it has a row "
            "(and column) for the background, label 0; leave label 0 out"
        )
    if "without background" in name and got.shape in (
        (n_true - 1, n_pred),
        (n_true - 1, n_pred - 1),
        (n_true, n_pred - 1),
    ):
        raise Mismatch(
            f"your matrix has shape {got.shape} {where}, expected {expected.shape}: this image "
            "has no background, so np.unique(labels)[1:] drops a real object; remove label 0 "
            "with ids = ids[ids != 0]"
        )
    if got.shape == (n_pred, n_true) and n_pred != n_true:
        raise Mismatch(
            f"your matrix has shape {got.shape} {where}, expected {expected.shape}: it is "
            "transposed; rows are true objects, columns predicted objects"
        )
    if 0 in expected.shape:
        raise Mismatch(
            f"your matrix has shape {got.shape} {where}, expected {expected.shape}: with no "
            "objects on one side the matrix is empty but still 2-d, (n_true, n_pred); "
            "np.zeros((len(gt_ids), len(pred_ids))) gives it"
        )
    raise Mismatch(
        f"your matrix has shape {got.shape} {where}, expected {expected.shape}: one row per "
        "true object and one column per predicted object, taken from np.unique without label 0 "
        "(labels need not be consecutive, so not range(1, labels.max() + 1))"
    )


def _explain_iou(got, expected, gt, pred, passed, name, where) -> None:
    if got.size and (got.min() < -1e-9 or got.max() > 1 + 1e-9):
        raise Mismatch(
            f"IoU lies between 0 and 1, yours ranges {got.min():.3g}..{got.max():.3g} {where}: "
            "divide the overlap |A n B| by the union |A u B|"
        )
    for wrong, message in iou_variants(gt, pred).values():
        if np.allclose(got, wrong, atol=1e-6):
            raise Mismatch(message)
    n_true, n_pred = expected.shape
    if n_true == n_pred and np.allclose(got.T, expected, atol=1e-6):
        raise Mismatch(
            "your matrix is transposed: rows are true objects, columns predicted objects"
        )
    if "above 255" in name and passed:
        raise Mismatch(
            f"your matrix is right for small labels but not {where}: labels are uint16 (up to "
            "65535); do not cast them to uint8 or compute in a type that wraps around above 255"
        )
    i, j = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
    gt_ids, pred_ids = np.unique(gt[gt != 0]), np.unique(pred[pred != 0])
    raise Mismatch(
        f"entry [{i}, {j}] (true label {gt_ids[i]}, predicted label {pred_ids[j]}) is "
        f"{got[i, j]:.4f} {where}, expected {expected[i, j]:.4f} = |A n B| / |A u B|; the rows "
        "and columns follow np.unique of the labels without 0"
    )


# ------------------------------------------------------------------------------ matching
def _matrix_cases() -> list[tuple[str, np.ndarray, float]]:
    m = np.array(
        [
            [0.82, 0.10, 0.00, 0.00],
            [0.05, 0.50, 0.00, 0.00],
            [0.00, 0.20, 0.45, 0.00],
        ]
    )
    row_tie = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.7]])  # true 0: two halves at exactly 0.5
    col_tie = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 0.9]])  # predicted 0: two true halves
    both = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.5]])
    return [
        ("3 true x 4 predicted objects, tau=0.5 (one pair at exactly 0.5)", m, 0.5),
        ("the same matrix, tau=0.75", m, 0.75),
        ("no predictions (shape (3, 0)), tau=0.5", np.zeros((3, 0)), 0.5),
        ("no true objects (shape (0, 2)), tau=0.5", np.zeros((0, 2)), 0.5),
        ("2 true x 2 predicted, all matched, tau=0.6", np.array([[0.9, 0.0], [0.1, 0.7]]), 0.6),
        (
            "a tie at tau=0.5: one true object (2 pixels) has IoU exactly 0.5 with two "
            "predictions (1 pixel each)",
            row_tie,
            0.5,
        ),
        (
            "a tie at tau=0.5: one prediction (2 pixels) has IoU exactly 0.5 with two true "
            "objects (1 pixel each)",
            col_tie,
            0.5,
        ),
        ("both kinds of tie at tau=0.5 in one matrix", both, 0.5),
    ]


def _as_counts(out, where: str) -> tuple[int, int, int]:
    if out is None:
        raise Mismatch("your match_counts returned None: is a `return` statement missing?")
    if isinstance(out, np.ndarray):
        out = out.tolist()
    if not isinstance(out, tuple | list):
        raise Mismatch(
            f"your match_counts must return a tuple of three integers (tp, fp, fn), it "
            f"returned a {type(out).__name__}"
        )
    if len(out) != 3:
        raise Mismatch(
            f"your match_counts must return three numbers (tp, fp, fn), it returned {len(out)}"
        )
    values = [as_numpy(v) for v in out]
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise Mismatch(
            f"your match_counts must return three integers (tp, fp, fn), it returned {out!r}"
        ) from None
    if any(f != round(f) for f in floats):
        raise Mismatch(
            f"your match_counts returned {tuple(round(f, 4) for f in floats)} {where}: TP, FP "
            "and FN are counts of objects, whole numbers (not ratios such as precision)"
        )
    return tuple(int(round(f)) for f in floats)  # type: ignore[return-value]


def _match_checks(fn: Callable) -> int:
    passed = 0
    for name, iou, tau in _matrix_cases():
        where = f"for {name}"
        given = iou.copy()
        try:
            out = call(fn, given, tau, what="your match_counts")
        except StudentError as err:
            if "zero-size" in str(err) or (0 in iou.shape and "empty" in str(err)):
                shown = name.rsplit(", tau", 1)[0]
                raise StudentError(
                    f"{err.brief} This input has {shown}: a max or argmax over an "
                    "empty axis has nothing to return; handle an empty matrix first (then "
                    "tp = 0)."
                ) from None
            raise
        expect(
            np.array_equal(given, iou),
            "your function changed the IoU matrix in place (e.g. iou[iou < tau] = 0): the "
            "caller's matrix is used again with other tau; work on a copy",
        )
        got = _as_counts(out, where)
        expected = reference_match_counts(iou, tau)
        if got == expected:
            passed += 1
            continue
        _explain_counts(got, expected, iou, tau, name, where)
    return passed


def _explain_counts(got, expected, iou, tau, name, where) -> None:
    tp, fp, fn_ = expected
    n_true, n_pred = iou.shape
    if got == (tp, fn_, fp):
        raise Mismatch(
            f"FP and FN are swapped {where}: FP counts predicted objects without a match, "
            "FN true objects without a match"
        )
    if tau != 0.5 and got == reference_match_counts(iou, 0.5):
        raise Mismatch(
            f"your counts {where} are those for tau=0.5: use the tau argument instead of a "
            "fixed threshold"
        )
    if "tie" in name and got[0] > tp:
        which = "one prediction" if "one prediction" in name else "one true object"
        if "both" in name:
            which = "one true object and one prediction"
        raise Mismatch(
            f"you found {got[0]} matches {where}; expected {tp}. At exactly tau=0.5 {which} "
            "can tie with two others, and each object may be matched at most once; count a "
            "pair only if neither of its objects is matched yet"
        )
    if min(got) < 0:
        raise Mismatch(
            f"your counts {got} {where} contain a negative number: a pair is counted twice. "
            "Each object may be matched at most once, also when it ties with two others"
        )
    strict = int((iou > tau).sum())
    if got[0] == strict != tp:
        raise Mismatch(
            f"A pair with IoU exactly equal to tau must count as a match (IoU >= tau); you "
            f"found {got[0]} {'match' if got[0] == 1 else 'matches'} {where}, expected {tp}"
        )
    if got[0] == tp and got[1] != fp:
        extra = " (that is n_true - tp)" if got[1] == n_true - tp else ""
        raise Mismatch(
            f"FP is {got[1]} {where}, expected {fp}{extra}: FP counts predicted objects without "
            "a match, n_pred - tp (columns of the matrix)"
        )
    if got[0] == tp and got[2] != fn_:
        extra = " (that is n_pred - tp)" if got[2] == n_pred - tp else ""
        raise Mismatch(
            f"FN is {got[2]} {where}, expected {fn_}{extra}: FN counts true objects without a "
            "match, n_true - tp (rows of the matrix)"
        )
    plural = "match" if got[0] == 1 else "matches"
    raise Mismatch(
        f"you found {got[0]} {plural} {where}, expected {tp}: a match is a pair with "
        "IoU >= tau, each object in at most one pair"
    )


def known_mistake_outputs() -> list[tuple]:
    """(mistake, reference, what the mistake gives, atol, rtol) on every input of the IoU check
    (used by the tests; the matching check compares whole numbers exactly)."""
    rows = []
    for _, gt, pred in _label_cases():
        expected = reference_iou_matrix(gt, pred)
        for name, (wrong, _) in iou_variants(gt, pred).items():
            rows.append((f"instance_iou: {name}", expected, wrong, 1e-6, 0.0))
    return rows


def match_counts_of_labels(gt: np.ndarray, pred: np.ndarray, tau: float = 0.5):
    """(TP, FP, FN) of two label images with the package's matching (for comparisons)."""
    r = match_instances(gt, pred, tau)
    return r.tp, r.fp, r.fn


# ------------------------------------------------------------------------------ the exercises
_exercise = partial(exercise, hints=_HINTS, notebook=NOTEBOOK)

iou_exercise = _exercise("instance_iou", "Instance IoU matrix", _iou_checks, reference_instance_iou)
check_instance_iou = iou_exercise.check

match_exercise = _exercise(
    "match_counts", "Matching at IoU >= tau", _match_checks, reference_match_counts
)
check_match_counts = match_exercise.check
