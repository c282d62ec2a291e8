"""Known mistakes in the IoU matrix of notebook 05: the matrix each mistake gives, and its message.

``gt`` and ``pred`` are label images (0 = background); the matrix is (n_true, n_pred).
"""

from __future__ import annotations

import numpy as np

from gruunet_edu.evaluation.metrics import contingency
from gruunet_edu.evaluation.metrics import iou_matrix as reference_iou_matrix


def iou_variants(gt: np.ndarray, pred: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
    """name -> (the matrix the mistake gives, message)."""
    table, _, _ = contingency(gt, pred)
    inter = table[1:, 1:].astype(np.float64)  # (n_true, n_pred)
    a = table[1:, :].sum(axis=1, keepdims=True).astype(np.float64)  # (n_true, 1)
    b = table[:, 1:].sum(axis=0, keepdims=True).astype(np.float64)  # (1, n_pred)
    iou = reference_iou_matrix(gt, pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "dice": (
                np.nan_to_num(2 * inter / (a + b)),
                "these are Dice values 2|A n B| / (|A| + |B|); IoU divides by the union "
                "|A u B| = |A| + |B| - |A n B|",
            ),
            "union twice": (
                np.nan_to_num(inter / (a + b)),
                "your union counts the overlap twice: |A u B| = |A| + |B| - |A n B|",
            ),
            "true area": (
                np.nan_to_num(inter / np.broadcast_to(a, inter.shape)),
                "you divide the overlap by the area of the true object; IoU divides by the union",
            ),
            "pred area": (
                np.nan_to_num(inter / np.broadcast_to(b, inter.shape)),
                "you divide the overlap by the area of the predicted object; IoU divides by the "
                "union",
            ),
            "integer division": (
                np.floor(iou),
                "your values are whole numbers: integer division (//) or an integer array "
                "rounds the IoU down to 0; use / and a float array (np.zeros gives float64)",
            ),
        }
