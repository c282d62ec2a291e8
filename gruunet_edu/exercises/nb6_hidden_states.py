"""Checks for notebook 06 (hidden states): per-step read-out and mean gate value per step.

The student writes

- ``readout_per_step(model, states)``: for every captured state ``h_t`` the class probabilities
  ``softmax(model.readout(h_t))`` of the first (only) image, a list of (K, H, W) arrays;
- ``gate_means(states, which)``: the mean of the update gate ``z_t`` (``which="z"``) or the
  reset gate ``r_t`` (``which="r"``) over channels and pixels at every step, shape (S,).

The checks build a small GRUU-Net with fixed random weights, capture its states on a fixed
image, and compare with the reference; known mistakes (missing softmax, softmax over the wrong
axis, using ``o_t`` or the final logits, averaging over the wrong axes, z and r swapped...) get
their own message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

from gruunet_edu.exercises.core import Exercise, Mismatch, StudentError, as_numpy, call

__all__ = [
    "check_gate_means",
    "check_readout_per_step",
    "reference_gate_means",
    "reference_readout_per_step",
]

NOTEBOOK = "solutions/06_hidden_states.ipynb"

_HINTS = {
    "readout_per_step": [
        "Every state h_t has the shape of the final state (1, C_h, H, W), so the network's head "
        "can read it: model.readout(state.h) gives logits (1, K, H, W).",
        "Turn the logits into probabilities over the class axis: torch.softmax(logits, dim=1), "
        "then drop the batch dimension with [0].",
        "Inside `with torch.no_grad():` loop `for s in states:` and append "
        "torch.softmax(model.readout(s.h), dim=1)[0].numpy() to a list; return the list.",
    ],
    "gate_means": [
        "Each step s carries the gates as tensors s.z and s.r, shape (1, C_h, H, W); pick one "
        "with getattr(s, which).",
        "Average over everything except the step: channels and pixels (and the batch of one), "
        "e.g. getattr(s, which).mean().item().",
        "return np.array([getattr(s, which).mean().item() for s in states])",
    ],
}


def reference_readout_per_step(model: torch.nn.Module, states) -> list[np.ndarray]:
    """softmax(model.readout(h_t))[0] for every step, a list of (K, H, W) float32 arrays."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [
                torch.softmax(model.readout(s.h).float(), dim=1)[0].cpu().numpy() for s in states
            ]
    finally:
        model.train(was_training)


def reference_gate_means(states, which: str = "z") -> np.ndarray:
    """Mean of ``z_t`` or ``r_t`` over channels and pixels at every step, (S,)."""
    if which not in ("z", "r"):
        raise ValueError(f"which must be 'z' or 'r', got {which!r}")
    return np.array([float(getattr(s, which).float().mean()) for s in states])


@lru_cache(maxsize=1)
def _setup():
    """A tiny GRUU-Net with fixed weights (BatchNorm statistics not trivial) and its states."""
    from gruunet_edu.models.config import GRUUNetConfig
    from gruunet_edu.models.gruunet import GRUUNet

    g = torch.Generator().manual_seed(6)
    model = GRUUNet(GRUUNetConfig.preset("tiny", hidden_channels=4))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=g))
        model.train()
        model(torch.rand(2, 1, 16, 24, generator=g))  # BatchNorm running statistics
    model.eval()
    x = torch.rand(1, 1, 16, 24, generator=g)  # H != W so a wrong axis shows
    with torch.no_grad():
        logits, states = model(x, return_states=True)
    return model, x, logits, states


