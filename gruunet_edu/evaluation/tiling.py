"""Tiled prediction: large images in overlapping tiles, blended back together.

A fully convolutional network can segment an image of any size, but memory grows with the image.
The image is cut into tiles of ``tile x tile`` pixels that overlap by ``overlap`` pixels; each
tile's class probabilities are weighted by a window that is 1 in the tile's centre and falls
linearly to nearly 0 over ``overlap`` pixels at edges shared with a neighbouring tile (edges on
the image border keep weight 1), and the weighted probabilities are averaged. Pixels near a tile
edge, where the network sees less context, thus count little, and seams disappear.

Normalisation is done once on the whole image (percentile normalisation per tile would change
the intensities from tile to tile).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .prepare import eval_mode, in_channels_of, model_device, prepare_image
from .tta import class_probabilities


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length`` with at least ``overlap``
    pixels shared by neighbours; the last tile ends exactly at ``length``."""
    if tile >= length:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile size ({tile})")
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D window: linear ramps of ``overlap`` pixels at the edges that have a neighbour."""
    w = np.ones(length, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap  # (0, 1)
        n = min(overlap, length)
        if ramp_start:
            w[:n] = np.minimum(w[:n], ramp[:n])
        if ramp_end:
            w[-n:] = np.minimum(w[-n:], ramp[:n][::-1])
    return w


@torch.no_grad()
def predict_tiled(
    model: nn.Module,
    image,  # (H, W) or (C, H, W)
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    normalize: bool = True,
    tta: bool = False,
) -> np.ndarray:  # (K, H, W) float32
    """Class probabilities of a (large) image predicted in overlapping, blended tiles.

    ``tile`` should be a multiple of the model's ``size_multiple`` (otherwise each tile is padded);
    ``overlap`` of a few dozen pixels hides the seams. ``tta`` averages every tile over its eight
    turns and flips (:mod:`~gruunet_edu.evaluation.tta`). Returns softmax probabilities (K, H, W).
    """
    if tile <= 0 or overlap < 0 or batch_size <= 0:
        raise ValueError("tile and batch_size must be positive and overlap >= 0")
    arr = prepare_image(image, in_channels_of(model), normalize)  # (C, H, W)
    _, height, width = arr.shape
    device = torch.device(device) if device is not None else model_device(model)
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    boxes = [(y, x) for y in ys for x in xs]

    total: np.ndarray | None = None  # (K, H, W) weighted sum of probabilities
    weight = np.zeros((height, width), dtype=np.float32)
    with eval_mode(model):
        for first in range(0, len(boxes), batch_size):
            chunk = boxes[first : first + batch_size]
            batch = np.stack([arr[:, y : y + th, x : x + tw] for y, x in chunk])  # (n, C, th, tw)
            inputs = torch.from_numpy(batch).to(device)
            probs = class_probabilities(model, inputs, tta).cpu().numpy()  # (n, K, th, tw)
            if total is None:
                total = np.zeros((probs.shape[1], height, width), dtype=np.float32)
            for (y, x), p in zip(chunk, probs, strict=True):
                wy = _ramp(th, overlap, y > 0, y + th < height)
                wx = _ramp(tw, overlap, x > 0, x + tw < width)
                w = wy[:, None] * wx[None, :]  # (th, tw)
                total[:, y : y + th, x : x + tw] += p * w
                weight[y : y + th, x : x + tw] += w
    assert total is not None
    total /= weight[None]  # in place: no second (K, H, W) array for a large image
    return total
