"""Pixel and instance metrics on small label images worked out by hand."""

import math

import numpy as np
import pytest

from gruunet_edu.evaluation.metrics import (
    average_precision,
    dice_score,
    evaluate_dataset,
    evaluate_instances,
    iou_matrix,
    iou_score,
    match_instances,
    seg_measure,
)


def square(labels, label, y, x, h, w):
    labels[y : y + h, x : x + w] = label
    return labels


def two_nuclei():
    truth = np.zeros((12, 12), np.uint16)
    square(truth, 1, 1, 1, 4, 4)
    square(truth, 2, 6, 6, 4, 4)
    return truth


def test_pixel_dice_and_iou_by_hand():
    pred = np.zeros((3, 3), int)
    truth = np.zeros((3, 3), int)
    pred[0, :2] = 1  # 2 pixels: (0, 0), (0, 1)
    truth[0, 1:] = 1  # with (1, 2) below, 3 pixels: (0, 1), (0, 2), (1, 2)
    truth[1, 2] = 1
    # |P| = 2, |T| = 3, |P n T| = 1, |P u T| = 4
    assert dice_score(pred, truth) == pytest.approx(2 * 1 / 5)
    assert iou_score(pred, truth) == pytest.approx(1 / 4)
    assert dice_score(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_perfect_prediction_scores_one():
    truth = two_nuclei()
    pred = np.where(truth == 1, 7, np.where(truth == 2, 3, 0))  # other label numbers
    summary = evaluate_instances(truth, pred)
    assert summary["dice"] == 1.0 and summary["iou"] == 1.0
    assert summary["ap"] == [1.0] * 10 and summary["mean_ap"] == 1.0
    assert summary["f1_50"] == 1.0 and summary["seg"] == 1.0


def test_empty_prediction_scores_zero_and_empty_truth_is_perfect_when_nothing_predicted():
    truth = two_nuclei()
    empty = np.zeros_like(truth)
    summary = evaluate_instances(truth, empty)
    assert summary["dice"] == 0.0 and summary["mean_ap"] == 0.0
    assert summary["recall50"] == 0.0 and summary["seg"] == 0.0
    both = evaluate_instances(empty, empty)
    assert both["mean_ap"] == 1.0 and both["dice"] == 1.0
    spurious = evaluate_instances(empty, truth)
    assert spurious["precision50"] == 0.0 and spurious["ap50"] == 0.0
    assert math.isnan(seg_measure(empty, truth))


def test_split_nucleus_by_hand():
    truth = np.zeros((6, 6), np.uint16)
    square(truth, 1, 1, 1, 4, 4)  # 16 px
    pred = np.zeros_like(truth)
    square(pred, 1, 1, 1, 4, 3)  # 12 px -> IoU 12/16 = 0.75
    square(pred, 2, 1, 4, 4, 1)  # 4 px  -> IoU 4/16 = 0.25
    np.testing.assert_allclose(iou_matrix(truth, pred), [[0.75, 0.25]])
    m = match_instances(truth, pred, 0.5)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert m.precision == 0.5 and m.recall == 1.0 and m.f1 == pytest.approx(2 / 3)
    assert m.average_precision == 0.5 and m.spurious == [2]
    ap = average_precision(truth, pred)
    # matched at tau = 0.50 ... 0.75 (AP = 1/2), unmatched above (AP = 0)
    assert ap["ap"] == [0.5] * 6 + [0.0] * 4
    assert ap["mean_ap"] == pytest.approx(0.3)
    assert seg_measure(truth, pred) == pytest.approx(0.75)  # piece 1 covers 12 > 8 pixels


def test_merged_pair_by_hand():
    truth = np.zeros((6, 10), np.uint16)
    square(truth, 1, 1, 1, 4, 4)  # 16 px
    square(truth, 2, 1, 5, 4, 4)  # 16 px, touching
    pred = (truth > 0).astype(np.uint16)  # one object of 32 px
    np.testing.assert_allclose(iou_matrix(truth, pred), [[0.5], [0.5]])
    m = match_instances(truth, pred, 0.5)
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)  # one-to-one: the merged object matches only one
    assert m.precision == 1.0 and m.recall == 0.5 and m.average_precision == 0.5
    assert match_instances(truth, pred, 0.55).tp == 0
    # SEG: the merged object covers all of each nucleus: Jaccard 16/32 for both
    assert seg_measure(truth, pred) == pytest.approx(0.5)


def test_seg_by_hand():
    truth = np.zeros((8, 10), np.uint16)
    truth[0, :10] = 1  # object 1: 10 px
    truth[2, :10] = 2  # object 2: 10 px
    pred = np.zeros_like(truth)
    pred[0, :6] = 5  # covers 6 of object 1 ...
    pred[1, :2] = 5  # ... plus 2 outside: Jaccard 6 / (10 + 8 - 6) = 0.5
    pred[2, :4] = 9  # covers only 4 of 10 of object 2: not more than half -> 0
    assert seg_measure(truth, pred) == pytest.approx((0.5 + 0.0) / 2)


def test_iou_matrix_uses_label_order_with_gaps():
    truth = np.zeros((4, 4), int)
    truth[0, 0], truth[3, 3] = 5, 2
    pred = np.zeros((4, 4), int)
    pred[3, 3] = 1
    np.testing.assert_allclose(iou_matrix(truth, pred), [[1.0], [0.0]])  # rows: labels 2, 5


def test_dataset_pools_counts_over_images():
    truth = two_nuclei()
    one_missing = np.where(truth == 2, 0, truth)
    summary = evaluate_dataset([truth, truth], [truth, one_missing])
    # 4 true objects, 3 matched, 0 spurious
    assert summary["n_true"] == 4 and summary["n_pred"] == 3
    assert summary["ap50"] == pytest.approx(3 / 4)
    assert summary["recall50"] == pytest.approx(3 / 4)
    assert summary["seg"] == pytest.approx(3 / 4)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        match_instances(np.zeros((2, 2), int), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="integers"):
        match_instances(np.zeros((2, 2)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="truth images"):
        evaluate_dataset([np.zeros((2, 2), int)], [])


def test_foreground_counts_agree_for_arrays_and_tensors():
    import torch

    from gruunet_edu.evaluation.metrics import dice_from_counts, foreground_counts

    rng = np.random.default_rng(0)
    pred, truth = rng.integers(0, 3, (2, 16, 16)), rng.integers(0, 3, (2, 16, 16))
    counts = foreground_counts(pred, truth)
    assert counts == foreground_counts(torch.from_numpy(pred), torch.from_numpy(truth))
    inter, p_sum, t_sum = counts
    assert inter == int(((pred != 0) & (truth != 0)).sum()) and p_sum == int((pred != 0).sum())
    assert dice_from_counts(*counts) == pytest.approx(dice_score(pred, truth))
    assert dice_from_counts(0, 0, 0) == 1.0
