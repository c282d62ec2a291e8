"""Bonus of notebook 01: a 1x1-kernel ConvGRU in PyTorch's GRUCell convention equals
``torch.nn.GRUCell`` applied at every pixel, with the weights copied."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import Mismatch, call, close, expect, seeded


def reference_gru_1x1(x: torch.Tensor, h: torch.Tensor, gru: nn.GRUCell) -> torch.Tensor:
    """``torch.nn.GRUCell`` at every pixel, written as 1x1 convolutions (its convention).

    PyTorch's GRUCell (Cho et al. 2014's convention, gates stacked r, z, n):
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r . (W_hn h + b_hn)),  h' = (1 - z) . n + z . h
    so its z is this course's 1 - z, its reset acts after the state convolution, and its
    candidate uses tanh. x (B, C_x, H, W), h (B, C, H, W) -> h' (B, C, H, W).
    """
    _, _, r, z, n = _gates(x, h, gru)
    return (1 - z) * n + z * h


def _gates(x: torch.Tensor, h: torch.Tensor, gru: nn.GRUCell) -> tuple[torch.Tensor, ...]:
    """(gi, gh, r, z, n): the input and state terms of all three gates, each (B, 3C, H, W)
    stacked [r | z | n], then the gates r, z and the candidate n, each (B, C, H, W)."""
    c = gru.hidden_size
    w_i = gru.weight_ih[:, :, None, None]  # (3C, C_x, 1, 1)
    w_h = gru.weight_hh[:, :, None, None]  # (3C, C, 1, 1)
    gi = F.conv2d(x, w_i, gru.bias_ih)  # (B, 3C, H, W): [r | z | n] input terms
    gh = F.conv2d(h, w_h, gru.bias_hh)  # (B, 3C, H, W): [r | z | n] state terms
    r = torch.sigmoid(gi[:, :c] + gh[:, :c])
    z = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
    n = torch.tanh(gi[:, 2 * c :] + r * gh[:, 2 * c :])
    return gi, gh, r, z, n


def _per_pixel_gru(x: torch.Tensor, h: torch.Tensor, gru: nn.GRUCell) -> torch.Tensor:
    b, cx, hh, ww = x.shape
    xs = x.permute(0, 2, 3, 1).reshape(-1, cx)
    hs = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
    return gru(xs, hs).reshape(b, hh, ww, -1).permute(0, 3, 1, 2)


def _gru_variants(x, h, gru) -> dict[str, torch.Tensor]:
    """Typical mistakes, to name the one a student made."""
    c = gru.hidden_size
    gi, gh, r, z, n = _gates(x, h, gru)
    z_sw, r_sw = r, z  # the gates taken in the order z, r
    n_sw = torch.tanh(gi[:, 2 * c :] + r_sw * gh[:, 2 * c :])
    w_hn = gru.weight_hh[2 * c :, :, None, None]
    n_before = torch.tanh(gi[:, 2 * c :] + F.conv2d(r * h, w_hn, gru.bias_hh[2 * c :]))
    return {
        "z and 1 - z are swapped: in PyTorch's convention z keeps the old state, "
        "h' = (1 - z) * n + z * h (the course's z is PyTorch's 1 - z)": z * n + (1 - z) * h,
        "the gates are stacked r, z, n in weight_ih and weight_hh (you took z first)": (1 - z_sw)
        * n_sw
        + z_sw * h,
        "GRUCell applies the reset after the state convolution, n = tanh(W_in x + b_in + r * "
        "(W_hn h + b_hn)); you reset h before it (that is the course's ConvGRU)": (1 - z) * n_before
        + z * h,
    }


def _check_gru_1x1(student: Any) -> int:
    checks = 0
    for cx, c, size in ((3, 4, (5, 6)), (1, 2, (3, 3))):
        with seeded(cx * 10 + c):
            gru = nn.GRUCell(cx, c)
            x = torch.randn(2, cx, *size)
            h = torch.randn(2, c, *size)
        with torch.no_grad():
            expected = _per_pixel_gru(x, h, gru)
            got = call(student, x, h, gru, what="your function")
        expect(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
        expect(
            tuple(got.shape) == tuple(h.shape),
            f"the new state has shape {tuple(got.shape)}, expected {tuple(h.shape)} (like h)",
        )
        if not close(got, expected):
            with torch.no_grad():
                for message, variant in _gru_variants(x, h, gru).items():
                    if close(got, variant):
                        raise Mismatch(message)
            raise Mismatch(
                "your result differs from torch.nn.GRUCell applied at every pixel; check the "
                "gate order (r, z, n), the biases b_ih and b_hh, and tanh for the candidate"
            )
        checks += 1
    return checks


_HINTS = (
    "gru.weight_ih is (3C, C_x): reshape it to a 1x1 kernel with [:, :, None, None] and use "
    "F.conv2d(x, kernel, gru.bias_ih); the same for weight_hh, bias_hh and h.",
    "The 3C output channels are stacked r, z, n: slice [:, :C], [:, C:2C], [:, 2C:].",
    "n = tanh(gi_n + r * gh_n), then h' = (1 - z) * n + z * h (PyTorch's convention).",
)

gru_1x1_exercise = bonus(
    "gru_1x1",
    "a 1x1 ConvGRU is torch.nn.GRUCell",
    _check_gru_1x1,
    reference_gru_1x1,
    _HINTS,
    "01_convgru",
)
check_gru_1x1 = gru_1x1_exercise.check
