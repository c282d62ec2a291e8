"""Checks for notebook 04 (training): the soft Dice loss and the focal loss.

The student writes ``soft_dice_loss(logits, target, smooth=1.0)`` and
``focal_loss(logits, target, gamma=2.0)`` with the package's conventions (logits (B, K, H, W),
integer target (B, H, W), one scalar out):

    Dice_c = (2 sum_i p_ic g_ic + s) / (sum_i p_ic + sum_i g_ic + s),   L_Dice = 1 - mean_c Dice_c
    FL = -mean_i (1 - p_t,i)^gamma log p_t,i

Each check runs the student's function and the reference (:mod:`gruunet_edu.training.losses`) on
several inputs: K = 3, 2 and 4 classes, one image, a class absent from the batch, extreme logits
(size 60, where ``log(softmax(x))`` gives -inf), and other values of ``smooth`` / ``gamma``. It
compares the value, then the gradient with respect to the logits, and checks that the logits and
the target are unchanged. When the value differs it recognises the usual mistakes by computing
them too (a table of known mistakes with their messages): a missing softmax, the wrong class axis,
a missing smoothing term, a per-image or per-class reduction, a sum where a mean belongs (the
value is then exactly K or B times the reference), Dice instead of 1 - Dice, a missing or
detached focusing factor, a flipped sign...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from gruunet_edu.exercises._checks_common import exercise, explain
from gruunet_edu.exercises.core import (
    Mismatch,
    RecordCalls,
    StudentError,
    as_tensor,
    call,
    close,
    expect,
)
from gruunet_edu.exercises.mistakes.nb4 import (
    dice_gradient_variants,
    dice_variants,
    focal_gradient_variants,
    focal_variants,
)
from gruunet_edu.training.losses import focal_loss as reference_focal_loss
from gruunet_edu.training.losses import soft_dice_loss as reference_soft_dice_loss

__all__ = [
    "check_focal_loss",
    "check_soft_dice",
    "focal_exercise",
    "known_mistake_outputs",
    "reference_focal_loss",
    "reference_soft_dice_loss",
    "soft_dice_exercise",
]

NOTEBOOK = "solutions/04_training.ipynb"

_HINTS = {
    "soft_dice": [
        "Turn logits into probabilities first: p = torch.softmax(logits, dim=1) (dim 1 is the "
        "class axis of (B, K, H, W)). Take K from logits.shape[1]: the check also uses 2 and 4 "
        "classes.",
        "Make the target one-hot with the same layout: F.one_hot(target, K) gives (B, H, W, K); "
        ".permute(0, 3, 1, 2) moves the class axis to dim 1. Then sum p * g and p + g over the "
        "dims (0, 2, 3) to get one number per class.",
        "dice = (2 * (p * g).sum((0, 2, 3)) + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + "
        "smooth); return 1 - dice.mean().",
    ],
    "focal_loss": [
        "Work with log-probabilities: log_p = torch.log_softmax(logits, dim=1) is stable where "
        "log(softmax(...)) gives -inf for large logits.",
        "Pick the log-probability of the true class at every pixel: "
        "log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1), shape (B, H, W); "
        "pt = log_pt.exp() (do not detach it: the factor (1 - pt) ** gamma is part of the "
        "gradient).",
        "loss = -(1 - pt) ** gamma * log_pt, then .mean() over all pixels of all images.",
    ],
}

WHAT_DICE = "your soft_dice_loss"
WHAT_FOCAL = "your focal_loss"
NO_GRAD = (
    "the value is right but it has no gradient: argmax, .detach(), .item(), torch.tensor(...) "
    "or NumPy break backpropagation; stay with differentiable torch operations"
)
GRAD_ATOL, GRAD_RTOL = 1e-6, 1e-3  # gradients are ~1/(B H W): compare them more tightly


# ------------------------------------------------------------------------------ test inputs
@dataclass(frozen=True)
class Case:
    """One input of the check: logits (B, K, H, W) and an integer target (B, H, W)."""

    name: str
    logits: torch.Tensor
    target: torch.Tensor

    @property
    def k(self) -> int:
        return self.logits.shape[1]


def _cases() -> list[Case]:
    """B, K, H, W all different within a case, so a wrong axis or a sum where a mean belongs
    (a factor K, B, H*W) cannot pass by accident; K = 3 first, then 2 and 4 classes."""
    g = torch.Generator().manual_seed(4)
    b, k, h, w = 2, 3, 5, 7
    logits = 2.0 * torch.randn(b, k, h, w, generator=g)
    target = torch.randint(0, k, (b, h, w), generator=g)
    target[1][target[1] == 2] = 0  # class 2 absent from image 1
    onehot = F.one_hot(target, k).permute(0, 3, 1, 2).float()
    confident = 6.0 * onehot - 3.0
    wrong = torch.where(torch.rand(b, h, w, generator=g) < 0.4, (target + 1) % k, target)
    extreme = 120.0 * F.one_hot(wrong, k).permute(0, 3, 1, 2).float() - 60.0  # +-60
    k2 = torch.randint(0, 2, (3, 4, 6), generator=g)
    k4 = torch.randint(0, 3, (2, 6, 5), generator=g)  # class 3 absent from the whole batch
    return [
        Case("random logits (B=2, K=3, H=5, W=7)", logits, target),
        Case("confident, mostly correct logits", confident + 0.5 * logits, target),
        Case("one image (B=1)", logits[:1].clone(), target[:1].clone()),
        Case("extreme logits (+-60, some confidently wrong)", extreme, target),
        Case("K=2 classes (B=3, H=4, W=6)", 2.0 * torch.randn(3, 2, 4, 6, generator=g), k2),
        Case(
            "K=4 classes, class 3 absent (B=2, H=6, W=5)",
            2.0 * torch.randn(2, 4, 6, 5, generator=g),
            k4,
        ),
    ]


# ------------------------------------------------------------------------------ one loss check
@dataclass(frozen=True)
class LossExercise:
    """What differs between the two loss checks: names, reference, settings and mistake tables."""

    what: str
    label: str
    reference: Callable
    setting: str  # the keyword the student's function takes (smooth / gamma)
    values: tuple[float, ...]  # the first is the notebook's default
    variants: Callable[..., dict[str, tuple[torch.Tensor, str]]]
    gradient_variants: Callable[..., dict[str, tuple[Callable, str]]]


def _loss_checks(spec: LossExercise, fn: Callable) -> int:
    passed = 0  # every case that returns has passed (a failing one raises)
    for value_of_setting in spec.values:
        kwargs = {spec.setting: value_of_setting}
        for case in _cases():
            where = f"for {case.name}, {spec.setting}={value_of_setting}"
            # all earlier cases passed, so a failure for K != 3 is a hard-wired K = 3
            _one_case(spec, fn, case, kwargs, where, hard_wired_k=case.k != 3 and passed < 6)
            passed += 1
    return passed


def _one_case(
    spec: LossExercise,
    fn: Callable,
    case: Case,
    kwargs: dict,
    where: str,
    hard_wired_k: bool,
) -> None:
    """Check one input; raises at the first problem. Every earlier input has passed."""
    logits, target = case.logits, case.target
    leaf = logits.clone().requires_grad_(True)  # (B, K, H, W), a leaf so gradients can be seen
    given_target = target.clone()
    hard_k = (
        f"your code works for K = 3 classes but not for K = {case.k} ({where}): take the number "
        "of classes from logits.shape[1], not a fixed 3 and not the classes found in the target "
        "(F.one_hot(target) without num_classes misses a class the target lacks)"
    )
    try:
        out = call(fn, leaf, given_target, what=spec.what, **kwargs)
    except StudentError as err:
        if hard_wired_k:
            raise StudentError(f"{err.brief} {hard_k[:1].upper()}{hard_k[1:]}.") from None
        text = getattr(err, "original", "") or str(err)  # torch's own message
        raise StudentError(f"{err.brief} {_explain_error(text, fn, case, kwargs)}") from None
    value = as_tensor(out, spec.what)
    expect(
        given_target.shape == target.shape and torch.equal(given_target, target),
        "your function changed the target in place (e.g. target.unsqueeze_(1) or an "
        "assignment into it): the caller's target must stay as it was; use target.unsqueeze(1), "
        "which returns a new view",
    )
    expect(
        torch.equal(leaf.detach(), logits),
        "your function changed the logits in place; compute new tensors instead",
    )
    _expect_scalar(value, logits, spec.label)
    expected = spec.reference(logits, target, **kwargs)
    if close(value, expected):
        if "extreme" not in case.name:  # (1 - p_t) ** gamma has no finite slope at p_t = 1
            _check_gradient(spec, value, leaf, case, kwargs, where)
        return
    default = {spec.setting: spec.values[0]}
    if kwargs != default and close(value, spec.reference(logits, target, **default)):
        raise Mismatch(
            f"your result does not change with {spec.setting} ({where} it equals the loss for "
            f"{spec.setting}={spec.values[0]}): use the {spec.setting} argument instead of a "
            "fixed number"
        )
    if hard_wired_k:
        raise Mismatch(hard_k)
    if "extreme" in case.name and spec.setting == "gamma" and torch.isfinite(value).all():
        raise Mismatch(
            f"your loss is right for moderate logits but {value.item():.4f} {where}, the "
            f"reference gives {expected.item():.4f}: with logits this large the softmax of the "
            "true class underflows to 0, and the log of a clamped probability is not log p_t; "
            "use torch.log_softmax(logits, dim=1)"
        )
    if not torch.isfinite(value).all():
        _non_finite(spec, value, case, kwargs, where)
    if spec.setting == "gamma" and kwargs["gamma"] == 0.0 and case.k == 3:
        raise Mismatch(
            f"with gamma=0 the focal loss must equal the cross-entropy ({expected.item():.4f}) "
            f"but yours gives {value.item():.4f} {where}"
        )
    explain(
        value,
        expected,
        lambda: spec.variants(logits, target, **kwargs),
        f"your loss is {value.item():.4f} {where}, the reference gives {expected.item():.4f}, "
        "and it is none of the usual mistakes (softmax axis, smoothing, reduction, sign): "
        "compare your formula term by term with the equation above the exercise",
    )


_ELEMENTWISE = {
    "__mul__", "__rmul__", "mul", "__add__", "__radd__", "add", "__sub__", "__rsub__", "sub",
    "__truediv__", "__rtruediv__", "div", "where",
}  # fmt: skip


def _explain_error(text: str, fn: Callable, case: Case, kwargs: dict) -> str:
    """One plain sentence about the usual tensor errors of a loss (shapes named)."""
    b, k, h, w = case.logits.shape
    if "leaf Variable that requires grad" in text:
        return (
            "You change the logits in place (an operation ending in _, or `logits -= ...`); "
            "compute new tensors instead."
        )
    if "Index tensor must have the same number of dimensions" in text:
        return (
            f"gather needs an index with as many dimensions as log_p (B, K, H, W) = "
            f"{(b, k, h, w)}: use target.unsqueeze(1), shape (B, 1, H, W) = {(b, 1, h, w)}, and "
            ".squeeze(1) after gathering."
        )
    if "must match the size of tensor" in text:
        shapes = _failing_shapes(fn, case, kwargs)
        shown = " and ".join(str(shape) for shape in shapes)
        said = f"The failing operation combines tensors of shape {shown}. " if shapes else ""
        if (b, h, w, k) in shapes:
            return (
                f"{said}F.one_hot(target, K) is (B, H, W, K) = {(b, h, w, k)}: move its class "
                "axis to dim 1 with .permute(0, 3, 1, 2), so that it matches the probabilities "
                f"(B, K, H, W) = {(b, k, h, w)}."
            )
        if (b, h, w) in shapes:
            return (
                f"{said}The target (B, H, W) = {(b, h, w)} holds class numbers: make it one-hot, "
                f"(B, K, H, W) = {(b, k, h, w)}, before combining it with the probabilities."
            )
        return f"{said}The probabilities and the one-hot target are (B, K, H, W) = {(b, k, h, w)}."
    return ""


def _failing_shapes(fn: Callable, case: Case, kwargs: dict) -> list[tuple[int, ...]]:
    """The shapes of the elementwise operation that raised, found by running the student's code
    again with its torch calls recorded (the last one recorded is the one that failed)."""
    with RecordCalls(_ELEMENTWISE) as rec:
        try:
            fn(case.logits.clone().requires_grad_(True), case.target.clone(), **kwargs)
        except Exception:  # the error already reported; only the shapes are wanted
            pass
    return rec.calls[-1][1] if rec.calls else []


def _non_finite(spec: LossExercise, value, case: Case, kwargs: dict, where: str) -> None:
    if "extreme" in case.name:
        raise Mismatch(
            f"your loss is {value.item()} {where}: log(softmax(x)) underflows to log(0) = -inf "
            "when the logits are large; use torch.log_softmax(logits, dim=1), which computes "
            "the same thing stably"
        )
    if spec.setting == "smooth":
        raise Mismatch(
            f"your loss is {value.item()} {where}: a class absent from both the target and the "
            "prediction gives 0/0 without the smoothing term; add `smooth` to the numerator and "
            "the denominator"
        )
    raise Mismatch(
        f"your loss is {value.item()} {where}: log of 0 or of a negative number? Use "
        "torch.log_softmax(logits, dim=1)"
    )


def _check_gradient(spec: LossExercise, value, leaf, case: Case, kwargs: dict, where: str) -> None:
    """The gradient of the student's loss with respect to the logits must be the reference's."""
    expect(value.grad_fn is not None and value.requires_grad, NO_GRAD)
    (got,) = torch.autograd.grad(value, leaf, allow_unused=True)
    expect(got is not None, NO_GRAD)
    ref_leaf = case.logits.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(spec.reference(ref_leaf, case.target, **kwargs), ref_leaf)
    if close(got, expected, atol=GRAD_ATOL, rtol=GRAD_RTOL):
        return
    for loss_fn, message in spec.gradient_variants(case.logits, case.target, **kwargs).values():
        x = case.logits.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(x), x)
        if close(got, grad, atol=GRAD_ATOL, rtol=GRAD_RTOL):
            raise Mismatch(message)
    raise Mismatch(
        f"the value is right {where}, but its gradient with respect to the logits is not: part "
        "of your computation is cut off from autograd (.detach(), .data, .item(), torch.no_grad() "
        "or NumPy), so no gradient flows through that part"
    )


def _expect_scalar(value: torch.Tensor, logits: torch.Tensor, what: str) -> None:
    """Mismatch when the loss is not a single number, naming what its shape suggests."""
    if value.numel() == 1 and value.ndim <= 1:
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


SOFT_DICE = LossExercise(
    WHAT_DICE,
    "soft Dice",
    reference_soft_dice_loss,
    "smooth",
    (1.0, 0.5),
    dice_variants,
    dice_gradient_variants,
)
FOCAL = LossExercise(
    WHAT_FOCAL,
    "focal loss",
    reference_focal_loss,
    "gamma",
    (2.0, 0.5, 0.0),
    focal_variants,
    focal_gradient_variants,
)


def known_mistake_outputs() -> list[tuple]:
    """(mistake, reference, what the mistake gives, atol, rtol) on every input of both checks:
    values, and gradients for the mistakes that only change the gradient (used by the tests)."""
    from gruunet_edu.exercises._checks_common import ATOL, RTOL

    rows = []
    for spec in (SOFT_DICE, FOCAL):
        for setting in spec.values:
            kwargs = {spec.setting: setting}
            for case in _cases():
                expected = spec.reference(case.logits, case.target, **kwargs)
                grads = spec.gradient_variants(case.logits, case.target, **kwargs)
                grads = {} if "extreme" in case.name else grads
                for name, (out, _) in spec.variants(case.logits, case.target, **kwargs).items():
                    rows.append((f"{spec.label}: {name}", expected, out, ATOL, RTOL))
                x = case.logits.clone().requires_grad_(True)
                (ref_grad,) = torch.autograd.grad(spec.reference(x, case.target, **kwargs), x)
                for name, (loss_fn, _) in grads.items():
                    x = case.logits.clone().requires_grad_(True)
                    (grad,) = torch.autograd.grad(loss_fn(x), x)
                    rows.append((f"{spec.label}: {name}", ref_grad, grad, GRAD_ATOL, GRAD_RTOL))
    return rows


_exercise = partial(exercise, hints=_HINTS, notebook=NOTEBOOK)

soft_dice_exercise = _exercise(
    "soft_dice", "Soft Dice loss", lambda fn: _loss_checks(SOFT_DICE, fn), reference_soft_dice_loss
)
check_soft_dice = soft_dice_exercise.check

focal_exercise = _exercise(
    "focal_loss", "Focal loss", lambda fn: _loss_checks(FOCAL, fn), reference_focal_loss
)
check_focal_loss = focal_exercise.check
