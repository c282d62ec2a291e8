"""Mutation suite for the exercises of notebooks 04-06: plausible wrong answers, as students write
them, must each be rejected with a message that names the mistake, and correct answers written
differently from the solution must pass.

Each wrong answer is (id, function, a phrase the message must contain). The counts per exercise
are asserted at the bottom (at least 12 wrong answers and 2 correct variants each).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gruunet_edu.exercises import REGISTRY
from gruunet_edu.exercises import nb4_training as nb4
from gruunet_edu.exercises import nb5_evaluation as nb5
from gruunet_edu.exercises import nb6_hidden_states as nb6
from gruunet_edu.exercises._checks_common import moves

# ============================================================================== 04 soft Dice


def _oh(target, k):
    return F.one_hot(target, k).permute(0, 3, 1, 2).float()


def dice_ok_loop(logits, target, smooth=1.0):
    p = torch.softmax(logits, dim=1)
    losses = []
    for c in range(logits.shape[1]):
        pc, gc = p[:, c], (target == c).float()
        losses.append(1 - (2 * (pc * gc).sum() + smooth) / (pc.sum() + gc.sum() + smooth))
    return torch.stack(losses).mean()


def dice_ok_einsum(logits, target, smooth=1.0):
    p = logits.softmax(1)
    g = F.one_hot(target.long(), num_classes=p.size(1)).movedim(-1, 1).to(p.dtype)
    inter = torch.einsum("bkhw,bkhw->k", p, g)
    return (1 - (2 * inter + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth)).mean()


def dice_raw_logits(logits, target, smooth=1.0):
    g = _oh(target, logits.shape[1])
    d = (2 * (logits * g).sum((0, 2, 3)) + smooth) / (
        logits.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth
    )
    return 1 - d.mean()


def _dice_with(p, g, smooth, dims=(0, 2, 3)):
    return (2 * (p * g).sum(dims) + smooth) / (p.sum(dims) + g.sum(dims) + smooth)


def dice_sigmoid(logits, target, smooth=1.0):
    return 1 - _dice_with(torch.sigmoid(logits), _oh(target, logits.shape[1]), smooth).mean()


def dice_softmax_last_axis(logits, target, smooth=1.0):
    return 1 - _dice_with(torch.softmax(logits, -1), _oh(target, logits.shape[1]), smooth).mean()


def dice_no_smooth(logits, target, smooth=1.0):
    return 1 - _dice_with(torch.softmax(logits, 1), _oh(target, logits.shape[1]), 0.0).mean()


def dice_fixed_smooth(logits, target, smooth=1.0):
    return 1 - _dice_with(torch.softmax(logits, 1), _oh(target, logits.shape[1]), 1.0).mean()


def dice_per_image(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    return 1 - _dice_with(p, g, smooth, dims=(2, 3)).mean()


def dice_sum_over_classes(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    return (1 - _dice_with(p, g, smooth)).sum()


def dice_coefficient(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    return _dice_with(p, g, smooth).mean()


def dice_three_classes(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, 3)
    return 1 - _dice_with(p, g, smooth).mean()


def dice_argmax(logits, target, smooth=1.0):
    k = logits.shape[1]
    hard = _oh(logits.argmax(1), k)
    return 1 - _dice_with(hard, _oh(target, k), smooth).mean()


def dice_detached_denominator(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    den = (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth).detach()
    return 1 - ((2 * (p * g).sum((0, 2, 3)) + smooth) / den).mean()


def dice_no_two(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    d = ((p * g).sum((0, 2, 3)) + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth)
    return 1 - d.mean()


def dice_no_background(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    return 1 - _dice_with(p, g, smooth)[1:].mean()


def dice_item(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    return torch.tensor(1 - _dice_with(p, g, smooth).mean().item())


def dice_in_place_target(logits, target, smooth=1.0):
    t = target.unsqueeze_(1)  # (B, 1, H, W)
    g = torch.zeros_like(logits).scatter_(1, t, 1.0)
    out = 1 - _dice_with(torch.softmax(logits, 1), g, smooth).mean()
    return out


def dice_pooled(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), _oh(target, logits.shape[1])
    return 1 - (2 * (p * g).sum() + smooth) / (p.sum() + g.sum() + smooth)


def dice_onehot_not_permuted(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), F.one_hot(target, logits.shape[1]).float()
    return 1 - _dice_with(p, g, smooth).mean()


def dice_onehot_inferred_k(logits, target, smooth=1.0):
    p, g = torch.softmax(logits, 1), F.one_hot(target).permute(0, 3, 1, 2).float()
    return 1 - _dice_with(p, g, smooth).mean()


DICE_RIGHT = [("loop over classes", dice_ok_loop), ("einsum", dice_ok_einsum)]
DICE_WRONG = [
    ("raw logits", dice_raw_logits, "softmax is missing"),
    ("sigmoid", dice_sigmoid, "sigmoid"),
    ("softmax over the last axis", dice_softmax_last_axis, "wrong class axis"),
    ("no smoothing", dice_no_smooth, "smoothing is missing"),
    ("smooth hard-wired to 1", dice_fixed_smooth, "the smooth argument"),
    ("one Dice per image", dice_per_image, "one Dice per image"),
    ("sum over classes", dice_sum_over_classes, "sum over the classes"),
    ("Dice not 1 - Dice", dice_coefficient, "Dice coefficient itself"),
    ("one_hot(target, 3)", dice_three_classes, "logits.shape[1]"),
    ("argmax", dice_argmax, "argmax"),
    (
        "detached denominator",
        dice_detached_denominator,
        "no gradient flows through the denominator",
    ),
    ("factor 2 missing", dice_no_two, "factor 2"),
    ("background left out", dice_no_background, "background"),
    (".item() then a new tensor", dice_item, "no gradient"),
    ("target.unsqueeze_ in place", dice_in_place_target, "changed the target"),
    ("all classes pooled", dice_pooled, "single Dice"),
    ("one-hot not permuted", dice_onehot_not_permuted, "permute(0, 3, 1, 2)"),
    ("one_hot without num_classes", dice_onehot_inferred_k, "logits.shape[1]"),
]

# ============================================================================== 04 focal loss


def focal_ok_ce(logits, target, gamma=2.0):
    ce = F.cross_entropy(logits, target, reduction="none")  # (B, H, W) = -log p_t
    pt = torch.exp(-ce)
    return ((1 - pt) ** gamma * ce).mean()


def focal_ok_onehot(logits, target, gamma=2.0):
    log_p = F.log_softmax(logits, dim=1)
    g = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(log_p.dtype)
    log_pt = (log_p * g).sum(dim=1)
    return torch.mean(-torch.pow(1 - log_pt.exp(), gamma) * log_pt)


def _log_pt(logits, target):
    return torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)


def focal_ce_only(logits, target, gamma=2.0):
    return -_log_pt(logits, target).mean()


def focal_pt_power(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -(lp.exp() ** gamma * lp).mean()


def focal_times_gamma(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -((1 - lp.exp()) * gamma * lp).mean()


def focal_sign(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return ((1 - lp.exp()) ** gamma * lp).mean()


def focal_sum(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -((1 - lp.exp()) ** gamma * lp).sum()


def focal_log_of_softmax(logits, target, gamma=2.0):
    p = torch.softmax(logits, dim=1)
    pt = p.gather(1, target.unsqueeze(1)).squeeze(1)
    return (-((1 - pt) ** gamma) * torch.log(pt)).mean()


def focal_detached_factor(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    w = (1 - lp.exp().detach()) ** gamma
    return -(w * lp).mean()


def focal_onehot_mean(logits, target, gamma=2.0):
    log_p = torch.log_softmax(logits, 1)
    g = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    return -((1 - log_p.exp()) ** gamma * log_p * g).mean()  # mean over (B, K, H, W)


def focal_per_image_sum(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -((1 - lp.exp()) ** gamma * lp).mean(dim=(1, 2)).sum()


def focal_gamma_two(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -((1 - lp.exp()) ** 2 * lp).mean()


def focal_factor_of_mean(logits, target, gamma=2.0):
    ce = F.cross_entropy(logits, target)
    return (1 - torch.exp(-ce)) ** gamma * ce


def focal_three_classes(logits, target, gamma=2.0):
    log_p = torch.log_softmax(logits, 1)
    g = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    lp = (log_p * g).sum(1)
    return -((1 - lp.exp()) ** gamma * lp).mean()


def focal_softmax_dim0(logits, target, gamma=2.0):
    lp = torch.log_softmax(logits, 0).gather(1, target.unsqueeze(1)).squeeze(1)
    return -((1 - lp.exp()) ** gamma * lp).mean()


def focal_no_reduction(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -((1 - lp.exp()) ** gamma * lp)


def focal_unsqueeze_in_place(logits, target, gamma=2.0):
    lp = torch.log_softmax(logits, 1).gather(1, target.unsqueeze_(1)).squeeze(1)
    return -((1 - lp.exp()) ** gamma * lp).mean()


def focal_gather_without_unsqueeze(logits, target, gamma=2.0):
    lp = torch.log_softmax(logits, 1).gather(1, target).squeeze(1)
    return -((1 - lp.exp()) ** gamma * lp).mean()


def focal_clamped_log(logits, target, gamma=2.0):
    pt = torch.softmax(logits, 1).gather(1, target[:, None])[:, 0]
    return -((1 - pt) ** gamma * torch.log(pt.clamp(min=1e-7))).mean()


def focal_alpha(logits, target, gamma=2.0):
    lp = _log_pt(logits, target)
    return -(0.25 * (1 - lp.exp()) ** gamma * lp).mean()


FOCAL_RIGHT = [("via cross_entropy", focal_ok_ce), ("one-hot sum", focal_ok_onehot)]
FOCAL_WRONG = [
    ("plain cross-entropy", focal_ce_only, "plain cross-entropy"),
    ("p_t ** gamma", focal_pt_power, "p_t ** gamma"),
    ("times gamma", focal_times_gamma, "multiply by gamma"),
    ("sign flipped", focal_sign, "sign is flipped"),
    ("sum over pixels", focal_sum, "you sum over pixels"),
    ("log(softmax)", focal_log_of_softmax, "log_softmax"),
    ("detached factor", focal_detached_factor, "no gradient flows through the modulating factor"),
    ("mean over the one-hot", focal_onehot_mean, "divided by K"),
    ("per-image mean summed", focal_per_image_sum, "sum over the batch"),
    ("gamma hard-wired to 2", focal_gamma_two, "the gamma argument"),
    ("factor of the mean", focal_factor_of_mean, "mean cross-entropy"),
    ("one_hot(target, 3)", focal_three_classes, "logits.shape[1]"),
    ("softmax over dim 0", focal_softmax_dim0, "wrong class axis"),
    ("no reduction", focal_no_reduction, "per pixel"),
    ("target.unsqueeze_ in place", focal_unsqueeze_in_place, "changed the target"),
    ("gather without unsqueeze", focal_gather_without_unsqueeze, "target.unsqueeze(1)"),
    ("log of a clamped softmax", focal_clamped_log, "log_softmax"),
    ("RetinaNet's alpha = 0.25", focal_alpha, "alpha"),
]

# ============================================================================== 05 IoU matrix


def _nonzero_ids(x):
    ids = np.unique(x)
    return ids[ids != 0]


def iou_ok_bincount(gt, pred):
    g_ids, p_ids = _nonzero_ids(gt), _nonzero_ids(pred)
    out = np.zeros((g_ids.size, p_ids.size))
    for i, a in enumerate(g_ids):
        ma = gt == a
        for j, b in enumerate(p_ids):
            mb = pred == b
            inter = (ma & mb).sum()
            out[i, j] = inter / (ma.sum() + mb.sum() - inter)
    return out


def iou_ok_sets(gt, pred):
    g_ids = sorted(set(np.asarray(gt).ravel().tolist()) - {0})
    p_ids = sorted(set(np.asarray(pred).ravel().tolist()) - {0})
    rows = []
    for a in g_ids:
        row = []
        for b in p_ids:
            inter = np.count_nonzero((gt == a) & (pred == b))
            union = np.count_nonzero((gt == a) | (pred == b))
            row.append(inter / union)
        rows.append(row)
    return np.array(rows, dtype=float).reshape(len(g_ids), len(p_ids))


def _iou_loop(gt, pred, g_ids, p_ids, pair):
    out = np.zeros((len(g_ids), len(p_ids)))
    for i, a in enumerate(g_ids):
        for j, b in enumerate(p_ids):
            out[i, j] = pair(gt == a, pred == b)
    return out


def _iou(ma, mb):
    return np.logical_and(ma, mb).sum() / np.logical_or(ma, mb).sum()


def iou_with_background(gt, pred):
    return _iou_loop(gt, pred, np.unique(gt), np.unique(pred), _iou)


def iou_transposed(gt, pred):
    return _iou_loop(pred, gt, _nonzero_ids(pred), _nonzero_ids(gt), _iou)


def iou_dice(gt, pred):
    def dice(ma, mb):
        return 2 * (ma & mb).sum() / (ma.sum() + mb.sum())

    return _iou_loop(gt, pred, _nonzero_ids(gt), _nonzero_ids(pred), dice)


def iou_range_labels(gt, pred):
    return _iou_loop(
        gt, pred, range(1, int(gt.max()) + 1), range(1, int(pred.max()) + 1), _iou_nan_safe
    )


def _iou_nan_safe(ma, mb):
    union = np.logical_or(ma, mb).sum()
    return np.logical_and(ma, mb).sum() / union if union else 0.0


def iou_drop_first(gt, pred):
    return _iou_loop(gt, pred, np.unique(gt)[1:], np.unique(pred)[1:], _iou)


def iou_union_twice(gt, pred):
    def f(ma, mb):
        return (ma & mb).sum() / (ma.sum() + mb.sum())

    return _iou_loop(gt, pred, _nonzero_ids(gt), _nonzero_ids(pred), f)


def iou_over_true_area(gt, pred):
    def f(ma, mb):
        return (ma & mb).sum() / ma.sum()

    return _iou_loop(gt, pred, _nonzero_ids(gt), _nonzero_ids(pred), f)


def iou_index_by_label(gt, pred):
    out = np.zeros((len(_nonzero_ids(gt)), len(_nonzero_ids(pred))))
    for a in _nonzero_ids(gt):
        for b in _nonzero_ids(pred):
            out[a - 1, b - 1] = _iou(gt == a, pred == b)
    return out


def iou_uint8(gt, pred):
    gt, pred = gt.astype(np.uint8), pred.astype(np.uint8)
    return _iou_loop(gt, pred, _nonzero_ids(gt), _nonzero_ids(pred), _iou)


def iou_list(gt, pred):
    return iou_ok_bincount(gt, pred).tolist()


def iou_relabel_in_place(gt, pred):
    for k, a in enumerate(_nonzero_ids(gt), start=1):
        gt[gt == a] = k
    for k, b in enumerate(_nonzero_ids(pred), start=1):
        pred[pred == b] = k
    return _iou_loop(gt, pred, _nonzero_ids(gt), _nonzero_ids(pred), _iou)


def iou_empty_rows(gt, pred):
    g_ids, p_ids = _nonzero_ids(gt), _nonzero_ids(pred)
    return np.array([[_iou(gt == a, pred == b) for b in p_ids] for a in g_ids])


def iou_intersection_only(gt, pred):
    def f(ma, mb):
        return float((ma & mb).sum())

    return _iou_loop(gt, pred, _nonzero_ids(gt), _nonzero_ids(pred), f)


IOU_RIGHT = [("loop with areas", iou_ok_bincount), ("sets and lists", iou_ok_sets)]
IOU_WRONG = [
    ("background included", iou_with_background, "background"),
    ("transposed", iou_transposed, "transposed"),
    ("Dice instead of IoU", iou_dice, "Dice values"),
    ("range(1, max + 1)", iou_range_labels, "np.unique"),
    ("np.unique(...)[1:]", iou_drop_first, "no background"),
    ("union counts the overlap twice", iou_union_twice, "overlap twice"),
    ("divided by the true area", iou_over_true_area, "area of the true object"),
    ("indexed by label value", iou_index_by_label, "position"),
    ("cast to uint8", iou_uint8, "255"),
    ("returns a list", iou_list, "NumPy array"),
    ("relabels the caller's arrays", iou_relabel_in_place, "changed the label images"),
    ("empty truth gives shape (0,)", iou_empty_rows, "(0, "),
    ("intersection counts", iou_intersection_only, "between 0 and 1"),
]

# ============================================================================== 05 matching


def match_ok_greedy(iou, tau=0.5):
    iou = np.asarray(iou)
    used_t, used_p = set(), set()
    for i, j in sorted(zip(*np.nonzero(iou >= tau), strict=True), key=lambda ij: -iou[ij]):
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
    tp = len(used_t)
    return tp, iou.shape[1] - tp, iou.shape[0] - tp


def match_ok_scipy(iou, tau=0.5):
    from scipy.optimize import linear_sum_assignment

    n_true, n_pred = iou.shape
    if iou.size == 0:
        return 0, n_pred, n_true
    ok = (iou >= tau).astype(float)
    rows, cols = linear_sum_assignment(ok, maximize=True)
    tp = int(ok[rows, cols].sum())
    return tp, n_pred - tp, n_true - tp


def _simple(iou, tau, strict=False):
    n_true, n_pred = iou.shape
    tp = int((iou > tau).sum()) if strict else int((iou >= tau).sum())
    return tp, n_pred, n_true


def match_sum_entries(iou, tau=0.5):
    tp, n_pred, n_true = _simple(iou, tau)
    return tp, n_pred - tp, n_true - tp


def match_strict(iou, tau=0.5):
    tp, n_pred, n_true = _simple(iou, tau, strict=True)
    return tp, n_pred - tp, n_true - tp


def match_swapped(iou, tau=0.5):
    tp, fp, fn = match_ok_greedy(iou, tau)
    return tp, fn, fp


def match_row_max(iou, tau=0.5):
    tp = int((iou.max(axis=1) >= tau).sum())
    return tp, iou.shape[1] - tp, iou.shape[0] - tp


def match_row_max_guarded(iou, tau=0.5):
    n_true, n_pred = iou.shape
    if iou.size == 0:
        return 0, n_pred, n_true
    tp = int((iou.max(axis=1) >= tau).sum())
    return tp, n_pred - tp, n_true - tp


def match_min_any(iou, tau=0.5):
    hit = iou >= tau
    tp = min(int(hit.any(axis=1).sum()), int(hit.any(axis=0).sum()))
    return tp, iou.shape[1] - tp, iou.shape[0] - tp


def match_fixed_tau(iou, tau=0.5):
    return match_ok_greedy(iou, 0.5)


def match_two_values(iou, tau=0.5):
    tp, fp, _ = match_ok_greedy(iou, tau)
    return tp, fp


def match_in_place(iou, tau=0.5):
    iou[iou < tau] = 0
    return match_ok_greedy(iou, tau)


def match_floats(iou, tau=0.5):
    tp, fp, fn = match_ok_greedy(iou, tau)
    return tp + 0.5, fp, fn


def match_fp_from_true(iou, tau=0.5):
    tp, _, fn = match_ok_greedy(iou, tau)
    return tp, iou.shape[0] - tp, fn


def match_precision(iou, tau=0.5):
    tp, fp, fn = match_ok_greedy(iou, tau)
    return tp, tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def match_generator(iou, tau=0.5):
    return (v for v in match_ok_greedy(iou, tau))


MATCH_RIGHT = [("greedy by IoU", match_ok_greedy), ("Hungarian on 0/1", match_ok_scipy)]
MATCH_WRONG = [
    ("every entry >= tau", match_sum_entries, "matched at most once"),
    ("> instead of >=", match_strict, "exactly equal to tau"),
    ("FP and FN swapped", match_swapped, "swapped"),
    ("row max, crashes on empty", match_row_max, "no predictions"),
    ("row max", match_row_max_guarded, "one prediction"),
    ("min of rows and columns", match_min_any, "matched at most once"),
    ("tau hard-wired", match_fixed_tau, "the tau argument"),
    ("two values", match_two_values, "three numbers"),
    ("changes the matrix", match_in_place, "changed the IoU matrix"),
    ("non-integer counts", match_floats, "whole numbers"),
    ("FP from the true objects", match_fp_from_true, "FP counts predicted objects"),
    ("precision and recall", match_precision, "counts"),
    ("a generator", match_generator, "tuple"),
]

# ============================================================================== 06 read-out


def readout_ok_loop(model, states):
    model.eval()
    out = []
    for s in states:
        with torch.no_grad():
            logits = model.readout(s.h)
        out.append(F.softmax(logits, dim=1).squeeze(0).cpu().numpy())
    return out


def readout_ok_restores(model, states):
    mode = model.training
    model.train(False)
    with torch.inference_mode():
        probs = [model.readout(s.h).softmax(1)[0].numpy().astype(np.float64) for s in states]
    model.train(mode)
    return probs


def _ro(transform, source=lambda s: s.h, eval_mode=True):
    def readout_per_step(model, states):
        if eval_mode:
            model.eval()
        with torch.no_grad():
            return [transform(model.readout(source(s))) for s in states]

    return readout_per_step


def readout_logits(model, states):
    return _ro(lambda x: x[0].numpy())(model, states)


def readout_wrong_axis(model, states):
    return _ro(lambda x: torch.softmax(x, 2)[0].numpy())(model, states)


def readout_batch_dim(model, states):
    return _ro(lambda x: torch.softmax(x, 1).numpy())(model, states)


def readout_argmax(model, states):
    return _ro(lambda x: torch.softmax(x, 1)[0].argmax(0).numpy())(model, states)


def readout_sigmoid(model, states):
    return _ro(lambda x: torch.sigmoid(x)[0].numpy())(model, states)


def readout_log_softmax(model, states):
    return _ro(lambda x: torch.log_softmax(x, 1)[0].numpy())(model, states)


def readout_no_eval(model, states):
    return _ro(lambda x: torch.softmax(x, 1)[0].numpy(), eval_mode=False)(model, states)


def readout_gate(model, states):
    return _ro(lambda x: torch.softmax(x, 1)[0].numpy(), source=lambda s: s.z)(model, states)


def readout_final_only(model, states):
    model.eval()
    with torch.no_grad():
        final = torch.softmax(model.readout(states[-1].h), 1)[0].numpy()
    return [final for _ in states]


def readout_five_steps(model, states):
    model.eval()
    with torch.no_grad():
        return [torch.softmax(model.readout(states[t].h), 1)[0].numpy() for t in range(5)]


def readout_tensors(model, states):
    return _ro(lambda x: torch.softmax(x, 1)[0])(model, states)


def readout_no_grad_missing(model, states):
    model.eval()
    return [torch.softmax(model.readout(s.h), 1)[0].numpy() for s in states]


def readout_map(model, states):
    model.eval()
    with torch.no_grad():
        probs = [torch.softmax(model.readout(s.h), 1)[0].numpy() for s in states]
    return map(lambda p: p, probs)


def readout_pops(model, states):
    model.eval()
    out = []
    with torch.no_grad():
        while states:
            s = states.pop(0)
            out.append(torch.softmax(model.readout(s.h), 1)[0].numpy())
    return out


def readout_shifted(model, states):
    model.eval()
    with torch.no_grad():
        hs = [states[0].h, *[s.h for s in states[:-1]]]
        return [torch.softmax(model.readout(h), 1)[0].numpy() for h in hs]


def readout_whole_model(model, states):
    model.eval()
    with torch.no_grad():
        return [torch.softmax(model(s.h), 1)[0].numpy() for s in states]


READOUT_RIGHT = [("loop with squeeze", readout_ok_loop), ("restores the mode", readout_ok_restores)]
READOUT_WRONG = [
    ("logits", readout_logits, "these are logits"),
    ("softmax over dim 2", readout_wrong_axis, "wrong class axis"),
    ("batch dimension kept", readout_batch_dim, "batch dimension"),
    ("argmax", readout_argmax, "most likely class"),
    ("sigmoid", readout_sigmoid, "sigmoid"),
    ("log_softmax", readout_log_softmax, "log-probabilities"),
    ("no model.eval()", readout_no_eval, "model.eval()"),
    ("reads the gate z", readout_gate, "update gate"),
    ("final state only", readout_final_only, "final prediction"),
    ("exactly 5 steps", readout_five_steps, "steps"),
    ("torch tensors", readout_tensors, "NumPy"),
    ("no torch.no_grad", readout_no_grad_missing, "torch.no_grad"),
    ("returns a map", readout_map, "list"),
    ("pops the caller's list", readout_pops, "emptied or changed the list"),
    ("previous step's state", readout_shifted, "state of the step before"),
    ("the whole model on h", readout_whole_model, "model.readout(states[t].h)"),
]

# ============================================================================== 06 gate means


def gates_ok_numpy(states, which="z"):
    return np.array([np.mean(getattr(s, which).numpy()) for s in states])


def gates_ok_stack(states, which="z"):
    g = torch.stack([s.z if which == "z" else s.r for s in states])  # (S, 1, C, H, W)
    return g.flatten(1).mean(1).numpy()


def _gm(reduce, pick=lambda s, w: getattr(s, w)):
    def gate_means(states, which="z"):
        return np.array([reduce(pick(s, which)) for s in states])

    return gate_means


def gates_per_channel(states, which="z"):
    return _gm(lambda g: g.mean(dim=(0, 2, 3)).numpy())(states, which)


def gates_always_z(states, which="z"):
    return _gm(lambda g: g.mean().item(), pick=lambda s, w: s.z)(states, which)


def gates_one_minus(states, which="z"):
    return _gm(lambda g: 1 - g.mean().item())(states, which)


def gates_state(states, which="z"):
    return _gm(lambda g: g.mean().item(), pick=lambda s, w: s.h)(states, which)


def gates_single_number(states, which="z"):
    return float(torch.stack([getattr(s, which).mean() for s in states]).mean())


def gates_first_channel(states, which="z"):
    return _gm(lambda g: g[0, 0].mean().item())(states, which)


def gates_sum(states, which="z"):
    return _gm(lambda g: g.sum().item())(states, which)


def gates_max(states, which="z"):
    return _gm(lambda g: g.max().item())(states, which)


def gates_five_steps(states, which="z"):
    return np.array([getattr(states[t], which).mean().item() for t in range(5)])


def gates_generator(states, which="z"):
    return (getattr(s, which).mean().item() for s in states)


def gates_pops(states, which="z"):
    out = []
    while states:
        out.append(getattr(states.pop(), which).mean().item())
    return np.array(out[::-1])


def gates_per_pixel(states, which="z"):
    return np.array([getattr(s, which).mean(dim=1)[0].numpy() for s in states])


def gates_first_step_repeated(states, which="z"):
    m = getattr(states[0], which).mean().item()
    return np.full(len(states), m)


def gates_sigmoid_again(states, which="z"):
    return _gm(lambda g: torch.sigmoid(g).mean().item())(states, which)


def gates_in_place(states, which="z"):
    out = []
    for s in states:
        g = getattr(s, which)
        out.append(g.mean().item())
        g.clamp_(0.1, 0.9)
    return np.array(out)


def gates_keepdim(states, which="z"):
    return np.array([getattr(s, which).mean(dim=(1, 2, 3)).numpy() for s in states])


GATES_RIGHT = [("np.mean per step", gates_ok_numpy), ("stacked tensor", gates_ok_stack)]
GATES_WRONG = [
    ("per channel", gates_per_channel, "one value per channel"),
    ("always z", gates_always_z, "other gate"),
    ("1 - z", gates_one_minus, "1 - "),
    ("state h", gates_state, "state h_t"),
    ("single number", gates_single_number, "single number"),
    ("first channel only", gates_first_channel, "first channel"),
    ("sum", gates_sum, "sum"),
    ("max", gates_max, "largest"),
    ("exactly 5 steps", gates_five_steps, "steps"),
    ("generator", gates_generator, "array"),
    ("pops the caller's list", gates_pops, "emptied or changed the list"),
    ("per pixel", gates_per_pixel, "over the pixels"),
    ("first step repeated", gates_first_step_repeated, "same value"),
    ("sigmoid again", gates_sigmoid_again, "sigmoid"),
    ("clamps the gates in place", gates_in_place, "changed the gates"),
    ("shape (S, 1)", gates_keepdim, "one number per step"),
]

# ============================================================================== the tests

SUITE = {
    "soft_dice": (nb4.soft_dice_exercise, DICE_WRONG, DICE_RIGHT),
    "focal_loss": (nb4.focal_exercise, FOCAL_WRONG, FOCAL_RIGHT),
    "instance_iou": (nb5.iou_exercise, IOU_WRONG, IOU_RIGHT),
    "match_counts": (nb5.match_exercise, MATCH_WRONG, MATCH_RIGHT),
    "readout_per_step": (nb6.readout_exercise, READOUT_WRONG, READOUT_RIGHT),
    "gate_means": (nb6.gate_exercise, GATES_WRONG, GATES_RIGHT),
}

WRONG_CASES = [
    pytest.param(name, fn, phrase, id=f"{name}: {label}")
    for name, (_, wrong, _) in SUITE.items()
    for label, fn, phrase in wrong
]
RIGHT_CASES = [
    pytest.param(name, fn, id=f"{name}: {label}")
    for name, (_, _, right) in SUITE.items()
    for label, fn in right
]


@pytest.mark.parametrize(("name", "student", "phrase"), WRONG_CASES)
def test_wrong_answer_is_rejected_with_its_cause(name, student, phrase):
    result = SUITE[name][0].evaluate(student)
    assert not result.passed, f"{name}: a wrong answer passed"
    assert result.status in ("failed", "error"), result.text()
    assert phrase.lower() in result.message.lower(), result.message
    assert "\n" not in result.message and "Traceback" not in result.message
    assert "differs from the reference" not in result.message


@pytest.mark.parametrize(("name", "student"), RIGHT_CASES)
def test_correct_variant_passes(name, student):
    result = SUITE[name][0].evaluate(student)
    assert result.passed, result.text()
    assert result.checks >= 2  # inputs compared


@pytest.mark.parametrize("name", list(SUITE))
def test_suite_size(name):
    exercise, wrong, right = SUITE[name]
    assert exercise is REGISTRY[name]
    assert len(wrong) >= 12 and len(right) >= 2


@pytest.mark.parametrize(
    "module", [nb4, nb5, nb6], ids=["04 training", "05 evaluation", "06 hidden states"]
)
def test_every_known_mistake_moves_the_output_far_beyond_the_tolerance(module):
    """A mistake that changes the checked output by less than 100x the tolerance on every input
    of the check could pass by accident on a slightly different input."""
    spread: dict[str, bool] = {}
    for name, expected, wrong, atol, rtol in module.known_mistake_outputs():
        spread[name] = spread.get(name, False) or moves(wrong, expected, 100.0, atol, rtol)
    assert spread, "no known mistakes listed"
    assert all(spread.values()), [name for name, ok in spread.items() if not ok]


def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def _random_student(fn):
    def student(*args, **kwargs):  # draws from every global generator, then answers
        torch.rand(7), np.random.rand(5), random.random()
        return fn(*args, **kwargs)

    return student


@pytest.mark.parametrize("name", list(SUITE))
def test_checks_leave_every_global_random_generator_unchanged(name):
    exercise, wrong, right = SUITE[name]
    students = [
        right[0][1],
        wrong[0][1],
        _random_student(right[0][1]),
        _random_student(wrong[1][1]),
    ]
    for student in students:
        torch.manual_seed(123), np.random.seed(123), random.seed(123)
        expected = _draws()
        torch.manual_seed(123), np.random.seed(123), random.seed(123)
        exercise.evaluate(student)
        assert _draws() == expected, f"{name}: a check moved a global random generator"
