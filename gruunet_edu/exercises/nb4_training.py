"""Checks for notebook 04 (training): the soft Dice loss and the focal loss.

The student writes ``soft_dice_loss(logits, target, smooth=1.0)`` and
``focal_loss(logits, target, gamma=2.0)`` with the package's conventions (logits (B, K, H, W),
integer target (B, H, W), one scalar out). Each check runs the student's function and the
reference (:mod:`gruunet_edu.training.losses`) on several inputs, and when they disagree it
recognises the usual mistakes by computing them too: a missing softmax, the wrong class axis, a
missing smoothing term, a per-image or per-class reduction, Dice instead of 1 - Dice, a missing
focusing factor, a flipped sign...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import torch
import torch.nn.functional as F

from gruunet_edu.exercises.core import Exercise, Mismatch, as_tensor, call, expect
from gruunet_edu.training.losses import focal_loss as reference_focal_loss
from gruunet_edu.training.losses import soft_dice_loss as reference_soft_dice_loss

__all__ = [
    "check_focal_loss",
    "check_soft_dice",
    "focal_exercise",
    "reference_focal_loss",
    "reference_soft_dice_loss",
    "soft_dice_exercise",
]

NOTEBOOK = "solutions/04_training.ipynb"

_HINTS = {
    "soft_dice": [
        "Turn logits into probabilities first: p = torch.softmax(logits, dim=1) (dim 1 is the "
        "class axis of (B, K, H, W)).",
        "Make the target one-hot with the same layout: F.one_hot(target, K) gives (B, H, W, K); "
        ".permute(0, 3, 1, 2) moves the class axis to dim 1. Then sum p * g and p + g over the "
        "dims (0, 2, 3) to get one number per class.",
        "dice = (2 * (p * g).sum((0, 2, 3)) + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + "
        "smooth); return 1 - dice.mean().",
    ],
    "focal_loss": [
        "Work with log-probabilities: log_p = torch.log_softmax(logits, dim=1) is stable where "
        "log(softmax(...)) can give -inf.",
        "Pick the log-probability of the true class at every pixel: "
        "log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1), shape (B, H, W); "
        "pt = log_pt.exp().",
        "loss = -(1 - pt) ** gamma * log_pt, then .mean() over all pixels of all images.",
    ],
}


# ------------------------------------------------------------------------------ test inputs
def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(description, logits (B, K, H, W), target (B, H, W)) with B, K, H, W all different so a
    wrong axis cannot pass by accident; the second image lacks class 2 entirely."""
    g = torch.Generator().manual_seed(4)
    b, k, h, w = 2, 3, 5, 7
    logits = 2.0 * torch.randn(b, k, h, w, generator=g)
    target = torch.randint(0, k, (b, h, w), generator=g)
    target[1][target[1] == 2] = 0  # class 2 absent from image 1
    confident = 6.0 * F.one_hot(target, k).permute(0, 3, 1, 2).float() - 3.0
    return [
        ("random logits (B=2, K=3, H=5, W=7)", logits, target),
        ("confident, mostly correct logits", confident + 0.5 * logits, target),
        ("one image (B=1)", logits[:1].clone(), target[:1].clone()),
    ]


# ------------------------------------------------------------------------------ Dice mistakes
def _dice_from_probs(p, g, smooth_num, smooth_den, dims=(0, 2, 3), square=False):
    inter = (p * g).sum(dims)
    den = (p * p).sum(dims) + (g * g).sum(dims) if square else p.sum(dims) + g.sum(dims)
    return (2.0 * inter + smooth_num) / (den + smooth_den)


def _onehot(target, k):
    return F.one_hot(target.long(), k).permute(0, 3, 1, 2).float()


