"""Known mistakes in the two exercises of notebook 06 (per-step read-out, mean gate value).

``states`` is the list of captured FRDU steps (each with ``h``, ``z``, ``r`` of shape
(1, C_h, H, W)); every table maps a mistake to (what it returns, the message).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from gruunet_edu.viz.readout import gate_means as reference_gate_means


def _probs(model, states, transform: Callable, source: Callable = lambda s: s.h, train=False):
    """transform(model.readout(source(s))) for every step, on a copy of the model."""
    m = copy.deepcopy(model).train(train)
    with torch.no_grad():
        return np.stack([transform(m.readout(source(s)).float())[0].numpy() for s in states])


def readout_variants(model, states, all_states) -> dict[str, tuple[np.ndarray, str]]:
    """name -> (what the mistake returns, stacked (S, K, H, W), message); ``states`` is a run of
    consecutive steps out of ``all_states``."""
    v: dict[str, tuple[np.ndarray, str]] = {
        "logits": (
            _probs(model, states, lambda x: x),
            "these are logits: apply torch.softmax(..., dim=1) to get class probabilities",
        ),
        "sigmoid": (
            _probs(model, states, torch.sigmoid),
            "you used a sigmoid: the K classes are exclusive, so the probabilities come from a "
            "softmax over the class axis, torch.softmax(logits, dim=1)",
        ),
        "log_softmax": (
            _probs(model, states, lambda x: torch.log_softmax(x, 1)),
            "these are log-probabilities (log_softmax): return the probabilities themselves, "
            "torch.softmax(logits, dim=1)",
        ),
        "train mode": (
            _probs(model, states, lambda x: torch.softmax(x, 1), train=True),
            "your read-outs use BatchNorm's statistics of this one image (the model was in "
            "training mode): call model.eval() first, so BatchNorm uses its running statistics",
        ),
        "gate z": (
            _probs(model, states, lambda x: torch.softmax(x, 1), source=lambda s: s.z),
            "you read the update gate z_t (s.z) through the head; the state is s.h",
        ),
        "gate r": (
            _probs(model, states, lambda x: torch.softmax(x, 1), source=lambda s: s.r),
            "you read the reset gate r_t (s.r) through the head; the state is s.h",
        ),
    }
    for dim in (0, 2, 3):
        v[f"dim {dim}"] = (
            _probs(model, states, lambda x, d=dim: torch.softmax(x, d)),
            f"wrong class axis: your softmax runs over dim={dim} of (1, K, H, W); the classes "
            "are dim=1",
        )
    ref = _probs(model, states, lambda x: torch.softmax(x, 1))
    full = _probs(model, all_states, lambda x: torch.softmax(x, 1))
    first = [i for i, s in enumerate(all_states) if s is states[0]][0]
    before = np.concatenate([full[max(first - 1, 0)][None], full[first : first + len(ref) - 1]])
    v["previous step"] = (
        before,
        "Read-out t uses the state of the step before (states[t - 1].h): read each step's own "
        "state, states[t].h",
    )
    return v


def gate_variants(states, which: str) -> dict[str, tuple[np.ndarray, str]]:
    gates = [getattr(s, which).double() for s in states]  # each (1, C_h, H, W)
    other = "r" if which == "z" else "z"
    ref = np.array([float(g.mean()) for g in gates])
    return {
        "other gate": (
            reference_gate_means(states, other),
            f"for which={which!r} you returned the means of the other gate: z is the update "
            "gate (s.z), r the reset gate (s.r); use getattr(s, which)",
        ),
        "one minus": (
            1.0 - ref,
            f"you returned 1 - {which}_t; return the mean of {which}_t itself",
        ),
        "state": (
            np.array([float(s.h.double().mean()) for s in states]),
            f"these are means of the state h_t; the gate is s.{which}",
        ),
        "first channel": (
            np.array([float(g[0, 0].mean()) for g in gates]),
            "you average only the first channel (g[0, 0]): average over all channels and pixels",
        ),
        "sum": (
            np.array([float(g.sum()) for g in gates]),
            "you sum the gate over channels and pixels; take the mean, .mean()",
        ),
        "max": (
            np.array([float(g.max()) for g in gates]),
            "you return the largest gate value of each step; take the mean, .mean()",
        ),
        "sigmoid again": (
            np.array([float(torch.sigmoid(g).mean()) for g in gates]),
            "the gates are already sigmoid outputs in [0, 1]: do not apply a sigmoid again, "
            "just average them",
        ),
    }
