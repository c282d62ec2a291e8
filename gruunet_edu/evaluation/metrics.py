"""Segmentation metrics: pixel overlap, instance matching, average precision and SEG.

Pixel metrics compare two masks (any non-zero value is foreground):

- Dice  ``2 |P n T| / (|P| + |T|)``;
- IoU (Jaccard)  ``|P n T| / |P u T|``.

Instance metrics compare two label images (0 = background, each object one integer):

- the IoU matrix between every true object i and predicted object j, from one contingency table
  (``np.bincount`` over the pairs of labels at each pixel);
- one-to-one matching at ``IoU >= tau`` (Hungarian assignment with
  ``scipy.optimize.linear_sum_assignment``, :func:`match`; for ``tau > 0.5`` every object can
  overlap at most one other by that much, so the matching is then unique; at exactly
  ``tau = 0.5`` an object can tie with two others that each cover half of it, e.g. a 2-pixel
  nucleus predicted as two 1-pixel objects, and only one of them is matched), giving true
  positives TP (matched pairs), false positives FP (unmatched predictions) and false negatives
  FN (unmatched true objects);
- precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 ``2 TP / (2 TP + FP + FN)``;
- average precision in the convention of the 2018 Data Science Bowl and StarDist (Schmidt et al.
  2018): ``AP_tau = TP / (TP + FP + FN)`` at each threshold tau = 0.50, 0.55, ..., 0.95, and their
  mean (not the area under a precision-recall curve as in object detection);
- the Cell Tracking Challenge SEG measure (Ulman et al., Nature Methods 2017): for each reference
  object R, the Jaccard index ``|R n S| / |R u S|`` with the predicted object S that covers more
  than half of R (``|R n S| > 0.5 |R|``; at most one S can), or 0 if there is none; SEG is the
  mean over reference objects.

When there is nothing to count (e.g. no predictions, so precision = 0/0) the value is 0, except
that an empty prediction of an empty truth scores 1 everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

DEFAULT_TAUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50, 0.55, ..., 0.95


# ---------------------------------------------------------------- pixel metrics


def _masks(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as boolean masks (non-zero = foreground), of the same shape."""
    p, t = np.asarray(pred) != 0, np.asarray(truth) != 0
    if p.shape != t.shape:
        raise ValueError(f"shapes differ: prediction {p.shape}, truth {t.shape}")
    return p, t


def foreground_counts(pred, truth) -> tuple[int, int, int]:
    """``(|P n T|, |P|, |T|)`` of two masks (non-zero = foreground): the counts a pooled Dice sums
    over images (or over processes). NumPy arrays or torch tensors (on any device)."""
    if isinstance(pred, torch.Tensor) and isinstance(truth, torch.Tensor):
        p, t = pred != 0, truth != 0
        if p.shape != t.shape:
            raise ValueError(f"shapes differ: prediction {tuple(p.shape)}, truth {tuple(t.shape)}")
        return int((p & t).sum()), int(p.sum()), int(t.sum())
    p, t = _masks(pred, truth)
    return int(np.logical_and(p, t).sum()), int(p.sum()), int(t.sum())


def dice_from_counts(intersection: float, pred_sum: float, truth_sum: float) -> float:
    """Dice ``2 |P n T| / (|P| + |T|)`` from (pooled) counts; 1 when both masks are empty."""
    total = pred_sum + truth_sum
    return 1.0 if total == 0 else 2.0 * float(intersection) / float(total)


def dice_score(pred, truth) -> float:
    """Dice ``2 |P n T| / (|P| + |T|)`` of two masks (non-zero = foreground); 1 if both empty."""
    return dice_from_counts(*foreground_counts(pred, truth))


def iou_score(pred, truth) -> float:
    """IoU (Jaccard) ``|P n T| / |P u T|`` of two masks; 1 if both empty."""
    p, t = _masks(pred, truth)
    union = int(np.logical_or(p, t).sum())
    return 1.0 if union == 0 else int(np.logical_and(p, t).sum()) / union


# ---------------------------------------------------------------- instance overlap


def _check_labels(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"label images differ in shape: truth {gt.shape}, prediction {pred.shape}")
    for name, arr in (("truth", gt), ("prediction", pred)):
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise ValueError(f"{name} labels must be integers, got {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} labels must be >= 0")
    return gt, pred


