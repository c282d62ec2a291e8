"""Test-time augmentation: the prediction averaged over the eight symmetries of the square.

A nucleus is still a nucleus when the image is turned by 90 degrees or mirrored, and the training
data are augmented with exactly these turns and flips, but a small network trained briefly does
not answer every orientation the same way: along a seam or an edge, where it is least sure, one
orientation calls a pixel "boundary" and another "interior". Averaging the class probabilities
over the dihedral group D4 (four rotations, each with and without a mirror flip),

    p_TTA(x) = 1/8  sum_{g in D4}  g^-1( softmax(f(g x)) ),

turns the network into one that treats every orientation alike and averages that orientation
noise out. It costs eight forward passes instead of one and changes no weight
(Cellpose's ``augment`` option averages over flips in the same way).

``benchmarks/bench_train.py`` measures what it buys: its ``no TTA`` rows predict once.
"""

from __future__ import annotations

import torch
from torch import nn

#: The eight elements of D4 as (quarter turns k, mirrored): x -> flip(rot90(x, k)).
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, f) for k in range(4) for f in (False, True))


def transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``g x``: turn the last two dims by ``k`` quarter turns, then mirror the columns."""
    x = torch.rot90(x, k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


def inverse(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``g^-1 x`` of :func:`transform` (mirror first, then turn back)."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -k, dims=(-2, -1))


@torch.no_grad()
def class_probabilities(
    model: nn.Module,
    x: torch.Tensor,  # (B, C, H, W)
    tta: bool = False,
) -> torch.Tensor:  # (B, K, H, W) float32
    """Softmax of the model's logits; with ``tta`` averaged over the eight :data:`DIHEDRAL`
    symmetries (an image that is not square is predicted with its sides swapped for odd k)."""
    if not tta:
        return torch.softmax(model(x).float(), dim=1)
    total: torch.Tensor | None = None
    for k, flip in DIHEDRAL:
        probs = inverse(torch.softmax(model(transform(x, k, flip)).float(), dim=1), k, flip)
        total = probs if total is None else total.add_(probs)
    assert total is not None
    return total.div_(len(DIHEDRAL))
