"""Checks for notebook 02 (dense block and FRDU): the dense block's forward and the FRDU's forward.

Exercises: ``dense_block`` (:func:`check_dense_block`) and ``frdu`` (:func:`check_frdu`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from gruunet_edu.exercises.core import (
    Exercise,
    Mismatch,
    RecordCalls,
    StudentError,
    as_tensor,
    call,
    close,
    diagnose,
    expect_shape,
    instantiate,
    seeded,
    vary_batchnorm,
)
from gruunet_edu.models.dense import DenseBlock
from gruunet_edu.models.frdu import FRDU

NOTEBOOK = "solutions/02_dense_block_and_frdu.ipynb"

# ------------------------------------------------------------------------------ dense block

# (batch, in_features, out_features, num_layers, growth_rate, height, width)
_DENSE_CASES = ((2, 8, 12, 3, 4, 6, 6), (1, 5, 5, 2, 6, 7, 5), (2, 4, 6, 1, 3, 4, 4))


def _dense_reference(case: tuple[int, ...], seed: int) -> DenseBlock:
    _, c_in, c_out, k, g, _, _ = case
    with seeded(seed):
        block = DenseBlock(c_in, c_out, num_layers=k, growth_rate=g, bn_size=2)
        vary_batchnorm(block, affine=True)
        return block.eval()


@torch.no_grad()
def _dense_variants(block: DenseBlock, x: torch.Tensor) -> dict[str, tuple]:
    def run(order: str, final: bool = True) -> torch.Tensor:
        features = [x]
        for layer in block.layers:
            inp = torch.cat(features if order == "forward" else features[::-1], dim=1)
            features.append(layer(inp))
        joined = torch.cat(features if order == "forward" else features[::-1], dim=1)
        y = block.transition(joined)
        return block.relu(block.norm(y)) if final else y

    return {
        "reversed": (
            run("reversed"),
            "the concatenation order is wrong: each layer reads torch.cat([x, y_1, ..., "
            "y_(l-1)], dim=1), the block input first and new features appended at the end",
        ),
        "no_final": (
            run("forward", final=False),
            "the final BatchNorm and ReLU are missing: return self.relu(self.norm(y))",
        ),
    }


def _check_dense_block(student: Any) -> None:
    for index, case in enumerate(_DENSE_CASES):
        b, c_in, c_out, k, g, hgt, wid = case
        ref = _dense_reference(case, seed=index)
        block = instantiate(student, ref, c_in, c_out, k, g, 2, what="your dense block")
        x = torch.randn(b, c_in, hgt, wid, generator=torch.Generator().manual_seed(10 + index))
        with torch.no_grad():
            try:
                got = as_tensor(call(block, x, what="your dense block"), "your dense block")
            except StudentError as err:
                if "channels" in str(err) or "running_mean" in str(err):
                    raise Mismatch(
                        f"{err.brief} Dense layer l reads in_features + (l - 1) * growth_rate "
                        "channels: the concatenation of the block input and every earlier "
                        "layer's output; the transition reads all of them"
                    ) from None
                raise
            expected = ref(x)
        expect_shape(got, (b, c_out, hgt, wid), "the block output", "(B, out_features, H, W)")
        diagnose(got, expected, partial(_dense_variants, ref, x), "the block output")


dense_block_exercise = Exercise(
    name="dense_block",
    title="Dense block",
    checker=_check_dense_block,
    reference=DenseBlock,
    hints=(
        "Keep a Python list `features` that starts as [x]; every layer appends its output.",
        "Layer l gets torch.cat(features, dim=1) (dim 1 is the channel dimension).",
        "After the loop: y = self.transition(torch.cat(features, dim=1)); return "
        "self.relu(self.norm(y)).",
    ),
    solution_notebook=NOTEBOOK,
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


@torch.no_grad()
def _frdu_variants(ref: FRDU, o_prev: torch.Tensor, h_prev: torch.Tensor) -> dict[str, tuple]:
    """name -> (o, h, message) for the usual mistakes, computed with the reference's layers."""
    size = h_prev.shape[-2:]
    down = ref.down(h_prev)

    def run(merged: torch.Tensor, mode: str = "bilinear", swap_gru: bool = False):
        o = ref.dense(ref.merge(merged))
        x = F.interpolate(ref.project(o), size=size, mode=mode)
        return o, (ref.gru(h_prev, x) if swap_gru else ref.gru(x, h_prev))

    bilinear = F.interpolate(h_prev, scale_factor=1 / ref.factor, mode="bilinear")
    merged = torch.cat([o_prev, down], dim=1)
    variants = {
        "concat_order": (
            *run(torch.cat([down, o_prev], dim=1)),
            "the concatenation order is wrong: merge torch.cat([o_prev, down(h_prev)], dim=1), "
            "the pooling stream first",
        ),
        "bilinear_down": (
            *run(torch.cat([o_prev, bilinear], dim=1)),
            "the state is down-sampled with bilinear interpolation (the blog's code); this FRDU "
            "uses self.down(h_prev), a max-pool by self.factor",
        ),
        "nearest_up": (
            *run(merged, mode="nearest"),
            "x_t is up-sampled with 'nearest'; use mode='bilinear'",
        ),
        "no_dense": (
            ref.merge(merged),
            None,
            "o must be the dense block's output, o = self.dense(self.merge(...))",
        ),
    }
    if h_prev.shape[1] == ref.project[0].out_channels:  # x and h have the same channels
        variants["gru_args"] = (
            *run(merged, swap_gru=True),
            "the ConvGRU's arguments are swapped: the input comes first, self.gru(x, h_prev)",
        )
    return variants


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


