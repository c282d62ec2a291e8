"""Segmentation losses: cross-entropy, soft Dice, focal, and their weighted sum.

All losses take raw ``logits`` of shape (B, K, H, W) and an integer ``target`` of shape (B, H, W)
with values in ``0..K-1`` (the 3-class target: 0 background, 1 interior, 2 boundary). Each is
computed in float32, also when the forward pass ran in mixed precision.

With ``p = softmax(logits)`` over the K classes and ``g`` the one-hot target, per pixel i:

- cross-entropy:  ``CE = -sum_i w_{y_i} log p_{i,y_i} / sum_i w_{y_i}`` (class weights ``w``,
  the weighted mean that ``torch.nn.functional.cross_entropy`` uses);
- soft Dice:      ``Dice_c = (2 sum_i p_ic g_ic + s) / (sum_i p_ic + sum_i g_ic + s)``,
  ``L_Dice = 1 - mean_c Dice_c`` (sums over the batch and all pixels, smoothing ``s``);
- focal loss (Lin et al., "Focal loss for dense object detection", ICCV 2017):
  ``FL = -mean_i alpha_{y_i} (1 - p_{i,y_i})^gamma log p_{i,y_i}``: well classified pixels
  (p close to 1) are down-weighted so training concentrates on the hard ones, such as the thin
  boundary class between touching nuclei. GRUU-Net (Wollmann et al., "GRUU-Net: Integrated
  convolutional and gated recurrent neural network for cell segmentation", Medical Image Analysis
  56, 2019) proposes a focal-type loss for the same reason; this is the standard focal form, not
  a reproduction of the paper's exact variant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import global_sum


def _as_weight(
    weights: Sequence[float] | torch.Tensor | None, num_classes: int, like: torch.Tensor
) -> torch.Tensor | None:
    if weights is None:
        return None
    w = torch.as_tensor(weights, dtype=torch.float32, device=like.device)
    if w.shape != (num_classes,):
        raise ValueError(f"expected {num_classes} class weights, got shape {tuple(w.shape)}")
    return w


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 4 or target.ndim != 3:
        raise ValueError(
            f"expected logits (B, K, H, W) and target (B, H, W), "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    b, _, h, w = logits.shape
    if tuple(target.shape) != (b, h, w):
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}"
        )


def cross_entropy_loss(
    logits: torch.Tensor,  # (B, K, H, W)
    target: torch.Tensor,  # (B, H, W) integer
    class_weights: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixel-wise cross-entropy ``-log p_{y}``, averaged (weighted by class weights if given)."""
    _check(logits, target)
    weight = _as_weight(class_weights, logits.shape[1], logits)
    return F.cross_entropy(logits.float(), target.long(), weight=weight)


def soft_dice_loss(
    logits: torch.Tensor,  # (B, K, H, W)
    target: torch.Tensor,  # (B, H, W) integer
    smooth: float = 1.0,
    include_background: bool = True,
) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c (2 sum p g + s) / (sum p + sum g + s)`` over classes c.

    The sums run over the whole batch (one Dice per class, not per image), which keeps the loss
    well defined on crops where a class is absent; in data-parallel training they run over the
    global batch, all processes' shares (:func:`~.distributed.global_sum`).
    ``include_background=False`` averages over classes 1..K-1 only.
    """
    _check(logits, target)
    num_classes = logits.shape[1]
    probs = torch.softmax(logits.float(), dim=1)  # (B, K, H, W)
    onehot = F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).float()  # (B, K, H, W)
    dims = (0, 2, 3)
    local = torch.stack([(probs * onehot).sum(dims), probs.sum(dims) + onehot.sum(dims)])
    intersection, denominator = global_sum(local)  # (K,) each
    dice = (2.0 * intersection + smooth) / (denominator + smooth)  # (K,)
    if not include_background:
        dice = dice[1:]
    return 1.0 - dice.mean()


def focal_loss(
    logits: torch.Tensor,  # (B, K, H, W)
    target: torch.Tensor,  # (B, H, W) integer
    gamma: float = 2.0,
    alpha: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Focal loss ``-mean alpha_y (1 - p_y)^gamma log p_y`` (Lin et al. 2017).

    ``gamma = 0`` and no ``alpha`` give the plain cross-entropy. ``alpha`` is a per-class weight
    (length K); unlike the class weights of :func:`cross_entropy_loss`, the focal loss takes the
    plain mean over pixels, as in Lin et al.
    """
    _check(logits, target)
    target = target.long()
    log_probs = torch.log_softmax(logits.float(), dim=1)  # (B, K, H, W)
    log_pt = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)  # (B, H, W)
    pt = log_pt.exp()
    loss = -((1.0 - pt).clamp(min=0.0) ** gamma) * log_pt  # (B, H, W)
    weight = _as_weight(alpha, logits.shape[1], logits)
    if weight is not None:
        loss = loss * weight[target]
    return loss.mean()


class SegmentationLoss(nn.Module):
    """Weighted sum ``ce * CE + dice * L_Dice + focal * FL`` of the three losses above.

    The default (cross-entropy + Dice, equal weights) is a robust choice for the 3-class target;
    set ``focal > 0`` (e.g. ``ce=0, dice=1, focal=1``) for the focal-type objective of GRUU-Net.
    """

    def __init__(
        self,
        ce: float = 1.0,
        dice: float = 1.0,
        focal: float = 0.0,
        class_weights: Sequence[float] | None = None,
        gamma: float = 2.0,
    ) -> None:
        super().__init__()
        if min(ce, dice, focal) < 0 or ce + dice + focal <= 0:
            raise ValueError("loss weights must be >= 0 and not all zero")
        self.ce = float(ce)
        self.dice = float(dice)
        self.focal = float(focal)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.gamma = float(gamma)

    def components(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The individual terms with a non-zero weight, by name (``ce``, ``dice``, ``focal``)."""
        parts: dict[str, torch.Tensor] = {}
        if self.ce:
            parts["ce"] = cross_entropy_loss(logits, target, self.class_weights)
        if self.dice:
            parts["dice"] = soft_dice_loss(logits, target)
        if self.focal:
            parts["focal"] = focal_loss(logits, target, self.gamma, alpha=self.class_weights)
        return parts

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        parts = self.components(logits, target)
        weights = {"ce": self.ce, "dice": self.dice, "focal": self.focal}
        return sum(weights[name] * value for name, value in parts.items())  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"ce={self.ce}, dice={self.dice}, focal={self.focal}, gamma={self.gamma}"


_NAMED = {
    "ce": {"ce": 1.0, "dice": 0.0, "focal": 0.0},
    "dice": {"ce": 0.0, "dice": 1.0, "focal": 0.0},
    "focal": {"ce": 0.0, "dice": 0.0, "focal": 1.0},
    "ce+dice": {"ce": 1.0, "dice": 1.0, "focal": 0.0},
    "focal+dice": {"ce": 0.0, "dice": 1.0, "focal": 1.0},
}

LOSS_NAMES = tuple(_NAMED)


def make_loss(name: str = "ce+dice", **kwargs) -> SegmentationLoss:
    """A :class:`SegmentationLoss` by name: ``ce``, ``dice``, ``focal``, ``ce+dice`` or
    ``focal+dice``."""
    key = name.replace(" ", "").lower()
    if key not in _NAMED:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}")
    return SegmentationLoss(**{**_NAMED[key], **kwargs})