def _dice_variants(logits, target, smooth):
    """name -> (value the mistake would give, message)."""
    k = logits.shape[1]
    g = _onehot(target, k)
    p = torch.softmax(logits, dim=1)
    s = smooth
    v: dict[str, tuple[torch.Tensor, str]] = {}
    v["raw logits"] = (
        1 - _dice_from_probs(logits, g, s, s).mean(),
        "softmax is missing: the Dice needs probabilities, p = torch.softmax(logits, dim=1), "
        "not raw logits",
    )
    v["sigmoid"] = (
        1 - _dice_from_probs(torch.sigmoid(logits), g, s, s).mean(),
        "you used a sigmoid: with K exclusive classes the probabilities come from a softmax over "
        "the class axis (dim=1), so that they sum to 1 at every pixel",
    )
    for dim in (0, 2, 3):
        v[f"softmax dim {dim}"] = (
            1 - _dice_from_probs(torch.softmax(logits, dim=dim), g, s, s).mean(),
            f"wrong class axis: your softmax runs over dim={dim}, but the classes are dim=1 of "
            "(B, K, H, W)",
        )
    v["no smoothing"] = (
        1 - _dice_from_probs(p, g, 0.0, 0.0).mean(),
        "smoothing is missing: add `smooth` to both the numerator and the denominator, "
        "(2 * intersection + smooth) / (sum p + sum g + smooth)",
    )
    v["smooth numerator only"] = (
        1 - _dice_from_probs(p, g, s, 0.0).mean(),
        "smoothing is only in the numerator: add `smooth` to the denominator too",
    )
    v["smooth denominator only"] = (
        1 - _dice_from_probs(p, g, 0.0, s).mean(),
        "smoothing is only in the denominator: add `smooth` to the numerator too",
    )
    v["dice not loss"] = (
        _dice_from_probs(p, g, s, s).mean(),
        "you return the Dice coefficient itself: the loss to minimise is 1 - mean Dice "
        "(Dice is 1 for a perfect prediction)",
    )
    v["per image"] = (
        1 - _dice_from_probs(p, g, s, s, dims=(2, 3)).mean(),
        "wrong reduction: you compute one Dice per image and class (sums over H, W only); sum "
        "over the batch too (dims (0, 2, 3)) to get one Dice per class, then average the classes",
    )
    v["all classes pooled"] = (
        1 - _dice_from_probs(p, g, s, s, dims=(0, 1, 2, 3)),
        "wrong reduction: you pool all classes into a single Dice; compute one Dice per class "
        "(sums over dims (0, 2, 3)) and average those K values",
    )
    v["no background"] = (
        1 - _dice_from_probs(p, g, s, s)[1:].mean(),
        "you left out the background class: average the Dice over all K classes, class 0 too",
    )
    v["squared"] = (
        1 - _dice_from_probs(p, g, s, s, square=True).mean(),
        "you square p and g in the denominator (the V-Net variant): this exercise uses the plain "
        "sums, sum p + sum g",
    )
    n = p[:, :, :, :].numel() / k
    v["means"] = (
        1 - ((2.0 * (p * g).sum((0, 2, 3)) / n + s) / ((p + g).sum((0, 2, 3)) / n + s)).mean(),
        "wrong reduction: you average over pixels where the formula sums; with the smoothing "
        "term the two are not the same. Use .sum over dims (0, 2, 3)",
    )
    return v


def _student_loss(
    fn: Callable, logits: torch.Tensor, target: torch.Tensor, what: str, label: str, **kwargs
) -> torch.Tensor:
    """Call the student's loss on copies; it must not change the logits and must give a scalar."""
    leaf = logits.clone().requires_grad_(True)  # (B, K, H, W), a leaf so gradients can be seen
    value = as_tensor(call(fn, leaf, target.clone(), what=what, **kwargs), what)
    expect(
        torch.equal(leaf.detach(), logits),
        "your function changed the logits in place; compute new tensors instead",
    )
    _expect_scalar(value, logits, label)
    return value


def _check_soft_dice(fn: Callable) -> int:
    passed = 0
    for smooth in (1.0, 0.5):
        for name, logits, target in _cases():
            where = f"for {name}, smooth={smooth}"
            value = _student_loss(fn, logits, target, WHAT_DICE, "soft Dice", smooth=smooth)
            expected = reference_soft_dice_loss(logits, target, smooth=smooth)
            if _close(value, expected):
                expect(value.grad_fn is not None, NO_GRAD)
                passed += 1
                continue
            if not torch.isfinite(value).all():
                raise Mismatch(
                    f"your loss is {value.item()} {where}; the reference gives "
                    f"{expected.item():.4f}"
                )
            _known_mistake(value, expected, where, _dice_variants(logits, target, smooth))
    return passed


