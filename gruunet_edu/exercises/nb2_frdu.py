"""Checks for notebook 02 (dense block and FRDU): the dense block's forward and the FRDU's forward.

Exercises: ``dense_block`` (:func:`check_dense_block`) and ``frdu`` (:func:`check_frdu`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from gruunet_edu.exercises.core import (
    Exercise,
    Mismatch,
    RecordCalls,
    StudentError,
    call,
    close,
    diagnose,
    expect_shape,
    instantiate,
    max_difference,
    seeded,
    vary_batchnorm,
)
from gruunet_edu.exercises.mistakes import Spread
from gruunet_edu.exercises.mistakes.nb2 import dense_variants, frdu_variants
from gruunet_edu.exercises.probes import (
    LayerLog,
    expect_gradients,
    expect_unchanged,
    first_difference,
    snapshot,
    tensor_result,
    train_mode,
)
from gruunet_edu.models.dense import DenseBlock
from gruunet_edu.models.frdu import FRDU

NOTEBOOK = "solutions/02_dense_block_and_frdu.ipynb"

_HINTS = {
    "dense_block": (
        "Keep a Python list `features` that starts as [x]; every layer appends its output.",
        "Layer l gets torch.cat(features, dim=1) (dim 1 is the channel dimension).",
        "After the loop: y = self.transition(torch.cat(features, dim=1)); return "
        "self.relu(self.norm(y)).",
    ),
    "frdu": (
        "Four lines, one per equation: merge the two streams, the dense block, project and "
        "up-sample, the ConvGRU.",
        "The state lives at full resolution: bring it to o_prev's resolution with "
        "self.down(h_prev) before torch.cat([o_prev, ...], dim=1).",
        "x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode='bilinear'), then "
        "h = self.gru(x, h_prev); return o, h.",
    ),
}

# ------------------------------------------------------------------------------ dense block

# (batch, in_features, out_features, num_layers, growth_rate, height, width): 1 to 4 layers
_DENSE_CASES = (
    (2, 8, 12, 3, 4, 6, 6),
    (1, 5, 5, 2, 6, 7, 5),
    (2, 4, 6, 1, 3, 4, 4),
    (2, 6, 8, 4, 3, 5, 5),
)


def _dense_reference(case: tuple[int, ...], seed: int) -> DenseBlock:
    _, c_in, c_out, k, g, _, _ = case
    with seeded(seed):
        block = DenseBlock(c_in, c_out, num_layers=k, growth_rate=g, bn_size=2)
        vary_batchnorm(block, affine=True)
        return block.eval()


_DENSE_LAYER_NAMES = ("layers", "transition", "norm")


def _dense_error(err: StudentError, log: LayerLog, block: DenseBlock, case: tuple) -> Mismatch:
    """A channel or shape error inside the dense block, explained by where it happened."""
    _, c_in, _, k, g, _, _ = case
    total = c_in + k * g
    text = err.original or str(err)
    if "elementwise" in str(err) or "must match the size of tensor" in text:
        return Mismatch(
            f"{err.brief} The features are joined with torch.cat(features, dim=1) (channels "
            "side by side), not added"
        )
    if "channels" not in text and "running_mean" not in text:
        return Mismatch(str(err))
    layers_run = sum(1 for name, _ in log.entered if name.startswith("layers."))
    if log.last == "transition" and layers_run < k:
        return Mismatch(
            f"{err.brief} Run every layer in self.layers (this block has {k}, your code ran "
            f"{layers_run}): loop over self.layers instead of a fixed count"
        )
    if log.last == "transition":
        return Mismatch(
            f"{err.brief} The transition reads the block input and every layer's output, "
            f"torch.cat([x, y_1, ..., y_{k}], dim=1) = in_features + num_layers * growth_rate "
            f"= {total} channels"
        )
    return Mismatch(
        f"{err.brief} Dense layer l reads in_features + (l - 1) * growth_rate channels: the "
        "concatenation of the block input and every earlier layer's output"
    )


def _dense_explain(block, ref, x, names, got, expected) -> str:  # noqa: ANN001
    where = first_difference(
        block, ref, (x,), {n: _DENSE_INPUTS.get(n, "torch.cat(features, dim=1)") for n in names}
    )
    return where or (
        "the block output differs from self.relu(self.norm(self.transition(...))) although "
        f"every layer read the right input (largest difference "
        f"{max_difference(got, expected):.3g}): check the last line"
    )


def _check_dense_block(student: Any) -> None:
    for index, case in enumerate(_DENSE_CASES):
        b, c_in, c_out, k, g, hgt, wid = case
        ref = _dense_reference(case, seed=index)
        block = instantiate(student, ref, c_in, c_out, k, g, 2, what="your dense block")
        x = torch.randn(b, c_in, hgt, wid, generator=torch.Generator().manual_seed(10 + index))
        names = [f"layers.{i}" for i in range(k)] + ["transition", "norm"]
        before = snapshot([x])
        with torch.no_grad(), LayerLog(block, names) as log:
            try:
                got = call(block, x, what="your dense block")
            except StudentError as err:
                raise _dense_error(err, log, block, case) from None
            expected = ref(x)
        expect_unchanged([x], before, ["x"])
        got = tensor_result(got, "your dense block")
        expect_shape(got, (b, c_out, hgt, wid), "the block output", "(B, out_features, H, W)")
        layers_run = sum(1 for name, _ in log.entered if name.startswith("layers."))
        if not close(got, expected) and layers_run < k:
            raise Mismatch(
                f"run every layer in self.layers (this block has {k}, your code ran "
                f"{layers_run}): loop over self.layers instead of a fixed count"
            )
        diagnose(
            got,
            expected,
            partial(dense_variants, ref, x),
            "the block output",
            explain=partial(_dense_explain, block, ref, x, names, got, expected),
        )
        # gradients, in train mode (batch statistics), w.r.t. the input and every layer
        grad_ref = train_mode(ref, seed=index)
        grad_block = instantiate(student, grad_ref, c_in, c_out, k, g, 2, what="your dense block")
        expect_gradients(grad_block, grad_ref, {"x": x}, "your dense block", grad_block, grad_ref)


_DENSE_INPUTS = {
    "transition": "torch.cat([x, y_1, ..., y_k], dim=1), the input and every layer's output",
    "norm": "the transition's output y",
}


_exercise = partial(Exercise, solution_notebook=NOTEBOOK)

dense_block_exercise = _exercise(
    "dense_block", "Dense block", _check_dense_block, DenseBlock, _HINTS["dense_block"]
)
check_dense_block = dense_block_exercise.check


# ------------------------------------------------------------------------------ FRDU

# (batch, in_channels, channels, hidden_channels, factor, height, width)
_FRDU_CASES = ((2, 6, 8, 4, 2, 16, 16), (1, 8, 6, 5, 4, 16, 24), (1, 4, 4, 3, 8, 32, 16))


def _frdu_reference(case: tuple[int, ...], seed: int) -> FRDU:
    _, c_in, c, c_h, factor, _, _ = case
    with seeded(seed):
        # k = 2 dense layers, growth 4, bottleneck 2, max-pool, projection, readable GRU
        frdu = FRDU(c_in, c, c_h, factor, 2, 4, 2, "maxpool", True, False)
        vary_batchnorm(frdu)
        return frdu.eval()


_FRDU_LAYERS = {
    "merge": "torch.cat([o_prev, self.down(h_prev)], dim=1)",
    "dense": "self.merge(...), the merged streams",
    "project": "o, the dense block's output",
    "gru": "x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode='bilinear')",
}


def _wrong_factor(rec: RecordCalls, o_prev: torch.Tensor, factor: int, c_h: int) -> str | None:
    """If a torch.cat joined o_prev with a state at another resolution, say by how much."""
    size = o_prev.shape[-1]
    for name, shapes in rec.calls:
        if name != "cat" or len(shapes) != 2:
            continue
        for shape in shapes:
            if len(shape) == 4 and shape[1] == c_h and shape[-1] != size:
                used = o_prev.shape[-1] * factor / shape[-1]
                used_text = f"{used:g}" if used >= 1 else f"1/{1 / used:g}"
                return (
                    f"the state was down-sampled by {used_text} instead of self.factor = {factor} "
                    f"(o_prev is {tuple(o_prev.shape[-2:])}, your down(h_prev) is "
                    f"{tuple(shape[-2:])}): use self.down(h_prev), which pools by self.factor"
                )
    return None


def _run_frdu(frdu: FRDU, o_prev, h_prev, factor: int, c_h: int) -> tuple[torch.Tensor, ...]:
    """The student's (o, h), with shape errors explained by where they happened."""
    with RecordCalls({"cat"}) as rec, LayerLog(frdu, list(_FRDU_LAYERS)) as log:
        try:
            result = call(frdu, o_prev, h_prev, what=f"your FRDU (factor {factor})")
        except StudentError as err:
            wrong = _wrong_factor(rec, o_prev, factor, c_h)
            if wrong:
                raise Mismatch(wrong) from None
            if log.last == "gru" and log.ran("project") == 0:
                raise Mismatch(
                    f"{err.brief} self.project is never called: x_t = "
                    "F.interpolate(self.project(o), ...), the dense output projected to C_h "
                    "channels, is the GRU's input"
                ) from None
            if log.last == "gru" and "channels" in (err.original or str(err)):
                raise Mismatch(
                    f"{err.brief} The GRU's input x_t must have C_h channels: x_t = "
                    "F.interpolate(self.project(o), ...), then self.gru(x, h_prev) in that order"
                ) from None
            if log.last == "gru":
                raise Mismatch(
                    f"{err.brief} x_t must be up-sampled to h_prev's full resolution "
                    "before the GRU: F.interpolate(x, size=h_prev.shape[-2:], mode='bilinear')"
                ) from None
            raise
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise Mismatch("forward(o_prev, h_prev) must return the pair (o, h)")
    if isinstance(result[1], tuple | list):
        raise Mismatch(
            "the h you return is a tuple: return the new state tensor, h = self.gru(x, h_prev) "
            "(with return_gates=True the GRU returns (h, z, r))"
        )
    return tuple(tensor_result(t, "your FRDU") for t in result)