# ------------------------------------------------------------------------------ read-out
def _readout_checks(fn: Callable) -> int:
    model, _, logits, states = _setup()
    model = copy.deepcopy(model)  # the student's code may change BatchNorm statistics
    expected = reference_readout_per_step(model, states)
    try:
        out = call(fn, model, list(states), what="your readout_per_step")
    except StudentError as err:
        if "channels" in str(err):
            raise StudentError(
                f"{err}. The head reads the full-resolution state states[t].h (C_h channels), "
                "not the pooling stream states[t].o"
            ) from None
        raise
    if model.training:
        model.eval()
        raise Mismatch(
            "your function left the model in training mode; call model.eval() (BatchNorm must "
            "use its running statistics) or restore the mode it was in"
        )
    try:
        got = [np.asarray(as_numpy(p), dtype=np.float64) for p in out]
    except (TypeError, ValueError):
        raise Mismatch(
            "your readout_per_step must return a list with one (K, H, W) array per step, "
            f"it returned {type(out).__name__}"
        ) from None
    if len(got) != len(expected):
        raise Mismatch(
            f"you returned {len(got)} read-outs but there are {len(expected)} steps (states)"
        )
    k, h, w = expected[0].shape
    for t, (p, e) in enumerate(zip(got, expected, strict=True)):
        if p.shape == (1, k, h, w):
            raise Mismatch(
                f"read-out {t} has shape {p.shape}: drop the batch dimension, e.g. with [0]"
            )
        if p.shape != e.shape:
            raise Mismatch(f"read-out {t} has shape {p.shape}, expected {e.shape} (K, H, W)")
    got_arr, exp_arr = np.stack(got), np.stack(expected)
    if np.allclose(got_arr, exp_arr, atol=1e-5):
        return len(expected)
    with torch.no_grad():
        raw = np.stack([model.readout(s.h)[0].numpy() for s in states])
        final = torch.softmax(logits, dim=1)[0].numpy()
    if np.allclose(got_arr, raw, atol=1e-5):
        raise Mismatch(
            "these are logits: apply torch.softmax(..., dim=1) to get class probabilities"
        )
    if np.issubdtype(np.asarray(out[0]).dtype, np.integer) or np.allclose(
        got_arr, np.round(got_arr)
    ):
        raise Mismatch(
            "return the class probabilities (K, H, W), not the most likely class per pixel"
        )
    for dim in (0, 2, 3):
        with torch.no_grad():
            wrong = np.stack(
                [torch.softmax(model.readout(s.h), dim=dim)[0].numpy() for s in states]
            )
        if np.allclose(got_arr, wrong, atol=1e-5):
            raise Mismatch(
                f"wrong class axis: your softmax runs over dim={dim} of (1, K, H, W); the classes "
                "are dim=1"
            )
    if all(np.allclose(p, final, atol=1e-5) for p in got):
        raise Mismatch(
            "every read-out equals the network's final prediction: read each step's own state "
            "h_t (states[t].h), not the final logits"
        )
    sums = got_arr.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        raise Mismatch("the class probabilities of a pixel must sum to 1; use a softmax over dim=1")
    t = int(np.argmax(np.abs(got_arr - exp_arr).reshape(len(got), -1).max(axis=1)))
    raise Mismatch(
        f"read-out {t} differs from softmax(model.readout(states[{t}].h), dim=1)[0] by up to "
        f"{np.abs(got_arr[t] - exp_arr[t]).max():.3g}"
    )


# ------------------------------------------------------------------------------ gate means
def _gate_checks(fn: Callable) -> int:
    passed = 0
    _, _, _, states = _setup()
    s_count = len(states)
    c = states[0].z.shape[1]
    for which in ("z", "r"):
        expected = reference_gate_means(states, which)
        out = call(fn, list(states), which, what="your gate_means")
        try:
            got = np.asarray(as_numpy(out), dtype=np.float64)
        except (TypeError, ValueError):
            raise Mismatch(
                f"your gate_means must return one number per step, shape ({s_count},), "
                f"it returned {type(out).__name__}"
            ) from None
        if got.shape != expected.shape:
            if got.ndim == 0:
                raise Mismatch(
                    f"you returned a single number for which={which!r}: return one mean per "
                    f"step, shape ({s_count},)"
                )
            if got.shape in ((s_count, c), (s_count, 1, c)):
                raise Mismatch(
                    f"your result has shape {got.shape}: one value per channel; average over the "
                    "channels too, to get one number per step"
                )
            if got.ndim >= 2 and got.shape[0] == s_count:
                raise Mismatch(
                    f"your result has shape {got.shape}: average over channels and pixels, "
                    f"to get shape ({s_count},)"
                )
            raise Mismatch(
                f"your result has shape {got.shape}, expected ({s_count},): one mean per step"
            )
        if np.allclose(got, expected, atol=1e-5):
            passed += 1
            continue
        other = reference_gate_means(states, "r" if which == "z" else "z")
        if np.allclose(got, other, atol=1e-5):
            raise Mismatch(
                f"for which={which!r} you returned the means of the other gate: z is the update "
                "gate (s.z), r the reset gate (s.r)"
            )
        if np.allclose(got, 1.0 - expected, atol=1e-5):
            raise Mismatch(f"you returned 1 - {which}_t; return the mean of {which}_t itself")
        h_means = np.array([float(s.h.mean()) for s in states])
        if np.allclose(got, h_means, atol=1e-5):
            raise Mismatch(f"these are means of the state h_t; the gate is s.{which}")
        if got.min() < 0 or got.max() > 1:
            raise Mismatch("gates come from a sigmoid, so their means lie in [0, 1]; yours do not")
        raise Mismatch(
            f"for which={which!r} your means are {np.round(got, 4).tolist()}, expected "
            f"{np.round(expected, 4).tolist()}"
        )
    return passed


# ------------------------------------------------------------------------------ the exercises
readout_exercise = Exercise(
    name="readout_per_step",
    title="Per-step read-out",
    checker=_readout_checks,
    reference=reference_readout_per_step,
    hints=_HINTS["readout_per_step"],
    solution_notebook=NOTEBOOK,
)
check_readout_per_step = readout_exercise.check

gate_exercise = Exercise(
    name="gate_means",
    title="Mean gate value per step",
    checker=_gate_checks,
    reference=reference_gate_means,
    hints=_HINTS["gate_means"],
    solution_notebook=NOTEBOOK,
)
check_gate_means = gate_exercise.check