# ------------------------------------------------------------------------------ focal mistakes
def _focal_variants(logits, target, gamma):
    log_p = torch.log_softmax(logits, dim=1)
    log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1)
    pt = log_pt.exp()
    v: dict[str, tuple[torch.Tensor, str]] = {}
    v["ce"] = (
        -log_pt.mean(),
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
        ((1 - pt) ** gamma * log_pt).mean(),
        "the sign is flipped: log p_t <= 0, so the loss is -(1 - p_t) ** gamma * log p_t "
        "(a loss that is positive and falls as p_t rises)",
    )
    v["sum"] = (
        -((1 - pt) ** gamma * log_pt).sum(),
        "wrong reduction: you sum over pixels; take the mean over all pixels of all images",
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
    raw = logits.gather(1, target.unsqueeze(1)).squeeze(1)
    v["raw logits"] = (
        -((1 - raw.exp()) ** gamma * raw).mean(),
        "softmax is missing: take log_softmax(logits, dim=1) before picking the true class",
    )
    return v


def _check_focal_loss(fn: Callable) -> int:
    passed = 0
    for gamma in (2.0, 0.5, 0.0):
        for name, logits, target in _cases():
            where = f"for {name}, gamma={gamma}"
            value = _student_loss(fn, logits, target, WHAT_FOCAL, "focal loss", gamma=gamma)
            expected = reference_focal_loss(logits, target, gamma=gamma)
            if _close(value, expected):
                expect(value.grad_fn is not None, NO_GRAD)
                passed += 1
                continue
            if not torch.isfinite(value).all():
                raise Mismatch(
                    f"your loss is {value.item()} {where}: log of a negative number or of 0? "
                    "Use torch.log_softmax(logits, dim=1)"
                )
            if gamma == 0.0:
                raise Mismatch(
                    f"with gamma=0 the focal loss must equal the cross-entropy "
                    f"({expected.item():.4f}) but yours gives {value.item():.4f}"
                )
            _known_mistake(value, expected, where, _focal_variants(logits, target, gamma))
    return passed


# ------------------------------------------------------------------------------ shared parts
WHAT_DICE = "your soft_dice_loss"
WHAT_FOCAL = "your focal_loss"
NO_GRAD = (
    "the value is right but it has no gradient: argmax, .detach(), .item() or NumPy break "
    "backpropagation; stay with differentiable torch operations"
)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach().double().reshape(-1), torch.as_tensor(b).detach().double().reshape(-1)
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5))


def _known_mistake(
    value: torch.Tensor,
    expected: torch.Tensor,
    where: str,
    variants: dict[str, tuple[torch.Tensor, str]],
) -> NoReturn:
    """Mismatch naming the first mistake whose value ``value`` matches, else the two values."""
    for wrong, message in variants.values():
        if _close(value, wrong):
            raise Mismatch(message)
    raise Mismatch(
        f"your loss is {value.item():.4f} {where}, the reference gives "
        f"{expected.item():.4f}: compare your formula with the equation above the exercise"
    )


def _expect_scalar(value: torch.Tensor, logits: torch.Tensor, what: str) -> None:
    """Mismatch when the loss is not a single number, naming what its shape suggests."""
    if value.numel() == 1:
        expect(True, "")
        return
    b, k, h, w = logits.shape
    shape = tuple(value.shape)
    if shape == (k,):
        raise Mismatch(
            f"wrong reduction: your {what} returns one value per class, shape {shape}; "
            "average them into one number"
        )
    if shape == (b,):
        raise Mismatch(
            f"wrong reduction: your {what} returns one value per image, shape {shape}; "
            "the loss is a single number for the whole batch"
        )
    if shape in ((b, h, w), (b, k, h, w), (b, 1, h, w)):
        raise Mismatch(
            f"wrong reduction: your {what} returns a value per pixel, shape {shape}; "
            "reduce it to a single number (see the formula)"
        )
    raise Mismatch(f"the loss must be a single number (a 0-d tensor), yours has shape {shape}")


soft_dice_exercise = Exercise(
    name="soft_dice",
    title="Soft Dice loss",
    checker=_check_soft_dice,
    reference=reference_soft_dice_loss,
    hints=_HINTS["soft_dice"],
    solution_notebook=NOTEBOOK,
)
check_soft_dice = soft_dice_exercise.check

focal_exercise = Exercise(
    name="focal_loss",
    title="Focal loss",
    checker=_check_focal_loss,
    reference=reference_focal_loss,
    hints=_HINTS["focal_loss"],
    solution_notebook=NOTEBOOK,
)
check_focal_loss = focal_exercise.check