def _check_frdu(student: Any) -> None:
    for index, case in enumerate(_FRDU_CASES):
        b, c_in, c, c_h, factor, hgt, wid = case
        ref = _frdu_reference(case, seed=index)
        args = (c_in, c, c_h, factor, 2, 4, 2, "maxpool", True, False)  # as _frdu_reference
        frdu = instantiate(student, ref, *args, what="your FRDU")
        gen = torch.Generator().manual_seed(20 + index)
        o_prev = torch.randn(b, c_in, hgt // factor, wid // factor, generator=gen)
        h_prev = torch.randn(b, c_h, hgt, wid, generator=gen)
        with torch.no_grad(), RecordCalls({"cat"}) as rec:
            try:
                result = call(frdu, o_prev, h_prev, what=f"your FRDU (factor {factor})")
            except StudentError as err:
                wrong = _wrong_factor(rec, o_prev, factor, c_h)
                if wrong:
                    raise Mismatch(wrong) from None
                if any(m in str(err) for m in ("must match the size", "height x width of x")):
                    raise Mismatch(
                        f"{err.brief} x_t must be up-sampled to h_prev's full resolution "
                        "before the GRU: F.interpolate(x, size=h_prev.shape[-2:], mode='bilinear')"
                    ) from None
                raise
        with torch.no_grad():
            ref_o, ref_h = ref(o_prev, h_prev)
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise Mismatch("forward(o_prev, h_prev) must return the pair (o, h)")
        o, h = (as_tensor(t, "your FRDU") for t in result)
        if tuple(o.shape) == tuple(ref_h.shape) and tuple(h.shape) == tuple(ref_o.shape):
            raise Mismatch("the outputs are swapped: forward returns (o, h), pooling stream first")
        expect_shape(o, ref_o.shape, "the pooling stream o", "(B, channels, H/factor, W/factor)")
        expect_shape(h, ref_h.shape, "the new state h", "(B, hidden_channels, H, W)")
        variants = (
            _frdu_variants(ref, o_prev, h_prev) if not (close(o, ref_o) and close(h, ref_h)) else {}
        )
        diagnose(o, ref_o, {k: (v[0], v[2]) for k, v in variants.items()}, "the pooling stream o")
        diagnose(h, ref_h, {k: (v[1], v[2]) for k, v in variants.items()}, "the new state h")


frdu_exercise = Exercise(
    name="frdu",
    title="FRDU",
    checker=_check_frdu,
    reference=FRDU,
    hints=(
        "Four lines, one per equation: merge the two streams, the dense block, project and "
        "up-sample, the ConvGRU.",
        "The state lives at full resolution: bring it to o_prev's resolution with "
        "self.down(h_prev) before torch.cat([o_prev, ...], dim=1).",
        "x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode='bilinear'), then "
        "h = self.gru(x, h_prev); return o, h.",
    ),
    solution_notebook=NOTEBOOK,
)
check_frdu = frdu_exercise.check