def _compare_frdu(frdu, ref, o_prev, h_prev, o, h, mode: str) -> None:
    with torch.no_grad():
        ref_o, ref_h = ref(o_prev, h_prev)
    if tuple(o.shape) == tuple(ref_h.shape) and tuple(h.shape) == tuple(ref_o.shape):
        raise Mismatch("the outputs are swapped: forward returns (o, h), pooling stream first")
    expect_shape(o, ref_o.shape, "the pooling stream o", "(B, channels, H/factor, W/factor)")
    expect_shape(h, ref_h.shape, "the new state h", "(B, hidden_channels, H, W)")

    def joined(pair: tuple) -> torch.Tensor:
        return torch.cat([pair[0].flatten(), pair[1].flatten()])

    def variants() -> dict[str, tuple]:
        table = frdu_variants(ref, o_prev, h_prev)
        return {k: (joined((v_o, v_h)), message) for k, (v_o, v_h, message) in table.items()}

    def explain() -> str:
        where = first_difference(frdu, ref, (o_prev, h_prev), _FRDU_LAYERS)
        part = "the pooling stream o" if not close(o, ref_o) else "the new state h"
        got, expected = (o, ref_o) if part.endswith("o") else (h, ref_h)
        return where or (
            f"{part} differs from the reference FRDU's ({mode} mode, largest difference "
            f"{max_difference(got, expected):.3g}) although every layer got the right input: "
            "check what you return"
        )

    diagnose(joined((o, h)), joined((ref_o, ref_h)), variants, "(o, h)", explain=explain)


