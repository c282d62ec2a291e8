"""Bonus of notebook 06: how far each FRDU step moves the full-resolution state."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import Mismatch, call, close, expect, seeded


def reference_state_change(states: list[Any]) -> np.ndarray:
    """mean |h_t - h_{t-1}| over channels and pixels for t = 2 ... T (``states[t - 1].h`` is h_t).

    Returns (T - 1,); entry i belongs to step t = i + 2 (h_0, the stem, is not captured).
    """
    hs = [s.h.float() for s in states]
    return np.array([float((b - a).abs().mean()) for a, b in zip(hs[:-1], hs[1:], strict=True)])


class _Step:
    def __init__(self, h: torch.Tensor) -> None:
        self.h = h


def _check_state_change(student: Any) -> int:
    with seeded(6):
        hs = [torch.randn(1, 4, 8, 8) * (t + 1) for t in range(5)]
    hs[3] = hs[2].clone()  # step t = 4 changes nothing
    states = [_Step(h) for h in hs]
    got = np.asarray(call(student, states, what="your function"), dtype=float)
    expected = reference_state_change(states)
    expect(
        got.shape == expected.shape,
        f"return one number per step t = 2 ... {len(states)}, shape {expected.shape}; got "
        f"{got.shape}",
    )
    if close(got, expected):
        return 1
    signed = np.array(
        [float((b.h - a.h).mean()) for a, b in zip(states[:-1], states[1:], strict=True)]
    )
    if close(got, signed):
        raise Mismatch("take the absolute value before the mean: changes up and down would cancel")
    if abs(got[2]) > 1e-6:
        raise Mismatch(
            "step t = 4 repeats h_3 exactly, so its change must be 0; compare h_t with h_{t-1}"
        )
    raise Mismatch(f"your changes {np.round(got, 4)} differ from {np.round(expected, 4)}")


_HINTS = (
    "Pair every state with the one before: zip(states[:-1], states[1:]).",
    "For each pair: (b.h - a.h).abs().mean().item(); return np.array of the list.",
)

state_change_exercise = bonus(
    "state_change",
    "how far each step moves the state",
    _check_state_change,
    reference_state_change,
    _HINTS,
    "06_hidden_states",
)
check_state_change = state_change_exercise.check
