"""Known mistakes in the two losses of notebook 04 (soft Dice, focal loss).

Logits are (B, K, H, W), the integer target (B, H, W); every table maps a mistake to
(the value it gives, the message), the gradient tables to (a loss with part of the graph detached,
the message).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _onehot(target: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(target.long(), k).permute(0, 3, 1, 2).float()  # (B, K, H, W)


# ------------------------------------------------------------------------------ Dice mistakes
def _dice(p, g, smooth_num, smooth_den, dims=(0, 2, 3), square=False, two=2.0):
    inter = (p * g).sum(dims)
    den = (p * p).sum(dims) + (g * g).sum(dims) if square else p.sum(dims) + g.sum(dims)
    return (two * inter + smooth_num) / (den + smooth_den)


def dice_variants(logits, target, smooth) -> dict[str, tuple[torch.Tensor, str]]:
    """name -> (value the mistake gives, message)."""
    k = logits.shape[1]
    g = _onehot(target, k)
    p = torch.softmax(logits, dim=1)
    s = smooth
    ref = 1 - _dice(p, g, s, s).mean()
    v: dict[str, tuple[torch.Tensor, str]] = {}
    v["raw logits"] = (
        1 - _dice(logits, g, s, s).mean(),
        "softmax is missing: the Dice needs probabilities, p = torch.softmax(logits, dim=1), "
        "not raw logits",
    )
    v["sigmoid"] = (
        1 - _dice(torch.sigmoid(logits), g, s, s).mean(),
        "you used a sigmoid: with K exclusive classes the probabilities come from a softmax over "
        "the class axis (dim=1), so that they sum to 1 at every pixel",
    )
    hard = _onehot(logits.argmax(1), k)
    v["argmax"] = (
        1 - _dice(hard, g, s, s).mean(),
        "you use argmax (hard 0/1 predictions): argmax has no gradient, so the network could "
        "not learn from this loss; the soft Dice uses the softmax probabilities",
    )
    for dim in (0, 2, 3):
        v[f"softmax dim {dim}"] = (
            1 - _dice(torch.softmax(logits, dim=dim), g, s, s).mean(),
            f"wrong class axis: your softmax runs over dim={dim}, but the classes are dim=1 of "
            "(B, K, H, W)",
        )
    v["no smoothing"] = (
        1 - _dice(p, g, 0.0, 0.0).mean(),
        "smoothing is missing: add `smooth` to both the numerator and the denominator, "
        "(2 * intersection + smooth) / (sum p + sum g + smooth)",
    )
    v["smooth numerator only"] = (
        1 - _dice(p, g, s, 0.0).mean(),
        "smoothing is only in the numerator: add `smooth` to the denominator too",
    )
    v["smooth denominator only"] = (
        1 - _dice(p, g, 0.0, s).mean(),
        "smoothing is only in the denominator: add `smooth` to the numerator too",
    )
    v["no factor 2"] = (
        1 - _dice(p, g, s, s, two=1.0).mean(),
        "the factor 2 in front of the intersection is missing: Dice = (2 * sum p g + smooth) / "
        "(sum p + sum g + smooth), which is 1 for a perfect prediction",
    )
    v["dice not loss"] = (
        _dice(p, g, s, s).mean(),
        "you return the Dice coefficient itself: the loss to minimise is 1 - mean Dice "
        "(Dice is 1 for a perfect prediction)",
    )
    v.update(_dice_reduction_mistakes(p, g, s, ref))
    return v


def _dice_reduction_mistakes(p, g, s, ref) -> dict[str, tuple[torch.Tensor, str]]:
    """The mistakes in summing and averaging: probabilities p and one-hot target g (B, K, H, W),
    smoothing s, ``ref`` the right loss."""
    b, k, h, w = p.shape
    v: dict[str, tuple[torch.Tensor, str]] = {}
    v["per image"] = (
        1 - _dice(p, g, s, s, dims=(2, 3)).mean(),
        "wrong reduction: you compute one Dice per image and class (sums over H, W only); sum "
        "over the batch too (dims (0, 2, 3)) to get one Dice per class, then average the classes",
    )
    v["all classes pooled"] = (
        1 - _dice(p, g, s, s, dims=(0, 1, 2, 3)),
        "wrong reduction: you pool all classes into a single Dice; compute one Dice per class "
        "(sums over dims (0, 2, 3)) and average those K values",
    )
    v["no background"] = (
        1 - _dice(p, g, s, s)[1:].mean(),
        "you left out the background class: average the Dice over all K classes, class 0 too",
    )
    v["squared"] = (
        1 - _dice(p, g, s, s, square=True).mean(),
        "you square p and g in the denominator (the V-Net variant): this exercise uses the plain "
        "sums, sum p + sum g",
    )
    n = b * h * w
    v["means"] = (
        1 - ((2.0 * (p * g).sum((0, 2, 3)) / n + s) / ((p + g).sum((0, 2, 3)) / n + s)).mean(),
        "wrong reduction: you average over pixels where the formula sums; with the smoothing "
        "term the two are not the same. Use .sum over dims (0, 2, 3)",
    )
    v["sum over classes"] = (
        k * ref,
        f"your loss is exactly K = {k} times the reference: you sum over the classes where the "
        "formula averages them, 1 - mean over the K classes",
    )
    v["times batch"] = (
        b * ref,
        f"your loss is exactly B = {b} times the reference: you sum one loss per image where "
        "the Dice pools the whole batch",
    )
    return v


def dice_gradient_variants(logits, target, smooth) -> dict[str, tuple[Callable, str]]:
    """name -> (a loss with part of the graph detached, message)."""
    g = _onehot(target, logits.shape[1])

    def detached_denominator(x):
        p = torch.softmax(x, 1)
        den = (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth).detach()
        return 1 - ((2 * (p * g).sum((0, 2, 3)) + smooth) / den).mean()

    def detached_numerator(x):
        p = torch.softmax(x, 1)
        num = (2 * (p * g).sum((0, 2, 3)) + smooth).detach()
        return 1 - (num / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth)).mean()

    return {
        "detached denominator": (
            detached_denominator,
            "the value is right, but no gradient flows through the denominator sum p + sum g: "
            "you detached it (.detach(), .item() or .data); keep it in the graph",
        ),
        "detached numerator": (
            detached_numerator,
            "the value is right, but no gradient flows through the intersection sum p g: you "
            "detached it (.detach(), .item() or .data); keep it in the graph",
        ),
    }


# ------------------------------------------------------------------------------ focal mistakes
def focal_variants(logits, target, gamma) -> dict[str, tuple[torch.Tensor, str]]:
    b, k, h, w = logits.shape
    log_p = torch.log_softmax(logits, dim=1)
    log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1)  # (B, H, W)
    pt = log_pt.exp()
    ref = -((1 - pt) ** gamma * log_pt).mean()
    ce = -log_pt.mean()
    v: dict[str, tuple[torch.Tensor, str]] = {}
    v["ce"] = (
        ce,
        "this is the plain cross-entropy: the focusing factor (1 - p_t) ** gamma is missing",
    )
    v["pt power"] = (
        -(pt**gamma * log_pt).mean(),
        "you weight by p_t ** gamma: the focal loss down-weights easy pixels (p_t near 1), so the "
        "factor is (1 - p_t) ** gamma",
    )
    v["times gamma"] = (
        -((1 - pt) * gamma * log_pt).mean(),
        "you multiply by gamma: the factor is (1 - p_t) raised to the power gamma, "
        "(1 - pt) ** gamma",
    )
    v["sign"] = (
        -ref,
        "the sign is flipped: log p_t <= 0, so the loss is -(1 - p_t) ** gamma * log p_t "
        "(a loss that is positive and falls as p_t rises)",
    )
    v["factor of the mean"] = (
        (1 - torch.exp(-ce)) ** gamma * ce,
        "you apply the factor (1 - p_t) ** gamma to the mean cross-entropy: it must weight "
        "every pixel's -log p_t before the mean, (-(1 - pt) ** gamma * log_pt).mean()",
    )
    v["sum"] = (
        b * h * w * ref,
        "wrong reduction: you sum over pixels; take the mean over all pixels of all images",
    )
    v["per-image sums"] = (
        h * w * ref,
        f"your loss is exactly H*W = {h * w} times the reference: you sum over the pixels of "
        "each image; take the mean over all pixels of all images",
    )
    v["times batch"] = (
        b * ref,
        f"your loss is exactly B = {b} times the reference: you sum over the batch (one mean "
        "per image, then a sum); take the mean over all pixels of all images",
    )
    v["over K"] = (
        ref / k,
        f"your loss is exactly the reference divided by K = {k}: you take the mean over the "
        "one-hot tensor (B, K, H, W), K entries per pixel of which only one is non-zero; pick "
        "the true class first (gather, or sum over dim=1) and average over the B*H*W pixels",
    )
    v["alpha"] = (
        0.25 * ref,
        "your loss is exactly 0.25 times the reference: you multiply by alpha = 0.25, the class "
        "weight of RetinaNet's focal loss; this exercise has no alpha (all classes weigh 1)",
    )
    v["p not log p"] = (
        -((1 - pt) ** gamma * pt).mean(),
        "you multiply by p_t where the formula has log p_t",
    )
    for dim in (0, 2, 3):
        lp = torch.log_softmax(logits, dim=dim)
        lpt = lp.gather(1, target.unsqueeze(1)).squeeze(1)
        v[f"dim {dim}"] = (
            -((1 - lpt.exp()) ** gamma * lpt).mean(),
            f"wrong class axis: your (log-)softmax runs over dim={dim}, but the classes are dim=1 "
            "of (B, K, H, W)",
        )
    sig = torch.nn.functional.logsigmoid(logits).gather(1, target.unsqueeze(1)).squeeze(1)
    v["sigmoid"] = (
        -((1 - sig.exp()) ** gamma * sig).mean(),
        "you used a sigmoid: with K exclusive classes p_t comes from a softmax over the class "
        "axis, log p = torch.log_softmax(logits, dim=1)",
    )
    raw = logits.gather(1, target.unsqueeze(1)).squeeze(1)
    v["raw logits"] = (
        -((1 - raw.exp()) ** gamma * raw).mean(),
        "softmax is missing: take log_softmax(logits, dim=1) before picking the true class",
    )
    return v


def focal_gradient_variants(logits, target, gamma) -> dict[str, tuple[Callable, str]]:
    def detached_factor(x):
        lp = torch.log_softmax(x, 1).gather(1, target.unsqueeze(1)).squeeze(1)
        return -((1 - lp.detach().exp()) ** gamma * lp).mean()

    return {
        "detached factor": (
            detached_factor,
            "the value is right, but no gradient flows through the modulating factor "
            "(1 - p_t) ** gamma: you detached p_t there (.detach(), .item() or .data); the focal "
            "loss's gradient includes the factor's own derivative, so keep it in the graph",
        )
    }
