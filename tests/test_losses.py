"""Losses against values worked out by hand on two pixels."""

import math

import pytest
import torch

from gruunet_edu.training.losses import (
    SegmentationLoss,
    cross_entropy_loss,
    focal_loss,
    make_loss,
    soft_dice_loss,
)


def two_pixels():
    """Two classes, two pixels: pixel a has p = (1/4, 3/4) and target 1; pixel b has
    p = (1/2, 1/2) and target 0."""
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(3.0), 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])  # (1, 1, 2)
    return logits, target


def test_cross_entropy_by_hand():
    logits, target = two_pixels()
    expected = (-math.log(0.75) - math.log(0.5)) / 2
    assert cross_entropy_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_class_weights_take_the_weighted_mean():
    logits, target = two_pixels()
    # weight 3 for class 1 (pixel a), 1 for class 0 (pixel b)
    expected = (3 * -math.log(0.75) + 1 * -math.log(0.5)) / 4
    value = cross_entropy_loss(logits, target, class_weights=[1.0, 3.0]).item()
    assert value == pytest.approx(expected, rel=1e-6)


def test_soft_dice_by_hand():
    logits, target = two_pixels()
    # class 0: sum p g = 1/2, sum p = 3/4, sum g = 1
    # class 1: sum p g = 3/4, sum p = 5/4, sum g = 1
    dice0, dice1 = (2 * 0.5) / (0.75 + 1), (2 * 0.75) / (1.25 + 1)  # 4/7 and 2/3 without smoothing
    assert soft_dice_loss(logits, target, smooth=0.0).item() == pytest.approx(
        1 - (dice0 + dice1) / 2, rel=1e-6
    )
    smooth0, smooth1 = (1 + 1) / (1.75 + 1), (1.5 + 1) / (2.25 + 1)
    assert soft_dice_loss(logits, target, smooth=1.0).item() == pytest.approx(
        1 - (smooth0 + smooth1) / 2, rel=1e-6
    )
    assert soft_dice_loss(logits, target, smooth=0.0, include_background=False).item() == (
        pytest.approx(1 - dice1, rel=1e-6)
    )


def test_focal_loss_by_hand_and_gamma_zero_is_cross_entropy():
    logits, target = two_pixels()
    expected = (-(0.25**2) * math.log(0.75) - (0.5**2) * math.log(0.5)) / 2
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(
        cross_entropy_loss(logits, target).item(), rel=1e-6
    )
    alpha = (-(0.25**2) * math.log(0.75) * 2.0 - (0.5**2) * math.log(0.5) * 0.5) / 2
    value = focal_loss(logits, target, 2.0, alpha=[0.5, 2.0]).item()
    assert value == pytest.approx(alpha, rel=1e-6)


def test_perfect_prediction_has_tiny_loss():
    target = torch.tensor([[[0, 1], [2, 1]]])
    logits = 50.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert cross_entropy_loss(logits, target).item() < 1e-6
    assert soft_dice_loss(logits, target, smooth=0.0).item() < 1e-6
    assert focal_loss(logits, target).item() < 1e-6


def test_combined_loss_is_the_weighted_sum():
    logits, target = two_pixels()
    loss = SegmentationLoss(ce=2.0, dice=0.5, focal=1.0)
    expected = (
        2.0 * cross_entropy_loss(logits, target)
        + 0.5 * soft_dice_loss(logits, target)
        + 1.0 * focal_loss(logits, target)
    )
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(make_loss("ce+dice").components(logits, target)) == {"ce", "dice"}


def test_bad_arguments_raise_clear_errors():
    logits, target = two_pixels()
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge")
    with pytest.raises(ValueError, match="does not match"):
        cross_entropy_loss(logits, torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="class weights"):
        cross_entropy_loss(logits, target, class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=">= 0"):
        SegmentationLoss(ce=-1.0)
