"""Reading GRUU-Net's recurrent state step by step (notebook 06 and the hidden-state explorer).

Every FRDU step t leaves a full-resolution state ``h_t`` of the shape of the final state, so the
network's head can read any of them:

    y^(t) = softmax(head(h_t))          (K, H, W) class probabilities after step t

and the gates say how much each step changes the state: the mean of the update gate ``z_t``
(``h_t = (1 - z_t) . h_{t-1} + z_t . h~_t``) or of the reset gate ``r_t`` over channels and pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gruunet_edu.evaluation.inference import eval_mode

GATES = ("z", "r")


def readout_per_step(model: torch.nn.Module, states: Sequence) -> list[np.ndarray]:
    """``softmax(model.readout(h_t), dim=1)[0]`` for every step: a list of (K, H, W) float32
    arrays. The model is read in eval mode (BatchNorm with its running statistics); its mode is
    restored afterwards."""
    with eval_mode(model), torch.no_grad():
        return [
            torch.softmax(model.readout(s.h).float(), dim=1)[0].cpu().numpy()  # (K, H, W)
            for s in states
        ]


def gate_means(states: Sequence, which: str = "z") -> np.ndarray:
    """Mean of ``z_t`` (``which="z"``) or ``r_t`` (``which="r"``) over channels and pixels at
    every step, shape (S,)."""
    if which not in GATES:
        raise ValueError(f"which must be 'z' (update gate) or 'r' (reset gate), got {which!r}")
    return np.array([float(getattr(s, which).float().mean()) for s in states])