def _check_frdu(student: Any) -> None:
    for index, case in enumerate(_FRDU_CASES):
        b, c_in, c, c_h, factor, hgt, wid = case
        ref = _frdu_reference(case, seed=index)
        args = (c_in, c, c_h, factor, 2, 4, 2, "maxpool", True, False)  # as _frdu_reference
        frdu = instantiate(student, ref, *args, what="your FRDU")
        gen = torch.Generator().manual_seed(20 + index)
        o_prev = torch.randn(b, c_in, hgt // factor, wid // factor, generator=gen)
        h_prev = torch.randn(b, c_h, hgt, wid, generator=gen)
        before = snapshot([o_prev, h_prev])
        with torch.no_grad():
            o, h = _run_frdu(frdu, o_prev, h_prev, factor, c_h)
        expect_unchanged([o_prev, h_prev], before, ["o_prev", "h_prev"])
        _compare_frdu(frdu, ref, o_prev, h_prev, o, h, "eval")
        # train mode: BatchNorm uses the batch's statistics, so every path matters (where the
        # projection happens, the up-sampling mode); the batch has 2 samples for that
        train_ref = train_mode(ref, seed=index)
        o2, h2 = torch.cat([o_prev, o_prev.flip(0) * 0.5]), torch.cat([h_prev, -h_prev])
        train_frdu = instantiate(student, train_ref, *args, what="your FRDU")
        with torch.no_grad():
            o_t, h_t = _run_frdu(train_frdu, o2, h2, factor, c_h)
        train_ref_copy = train_mode(ref, seed=index)  # the same statistics, not yet updated
        _compare_frdu(train_frdu, train_ref_copy, o2, h2, o_t, h_t, "train")
        grad_ref = train_mode(ref, seed=index)
        grad_frdu = instantiate(student, grad_ref, *args, what="your FRDU")
        expect_gradients(
            grad_frdu,
            grad_ref,
            {"o_prev": o2, "h_prev": h2},
            "your FRDU",
            grad_frdu,
            grad_ref,
            output=lambda pair: torch.cat([pair[0].flatten(), pair[1].flatten()]),
            reference_output=lambda pair: torch.cat([pair[0].flatten(), pair[1].flatten()]),
        )


frdu_exercise = Exercise("frdu", "FRDU", _check_frdu, FRDU, _HINTS["frdu"], NOTEBOOK)
check_frdu = frdu_exercise.check


def _frdu_inputs(index: int, train: bool) -> tuple[FRDU, torch.Tensor, torch.Tensor]:
    """The reference FRDU and the inputs the check uses for case ``index`` (eval or train)."""
    b, c_in, _c, c_h, factor, hgt, wid = _FRDU_CASES[index]
    ref = _frdu_reference(_FRDU_CASES[index], seed=index)
    gen = torch.Generator().manual_seed(20 + index)
    o_prev = torch.randn(b, c_in, hgt // factor, wid // factor, generator=gen)
    h_prev = torch.randn(b, c_h, hgt, wid, generator=gen)
    if not train:
        return ref, o_prev, h_prev
    o2, h2 = torch.cat([o_prev, o_prev.flip(0) * 0.5]), torch.cat([h_prev, -h_prev])
    return train_mode(ref, seed=index), o2, h2


def variant_spread() -> Spread:
    """How far each known mistake moves the output, in eval and train mode (see :class:`Spread`)."""
    spread = Spread()
    for index, case in enumerate(_DENSE_CASES):
        b, c_in, _, _, _, hgt, wid = case
        ref = _dense_reference(case, seed=index)
        x = torch.randn(b, c_in, hgt, wid, generator=torch.Generator().manual_seed(10 + index))
        with torch.no_grad():
            reference = ref(x)
        for key, (output, _m) in dense_variants(ref, x).items():
            spread.note("dense_block", key, max_difference(output, reference), 1e-5)
    for index in range(len(_FRDU_CASES)):
        for train in (False, True):
            ref, o_prev, h_prev = _frdu_inputs(index, train)
            with torch.no_grad():
                ref_o, ref_h = ref(o_prev, h_prev)
            for key, (o, h, _m) in frdu_variants(ref, o_prev, h_prev).items():
                diff = max_difference(o, ref_o)
                if h is not None:
                    diff = max(diff, max_difference(h, ref_h))
                spread.note("frdu", key, diff, 1e-5)
    return spread
