"""Checks for notebook 01 (ConvGRU): the state update (eq. 4) and the whole ConvGRU cell.

Exercises: ``update`` (:func:`check_update`) and ``convgru`` (:func:`check_convgru`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from gruunet_edu.exercises.core import (
    Exercise,
    Mismatch,
    as_tensor,
    call,
    close,
    diagnose,
    expect,
    expect_shape,
    instantiate,
    max_difference,
    seeded,
)
from gruunet_edu.exercises.mistakes import Spread
from gruunet_edu.exercises.mistakes.nb1 import SWAPPED, cell_variants, update_variants
from gruunet_edu.exercises.probes import (
    expect_gradients,
    expect_unchanged,
    first_difference,
    snapshot,
    tensor_result,
)
from gruunet_edu.models.convgru import ConvGRUCell, update_state

NOTEBOOK = "solutions/01_convgru.ipynb"

_HINTS = {
    "update": (
        "The new state is a per-pixel weighted average of the old state and the candidate; the "
        "weights are z and 1 - z and they add up to 1.",
        "Ask what should happen when z = 0: the gate is closed, so nothing is updated.",
        "h_new = (1 - z) * h_prev + z * h_cand (all elementwise, no loops needed).",
    ),
    "convgru": (
        "Write the four equations one per line, in order: z, r, the candidate h_cand, h_new. "
        "Every W * x is self.conv_x?(x) and every U * h is self.conv_h?(h).",
        "Gates are sigmoids: z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h)), and r the same "
        "with conv_xr / conv_hr.",
        "The reset gate acts on the state before its convolution: self.conv_hh(r * h). The "
        "candidate uses F.leaky_relu(..., self.slope).",
        "h_new = (1 - z) * h + z * h_cand; return (h_new, z, r) when return_gates is True.",
    ),
}


reference_update = update_state  # the notebook's name for the package's eq. (4)


def _update_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """h_prev, h_cand (values of a few units, so rounding to float16 shows) and z in (0, 1)."""
    gen = torch.Generator().manual_seed(1)
    shape = (2, 3, 5, 4)
    h_prev, h_cand = 4 * torch.randn(shape, generator=gen), 4 * torch.randn(shape, generator=gen)
    return h_prev, h_cand, torch.rand(shape, generator=gen)


def _check_update(student: Any) -> None:
    h_prev, h_cand, z = _update_inputs()
    shape = tuple(h_prev.shape)
    inputs = (h_prev, h_cand, z)
    before = snapshot(inputs)

    out = call(student, h_prev, h_cand, z, what="your update")
    expect_unchanged(inputs, before, ["h_prev", "h_cand", "z"])
    out = tensor_result(out, "your update", shape)
    edges = []
    for value, target, name in ((0.0, h_prev, "h_prev"), (1.0, h_cand, "h_cand")):
        z_edge = torch.full(shape, value)
        got = tensor_result(
            call(student, h_prev, h_cand, z_edge, what="your update"), "your update"
        )
        edges.append((value, got, target, name))

    def explain() -> str | None:  # what the closed and the open gate show
        for value, got, target, name in edges:
            other = h_cand if value == 0.0 else h_prev
            if close(got, other, atol=1e-6) and not close(got, target, atol=1e-6):
                return SWAPPED
            if not close(got, target, atol=1e-6):
                return (
                    f"with z = {value:g} everywhere the new state must equal {name}, but yours "
                    f"differs from it by up to {max_difference(got, target):.3g}"
                )
        return (
            "the new state differs from (1 - z) * h_prev + z * h_cand on random tensors (largest "
            f"difference {max_difference(out, update_state(h_prev, h_cand, z)):.3g}), although "
            "z = 0 and z = 1 give the right states: check how z weights the two terms in between"
        )

    diagnose(
        out,
        update_state(h_prev, h_cand, z),
        lambda: update_variants(h_prev, h_cand, z),
        "the new state",
        explain=explain,
    )
    for value, got, target, name in edges:
        expect(
            close(got, target, atol=1e-6),
            f"with z = {value:g} everywhere the new state must equal {name}",
        )
    expect_gradients(
        student, update_state, {"h_prev": h_prev, "h_cand": h_cand, "z": z}, "your update"
    )


_exercise = partial(Exercise, solution_notebook=NOTEBOOK)

update_exercise = _exercise(
    "update", "State update (eq. 4)", _check_update, update_state, _HINTS["update"]
)
check_update = update_exercise.check


# ------------------------------------------------------------------------------ the ConvGRU cell

# (batch, x_channels, channels, height, width, slope): square and non-square, odd sizes, a batch
# of 1, and a slope other than the default 0.2 (self.slope, not a number, goes into eq. 3)
_CASES = ((2, 3, 4, 8, 8, 0.2), (1, 2, 5, 6, 9, 0.1), (3, 4, 3, 5, 5, 0.3))

# what each convolution of the cell should receive, in the notebook's words
_LAYER_INPUTS = {
    "conv_xz": "x (eq. 1)",
    "conv_hz": "h_prev (eq. 1)",
    "conv_xr": "x (eq. 2)",
    "conv_hr": "h_prev (eq. 2)",
    "conv_xh": "x (eq. 3)",
    "conv_hh": "r * h_prev, the reset state (eq. 3)",
}


def _reference_cell(x_channels: int, channels: int, seed: int, slope: float = 0.2) -> ConvGRUCell:
    with seeded(seed):
        return ConvGRUCell(x_channels, channels, slope)


def _gates(result: Any, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(result, tuple | list) or len(result) != 3:
        raise Mismatch(f"{what} with return_gates=True must return the tuple (h_new, z, r)")
    return tuple(as_tensor(t, what) for t in result)  # type: ignore[return-value]


def _gate_explain(cell, ref, x, h, convs: tuple[str, str], gate: str) -> str:  # noqa: ANN001
    """Why a gate differs: one of its two convolutions never ran or got the wrong input."""
    where = first_difference(cell, ref, (x, h), {n: _LAYER_INPUTS[n] for n in convs})
    return where or (
        f"the gate {gate} differs although self.{convs[0]} and self.{convs[1]} get the right "
        f"inputs: it is torch.sigmoid(self.{convs[0]}(x) + self.{convs[1]}(h)), one "
        "sigmoid of the sum"
    )


def _diagnose_state(cell, ref, x, h, got, ref_h, name: str) -> None:  # noqa: ANN001
    """The new state against the reference: known mistakes, then the first convolution whose
    input differs (the gates are already known to be right here)."""

    def explain() -> str:
        where = first_difference(cell, ref, (x, h), _LAYER_INPUTS)
        if where:
            return where + "; the gates z and r are right"
        return (
            f"{name} differs from eq. (4) applied to your (right) gates z and r (largest "
            f"difference {max_difference(got, ref_h):.3g}): check the candidate (eq. 3) and the "
            "update (eq. 4)"
        )

    diagnose(got, ref_h, partial(cell_variants, ref, x, h), name, explain=explain)


def _case(index: int) -> tuple[ConvGRUCell, torch.Tensor, torch.Tensor]:
    """Case ``index`` of ``_CASES``: the reference cell and its inputs x (B, C_x, H, W) and
    h (B, C, H, W); the third case starts from h = 0."""
    b, cx, c, hgt, wid, slope = _CASES[index]
    ref = _reference_cell(cx, c, seed=index, slope=slope)
    gen = torch.Generator().manual_seed(100 + index)
    x = torch.randn(b, cx, hgt, wid, generator=gen)
    h = torch.randn(b, c, hgt, wid, generator=gen) if index != 2 else torch.zeros(b, c, hgt, wid)
    return ref, x, h


def _check_convgru(student: Any) -> None:
    for index in range(len(_CASES)):
        _check_case(student, index)
    _check_gate_extremes(student)


def _check_case(student: Any, index: int) -> None:
    """One case of ``_CASES``: the state, both gates and the gradients."""
    b, cx, c, hgt, wid, slope = _CASES[index]
    ref, x, h = _case(index)
    cell = instantiate(student, ref, cx, c, what="your cell")
    cell.slope = slope
    before = snapshot([x, h])
    with torch.no_grad():
        result = call(cell, x, h, what="your cell's forward(x, h)")
        expect_unchanged([x, h], before, ["x", "h"])
        if isinstance(result, tuple | list):
            raise Mismatch(
                f"forward(x, h) returned a {type(result).__name__}: without "
                "return_gates=True return only h_new"
            )
        out = tensor_result(result, "forward(x, h)")
        expect_shape(out, (b, c, hgt, wid), "the new state", "(B, channels, H, W)")
        h_new, z, r = _gates(
            call(cell, x, h, return_gates=True, what="forward(x, h, return_gates=True)"),
            "forward(x, h, return_gates=True)",
        )
        ref_h, ref_z, ref_r = ref(x, h, return_gates=True)
    if close(h_new, ref_h) and close(z, ref_r) and close(r, ref_z):
        raise Mismatch(
            "h_new is right, but the gates come back in the wrong order: return the tuple "
            "(h_new, z, r)"
        )
    for gate, name in ((z, "z"), (r, "r")):
        expect_shape(gate, (b, c, hgt, wid), f"the gate {name}", "(B, channels, H, W)")
        lo, hi = float(gate.min()), float(gate.max())
        expect(
            lo >= 0.0 and hi <= 1.0,
            f"the gate {name} has values outside [0, 1] (from {lo:.2f} to {hi:.2f}): a gate is "
            "a sigmoid of the summed convolutions",
        )
    if close(z, ref_r) and not close(z, ref_z):
        raise Mismatch(
            "z and r are swapped: z uses conv_xz and conv_hz, r uses conv_xr and conv_hr"
        )
    diagnose(
        z,
        ref_z,
        {
            "one_minus": (1 - ref_z, "your z is 1 - z: it should be sigmoid(W_z x + U_z h)"),
            "x_only": (
                torch.sigmoid(ref.conv_xz(x)).detach(),
                "z ignores the state: eq. (1) adds conv_hz(h) to conv_xz(x)",
            ),
        },
        "the update gate z",
        explain=partial(_gate_explain, cell, ref, x, h, ("conv_xz", "conv_hz"), "z (eq. 1)"),
    )
    diagnose(
        r,
        ref_r,
        {
            "x_only": (
                torch.sigmoid(ref.conv_xr(x)).detach(),
                "r ignores the state: eq. (2) adds conv_hr(h) to conv_xr(x)",
            )
        },
        "the reset gate r",
        explain=partial(_gate_explain, cell, ref, x, h, ("conv_xr", "conv_hr"), "r (eq. 2)"),
    )
    _diagnose_state(cell, ref, x, h, out, ref_h, "the new state h_new")
    _diagnose_state(cell, ref, x, h, h_new, ref_h, "h_new returned with the gates")
    grad_ref = _reference_cell(cx, c, seed=index, slope=slope)
    grad_cell = instantiate(student, grad_ref, cx, c, what="your cell")
    grad_cell.slope = slope
    expect_gradients(
        grad_cell, grad_ref, {"x": x, "h": h}, "your cell's forward(x, h)", grad_cell, grad_ref
    )


def _check_gate_extremes(student: Any) -> None:
    """The update gate forced shut (z = 0) and wide open (z = 1) through its bias."""
    b, cx, c, hgt, wid, _ = _CASES[0]
    gen = torch.Generator().manual_seed(7)
    x, h = torch.randn(b, cx, hgt, wid, generator=gen), torch.randn(b, c, hgt, wid, generator=gen)
    for bias, name in ((-40.0, "0"), (40.0, "1")):
        ref = _reference_cell(cx, c, seed=3)
        with torch.no_grad():
            ref.conv_xz.bias.fill_(bias)
        cell = instantiate(student, ref, cx, c, what="your cell")
        with torch.no_grad():
            got = as_tensor(call(cell, x, h, what="your cell's forward(x, h)"), "forward(x, h)")
            expected = ref(x, h)
        state = "the old state h_prev" if name == "0" else "the candidate h_cand"
        expect(
            close(got, expected, atol=1e-4),
            f"with the update gate forced to z = {name} (through its bias) the new state should "
            f"be {state}, but it is not",
        )


convgru_exercise = _exercise(
    "convgru", "ConvGRU cell", _check_convgru, ConvGRUCell, _HINTS["convgru"]
)
check_convgru = convgru_exercise.check


def variant_spread() -> Spread:
    """How far each known mistake of the two checks moves the output (see :class:`Spread`)."""
    spread = Spread()
    h_prev, h_cand, z = _update_inputs()
    reference = update_state(h_prev, h_cand, z)
    for key, (output, _m) in update_variants(h_prev, h_cand, z).items():
        spread.note("update", key, max_difference(output, reference), 1e-5)
    for index in range(len(_CASES)):
        ref, x, h = _case(index)
        with torch.no_grad():
            reference = ref(x, h)
        for key, (output, _m) in cell_variants(ref, x, h).items():
            spread.note("convgru", key, max_difference(output, reference), 1e-5)
    return spread