def _dense(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to 0..n (0 stays background); returns (object ids, dense image)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    if ids.size and ids[0] == 0:
        return ids[1:], inverse
    return ids, inverse + 1  # no background pixel: shift so that object k is k+1


def contingency(gt, pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel counts of every (true label, predicted label) pair.

    Returns ``(table, gt_ids, pred_ids)``: ``table[i, j]`` counts pixels with dense true label i
    and dense predicted label j, row/column 0 being background; ``gt_ids[i-1]`` and
    ``pred_ids[j-1]`` are the original labels of row i and column j.
    """
    gt, pred = _check_labels(gt, pred)
    gt_ids, g = _dense(gt)
    pred_ids, p = _dense(pred)
    n_g, n_p = gt_ids.size + 1, pred_ids.size + 1
    table = np.bincount((g.ravel() * n_p + p.ravel()).astype(np.int64), minlength=n_g * n_p)
    return table.reshape(n_g, n_p), gt_ids, pred_ids


def _iou_from_table(table: np.ndarray) -> np.ndarray:
    inter = table[1:, 1:].astype(np.float64)  # (n_gt, n_pred)
    area_gt = table[1:, :].sum(axis=1, keepdims=True)  # (n_gt, 1)
    area_pred = table[:, 1:].sum(axis=0, keepdims=True)  # (1, n_pred)
    union = area_gt + area_pred - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_matrix(gt_labels, pred_labels) -> np.ndarray:
    """IoU between each true object (rows) and predicted object (columns), in label order.

    Shape ``(n_true, n_pred)``; background (0) excluded. Labels need not be consecutive.
    """
    table, _, _ = contingency(gt_labels, pred_labels)
    return _iou_from_table(table)


# ---------------------------------------------------------------- matching


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num) / den if den > 0 else empty


@dataclass
class MatchResult:
    """Outcome of one-to-one matching at IoU >= tau (see module docstring for the formulas)."""

    tau: float
    tp: int
    fp: int
    fn: int
    n_true: int
    n_pred: int
    precision: float
    recall: float
    f1: float
    average_precision: float  # TP / (TP + FP + FN), DSB / StarDist convention
    mean_matched_iou: float  # mean IoU of the matched pairs (0 if none)
    pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (true, pred, IoU)
    missed: list[int] = field(default_factory=list)  # true labels left unmatched (FN)
    spurious: list[int] = field(default_factory=list)  # predicted labels left unmatched (FP)

    def to_dict(self, with_pairs: bool = False) -> dict:
        d = asdict(self)
        if not with_pairs:
            for key in ("pairs", "missed", "spurious"):
                d.pop(key)
        return d


def _counts_to_result(tau, tp, fp, fn, n_true, n_pred, ious, pairs=(), missed=(), spurious=()):
    both_empty = n_true == 0 and n_pred == 0
    empty = 1.0 if both_empty else 0.0
    return MatchResult(
        tau=float(tau),
        tp=int(tp),
        fp=int(fp),
        fn=int(fn),
        n_true=int(n_true),
        n_pred=int(n_pred),
        precision=_ratio(tp, tp + fp, empty),
        recall=_ratio(tp, tp + fn, empty),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, empty),
        average_precision=_ratio(tp, tp + fp + fn, empty),
        mean_matched_iou=float(np.mean(ious)) if len(ious) else empty,
        pairs=list(pairs),
        missed=list(missed),
        spurious=list(spurious),
    )


def match(iou: np.ndarray, tau: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the one-to-one matching with IoU >= tau maximising total IoU.

    ``iou`` is the (n_true, n_pred) matrix of :func:`iou_matrix`; ``len(rows)`` is TP. Each row and
    each column appears at most once, also when an object ties with two others at exactly tau.
    """
    iou = np.asarray(iou, dtype=np.float64)
    if iou.ndim != 2:
        raise ValueError(f"expected an IoU matrix of shape (n_true, n_pred), got {iou.shape}")
    if iou.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    eligible = iou >= tau
    if not eligible.any():
        return np.zeros(0, int), np.zeros(0, int)
    # Maximise the summed IoU over eligible pairs; ineligible pairs score 0 and are dropped.
    score = np.where(eligible, iou, 0.0)
    rows, cols = linear_sum_assignment(score, maximize=True)
    keep = eligible[rows, cols]
    return rows[keep], cols[keep]


def match_instances(gt, pred, tau: float = 0.5) -> MatchResult:
    """Match true and predicted objects one-to-one at ``IoU >= tau``; counts and scores."""
    table, gt_ids, pred_ids = contingency(gt, pred)
    return _match_from_table(table, gt_ids, pred_ids, tau)


def _match_from_table(table, gt_ids, pred_ids, tau) -> MatchResult:
    iou = _iou_from_table(table)
    rows, cols = match(iou, tau)
    n_true, n_pred = iou.shape
    tp = rows.size
    pairs = [
        (int(gt_ids[r]), int(pred_ids[c]), float(iou[r, c]))
        for r, c in zip(rows, cols, strict=True)
    ]
    missed = [int(x) for x in np.delete(gt_ids, rows)]
    spurious = [int(x) for x in np.delete(pred_ids, cols)]
    return _counts_to_result(
        tau, tp, n_pred - tp, n_true - tp, n_true, n_pred, iou[rows, cols], pairs, missed, spurious
    )


def average_precision(gt, pred, taus=DEFAULT_TAUS) -> dict:
    """Matching at each threshold in ``taus``: ``{"taus", "ap", "precision", "recall", "f1",
    "mean_ap"}`` (lists aligned with ``taus``; ``mean_ap`` averages ``ap`` over them).

    ``ap`` is ``TP / (TP + FP + FN)`` (Data Science Bowl 2018 / StarDist convention).
    """
    table, gt_ids, pred_ids = contingency(gt, pred)
    results = [_match_from_table(table, gt_ids, pred_ids, float(t)) for t in taus]
    return _summarise(results)


def _summarise(results: list[MatchResult]) -> dict:
    out = {
        "taus": [round(r.tau, 4) for r in results],
        "ap": [r.average_precision for r in results],
        "precision": [r.precision for r in results],
        "recall": [r.recall for r in results],
        "f1": [r.f1 for r in results],
    }
    out["mean_ap"] = float(np.mean(out["ap"])) if results else 0.0
    return out


# ---------------------------------------------------------------- Cell Tracking Challenge SEG


def _seg_scores(table: np.ndarray) -> np.ndarray:
    """Per reference object: Jaccard with the prediction covering more than half of it, else 0."""
    iou = _iou_from_table(table)  # (n_gt, n_pred)
    if iou.shape[0] == 0:
        return np.zeros(0)
    if iou.shape[1] == 0:
        return np.zeros(iou.shape[0])
    inter = table[1:, 1:]
    area_gt = table[1:, :].sum(axis=1)
    best = inter.argmax(axis=1)  # the only candidate that can cover > 50%
    covered = 2 * inter[np.arange(len(best)), best] > area_gt
    return np.where(covered, iou[np.arange(len(best)), best], 0.0)


def seg_measure(gt, pred) -> float:
    """Cell Tracking Challenge SEG: mean over reference objects of the Jaccard index with the
    predicted object covering more than half of it (0 if none). NaN when there is no reference
    object (SEG is undefined then)."""
    table, _, _ = contingency(gt, pred)
    scores = _seg_scores(table)
    return float(scores.mean()) if scores.size else float("nan")


# ---------------------------------------------------------------- summaries


def evaluate_instances(gt, pred, taus=DEFAULT_TAUS) -> dict:
    """JSON-able summary for one image: pixel Dice/IoU, AP per tau and mean, F1 at 0.5, SEG."""
    return evaluate_dataset([gt], [pred], taus)


def evaluate_dataset(gts, preds, taus=DEFAULT_TAUS) -> dict:
    """Like :func:`evaluate_instances` over several images.

    Object counts (TP, FP, FN) are pooled over all images before the ratios are taken, and SEG is
    the mean over all reference objects of all images (as the Cell Tracking Challenge does); the
    pixel Dice and IoU pool all pixels. Keys: ``taus, ap, precision, recall, f1, mean_ap`` (as in
    :func:`average_precision`), ``ap50, precision50, recall50, f1_50`` (at IoU 0.5), ``seg``,
    ``dice``, ``iou``, ``n_images``, ``n_true``, ``n_pred``. With no reference object at all, SEG
    is 1 if nothing was predicted and 0 otherwise (so that the summary stays valid JSON).
    """
    gts, preds = list(gts), list(preds)
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} truth images but {len(preds)} predictions")
    all_taus = [float(t) for t in taus]
    has_50 = any(abs(t - 0.5) < 1e-9 for t in all_taus)
    match_taus = all_taus if has_50 else [*all_taus, 0.5]
    counts = np.zeros((len(match_taus), 3), dtype=np.int64)  # tp, fp, fn per tau
    n_true = n_pred = 0
    inter = p_sum = t_sum = union = 0
    seg_scores: list[np.ndarray] = []
    for gt, pred in zip(gts, preds, strict=True):
        table, gt_ids, pred_ids = contingency(gt, pred)
        n_true += gt_ids.size
        n_pred += pred_ids.size
        for k, tau in enumerate(match_taus):
            r = _match_from_table(table, gt_ids, pred_ids, tau)
            counts[k] += (r.tp, r.fp, r.fn)
        seg_scores.append(_seg_scores(table))
        counts_i = foreground_counts(pred, gt)
        inter, p_sum, t_sum = inter + counts_i[0], p_sum + counts_i[1], t_sum + counts_i[2]
        union += counts_i[1] + counts_i[2] - counts_i[0]
    results = [
        _counts_to_result(tau, tp, fp, fn, n_true, n_pred, [])
        for tau, (tp, fp, fn) in zip(match_taus, counts, strict=True)
    ]
    at50 = next(r for r in results if abs(r.tau - 0.5) < 1e-9)
    summary = _summarise(results[: len(all_taus)])
    all_seg = np.concatenate(seg_scores) if seg_scores else np.zeros(0)
    summary.update(
        {
            "ap50": at50.average_precision,
            "precision50": at50.precision,
            "recall50": at50.recall,
            "f1_50": at50.f1,
            "seg": float(all_seg.mean()) if all_seg.size else (1.0 if n_pred == 0 else 0.0),
            "dice": dice_from_counts(inter, p_sum, t_sum),
            "iou": 1.0 if union == 0 else inter / union,
            "n_images": len(gts),
            "n_true": n_true,
            "n_pred": n_pred,
        }
    )
    return summary
