"""Checks for notebook 06 (hidden states): per-step read-out and mean gate value per step.

The student writes

- ``readout_per_step(model, states)``: for every captured state ``h_t`` the class probabilities
  ``softmax(model.readout(h_t))`` of the first (only) image, a list of (K, H, W) NumPy arrays,
  read in eval mode (what the network would predict if it stopped after step t);
- ``gate_means(states, which)``: the mean of the update gate ``z_t`` (``which="z"``) or the
  reset gate ``r_t`` (``which="r"``) over channels and pixels at every step, shape (S,).

The references are the package's :mod:`gruunet_edu.viz.readout`. The checks build a small
GRUU-Net with fixed random weights and non-trivial BatchNorm statistics, capture its states on a
fixed image (H != W), and compare with the reference on all steps and on a shorter list of steps,
with the model given in eval mode and in train mode; the caller's list, states and model must be
left as they were. Known mistakes (missing softmax, softmax over the wrong axis, a sigmoid,
log-probabilities, train-mode BatchNorm, reading ``o_t``, ``z_t`` or the final logits, the state
of the step before, averaging over the wrong axes, z and r swapped...) get their own message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache, partial

import numpy as np
import torch

from gruunet_edu.exercises._checks_common import exercise
from gruunet_edu.exercises.core import Mismatch, StudentError, as_numpy, call, expect
from gruunet_edu.exercises.mistakes.nb6 import gate_variants, readout_variants
from gruunet_edu.viz.readout import gate_means as reference_gate_means
from gruunet_edu.viz.readout import readout_per_step as reference_readout_per_step

__all__ = [
    "check_gate_means",
    "check_readout_per_step",
    "known_mistake_outputs",
    "reference_gate_means",
    "reference_readout_per_step",
]

NOTEBOOK = "solutions/06_hidden_states.ipynb"
ATOL = 1e-5

_HINTS = {
    "readout_per_step": [
        "Every state h_t has the shape of the final state (1, C_h, H, W), so the network's head "
        "can read it: model.readout(state.h) gives logits (1, K, H, W). Call model.eval() first: "
        "a read-out is a prediction, made with BatchNorm's running statistics (the check also "
        "hands in a model that is in training mode).",
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


def _inputs() -> list[tuple[str, torch.nn.Module, list, bool]]:
    """(description, a fresh copy of the model, the states, whether the model is in train mode).

    The student's code may change BatchNorm statistics or the mode: every case gets its own
    copy. The shorter list has 3 steps, so a loop over a fixed number of steps fails."""
    model, _, _, states = _setup()
    cases = []
    for name, steps, train in (
        ("all 5 steps, model in eval mode", slice(None), False),
        ("steps 1..3 only (3 states), model given in train mode", slice(1, 4), True),
    ):
        m = copy.deepcopy(model).train(train)
        cases.append((name, m, list(states[steps]), train))
    return cases


def _snapshot(states) -> list[tuple[torch.Tensor, ...]]:
    return [(s.h.clone(), s.z.clone(), s.r.clone()) for s in states]


def _expect_unchanged(given: list, states: list, before: list, what: str) -> None:
    expect(
        len(given) == len(states) and all(a is b for a, b in zip(given, states, strict=False)),
        f"your {what} emptied or changed the list of states it was given (e.g. states.pop()): "
        "the next cells use the same list again; loop over it with `for s in states:` instead",
    )
    expect(
        all(
            torch.equal(s.h, h) and torch.equal(s.z, z) and torch.equal(s.r, r)
            for s, (h, z, r) in zip(states, before, strict=True)
        ),
        f"your {what} changed the gates or states in place (an operation ending in _, or an "
        "assignment into s.h, s.z or s.r): compute new tensors instead",
    )


# ------------------------------------------------------------------------------ read-out


def _readout_checks(fn: Callable) -> int:
    passed = 0
    _, _, logits, all_states = _setup()
    for name, model, states, train in _inputs():
        where = f"for {name}"
        given, before = list(states), _snapshot(states)
        expected = reference_readout_per_step(copy.deepcopy(model), states)
        try:
            out = call(fn, model, given, what="your readout_per_step")
        except StudentError as err:
            raise StudentError(_readout_error(err, name, len(states))) from None
        _expect_unchanged(given, states, before, "readout_per_step")
        expect(
            train or not model.training,
            "your function left the model in training mode; call model.eval() (BatchNorm must "
            "use its running statistics) or restore the mode it was in",
        )
        got = _as_readouts(out, expected, where)
        got_arr, exp_arr = np.stack(got), np.stack(expected)
        if np.allclose(got_arr, exp_arr, atol=ATOL):
            passed += 1
            continue
        _explain_readout(got_arr, exp_arr, model, states, logits, all_states, where)
    return passed


def _readout_error(err: StudentError, name: str, n_steps: int) -> str:
    text = str(err)
    if "GRUUNet expects input" in text:
        return (
            f"{err.brief} model(...) runs the whole network on an image (1 channel); the head "
            "alone reads a state: model.readout(states[t].h)."
        )
    if "channels" in text:
        return (
            f"{err.brief} The head reads the full-resolution state states[t].h (C_h channels), "
            "not the pooling stream states[t].o."
        )
    if "requires grad" in text:
        return (
            f"{err.brief} The read-out is computed with gradients: wrap the loop in "
            "`with torch.no_grad():` (or call .detach() before .numpy())."
        )
    if "IndexError" in text or "out of range" in text:
        return (
            f"{err.brief} This input has {n_steps} steps ({name}): loop over the states you are "
            "given (for s in states), not over a fixed number of steps."
        )
    return err.brief


def _as_readouts(out, expected: list[np.ndarray], where: str) -> list[np.ndarray]:
    k, h, w = expected[0].shape
    if out is None:
        raise Mismatch("your readout_per_step returned None: is a `return` statement missing?")
    if not isinstance(out, list):
        raise Mismatch(
            f"your readout_per_step returned a {type(out).__name__}; return a list with one "
            "(K, H, W) array per step: the next cells index it (readouts[t]) and take its len()"
        )
    if len(out) != len(expected):
        raise Mismatch(
            f"you returned {len(out)} read-outs but there are {len(expected)} steps (states) "
            f"{where}: one read-out per state you are given"
        )
    got = []
    for t, p in enumerate(out):
        if isinstance(p, torch.Tensor):
            raise Mismatch(
                f"Read-out {t} is a torch tensor; return NumPy arrays (tensor.numpy()): the "
                "next cells use them with NumPy"
            )
        if not isinstance(p, np.ndarray):
            raise Mismatch(
                f"Read-out {t} is a {type(p).__name__}; return NumPy arrays of shape (K, H, W)"
            )
        if p.shape == (1, k, h, w):
            raise Mismatch(
                f"Read-out {t} has shape {p.shape}: drop the batch dimension, e.g. with [0]"
            )
        if p.shape in ((h, w), (1, h, w)):
            raise Mismatch(
                f"Read-out {t} has shape {p.shape}: you return the most likely class per pixel "
                "(argmax); return the class probabilities, shape (K, H, W)"
            )
        if p.shape != (k, h, w):
            raise Mismatch(f"Read-out {t} has shape {p.shape}, expected {(k, h, w)} (K, H, W)")
        got.append(np.asarray(p, dtype=np.float64))
    return got


def _explain_readout(got, expected, model, states, logits, all_states, where) -> None:
    if np.allclose(got, np.round(got)):
        raise Mismatch(
            "return the class probabilities (K, H, W), not the most likely class per pixel"
        )
    for wrong, message in readout_variants(model, states, all_states).values():
        if np.allclose(got, wrong, atol=ATOL):
            raise Mismatch(message)
    final = torch.softmax(logits, dim=1)[0].numpy()
    if len(states) > 1 and all(np.allclose(p, final, atol=ATOL) for p in got):
        raise Mismatch(
            "every read-out equals the network's final prediction: read each step's own state "
            "h_t (states[t].h), not the final logits or the last state"
        )
    if not np.allclose(got.sum(axis=1), 1.0, atol=1e-4):
        raise Mismatch(
            f"the class probabilities of a pixel must sum to 1 {where}; use "
            "torch.softmax(model.readout(s.h), dim=1)"
        )
    t = int(np.argmax(np.abs(got - expected).reshape(len(got), -1).max(axis=1)))
    raise Mismatch(
        f"Read-out {t} {where} is not softmax(model.readout(states[{t}].h), dim=1)[0] in eval "
        f"mode (largest difference {np.abs(got[t] - expected[t]).max():.3g}), and none of the "
        "usual mistakes (logits, class axis, train mode, o or z instead of h): check which "
        "state and which function your loop uses"
    )


# ------------------------------------------------------------------------------ gate means


def _gate_checks(fn: Callable) -> int:
    passed = 0
    for name, _, states, _ in _inputs():
        for which in ("z", "r"):
            where = f"for {name}, which={which!r}"
            given, before = list(states), _snapshot(states)
            expected = reference_gate_means(states, which)
            try:
                out = call(fn, given, which, what="your gate_means")
            except StudentError as err:
                if "IndexError" in str(err) or "out of range" in str(err):
                    raise StudentError(
                        f"{err.brief} This input has {len(states)} steps ({name}): loop over "
                        "the states you are given, not over a fixed number of steps."
                    ) from None
                raise
            _expect_unchanged(given, states, before, "gate_means")
            got = _as_means(out, expected, states, which, where)
            if np.allclose(got, expected, atol=ATOL):
                passed += 1
                continue
            _explain_gates(got, expected, states, which, where)
    return passed


def _as_means(out, expected, states, which: str, where: str) -> np.ndarray:
    s_count, c = len(states), states[0].z.shape[1]
    h, w = states[0].z.shape[-2:]
    if out is None:
        raise Mismatch("your gate_means returned None: is a `return` statement missing?")
    if not isinstance(out, np.ndarray | list | tuple | torch.Tensor) and not np.isscalar(out):
        raise Mismatch(
            f"your gate_means returned a {type(out).__name__}; return a NumPy array with one "
            f"mean per step, np.array([...]), shape ({s_count},)"
        )
    try:
        got = np.asarray(as_numpy(out) if isinstance(out, torch.Tensor) else out, np.float64)
    except (TypeError, ValueError):
        raise Mismatch(
            f"your gate_means must return one number per step, shape ({s_count},), "
            f"it returned {type(out).__name__}"
        ) from None
    if got.shape == expected.shape:
        return got
    if got.size == s_count and got.ndim > 1 and np.allclose(got.ravel(), expected, atol=ATOL):
        raise Mismatch(
            f"your means are right but have shape {got.shape}: return one number per step, "
            f"shape ({s_count},); use .item() (or float(...)) for each step, or .ravel()"
        )
    if got.ndim == 0:
        raise Mismatch(
            f"you returned a single number for which={which!r}: return one mean per step, "
            f"shape ({s_count},)"
        )
    if got.shape in ((s_count, c), (s_count, 1, c)):
        raise Mismatch(
            f"your result has shape {got.shape}: one value per channel; average over the "
            "channels too, to get one number per step"
        )
    if got.shape in ((s_count, 1, h, w), (s_count, h, w), (s_count, c, h, w)):
        raise Mismatch(
            f"your result has shape {got.shape}: one value per pixel; average over the pixels "
            "too (and the channels), to get one number per step"
        )
    if got.ndim == 1 and got.shape[0] != s_count:
        raise Mismatch(
            f"you returned {got.shape[0]} means but there are {s_count} steps {where}: one "
            "mean per state you are given"
        )
    raise Mismatch(f"your result has shape {got.shape}, expected ({s_count},): one mean per step")


def _explain_gates(got, expected, states, which: str, where: str) -> None:
    for wrong, message in gate_variants(states, which).values():
        if np.allclose(got, wrong, atol=ATOL):
            raise Mismatch(message)
    if len(got) > 1 and np.allclose(got, got[0], atol=ATOL):
        raise Mismatch(
            f"you return the same value for every step ({where.removeprefix('for ')}): compute "
            "the mean of each "
            f"step's own gate, getattr(states[t], {which!r})"
        )
    if got.min() < 0 or got.max() > 1:
        raise Mismatch("gates come from a sigmoid, so their means lie in [0, 1]; yours do not")
    t = int(np.argmax(np.abs(got - expected)))
    raise Mismatch(
        f"the mean at step {t} is {got[t]:.4f} {where}, expected {expected[t]:.4f} = the mean "
        f"of states[{t}].{which} over its channels and pixels; none of the usual mistakes "
        "(other gate, 1 - gate, h instead of the gate, sum or max) matches"
    )


def known_mistake_outputs() -> list[tuple]:
    """(mistake, reference, what the mistake gives, atol, rtol) on every input of both checks
    (used by the tests)."""
    rows = []
    for _, model, states, _ in _inputs():
        expected = np.stack(reference_readout_per_step(copy.deepcopy(model), states))
        for name, (wrong, _) in readout_variants(model, states, _setup()[3]).items():
            rows.append((f"readout: {name}", expected, wrong, ATOL, 0.0))
        for which in ("z", "r"):
            expected = reference_gate_means(states, which)
            for name, (wrong, _) in gate_variants(states, which).items():
                rows.append((f"gate means: {name}", expected, wrong, ATOL, 0.0))
    return rows


# ------------------------------------------------------------------------------ the exercises
_exercise = partial(exercise, hints=_HINTS, notebook=NOTEBOOK)

readout_exercise = _exercise(
    "readout_per_step", "Per-step read-out", _readout_checks, reference_readout_per_step
)
check_readout_per_step = readout_exercise.check

gate_exercise = _exercise(
    "gate_means", "Mean gate value per step", _gate_checks, reference_gate_means
)
check_gate_means = gate_exercise.check
