"""Checks for notebook 03 (GRUU-Net): the FRDU scale factors and the network's forward pass.

Exercises: ``factors`` (:func:`check_factors`) and ``gruunet`` (:func:`check_gruunet`).
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
    diagnose,
    expect,
    expect_shape,
    instantiate,
    seeded,
    vary_batchnorm,
)
from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.gruunet import GRUUNet

NOTEBOOK = "solutions/03_gruunet.ipynb"


# ------------------------------------------------------------------------------ scale factors


def reference_factors(num_scales: int) -> list[int]:
    """Scale factor of every FRDU: 2, 4, ..., 2**S (encoder), then 2**(S-1), ..., 2 (decoder)."""
    down = [2**i for i in range(1, num_scales + 1)]
    return down + down[-2::-1]


def _check_factors(student: Any) -> None:
    for s in (1, 2, 3, 5):
        got = call(student, s, what=f"your frdu_factors({s})")
        if got is None:
            raise Mismatch(f"frdu_factors({s}) returned None: is a `return` statement missing?")
        try:
            got = [int(f) for f in got]
        except (TypeError, ValueError):
            raise Mismatch(f"frdu_factors({s}) returned {got!r}; return a list of ints") from None
        expected = reference_factors(s)
        down = expected[:s]
        if got == expected:
            expect(True, "")
            continue
        if got == down:
            raise Mismatch(
                f"frdu_factors({s}) = {got} has only the encoder; the decoder FRDUs come back up: "
                f"{expected}"
            )
        if got == down + down[::-1]:
            raise Mismatch(
                f"frdu_factors({s}) = {got} visits the bottom scale {2**s} twice; the decoder "
                f"starts one scale up, so there are 2S - 1 = {2 * s - 1} FRDUs"
            )
        if got[:1] == [1]:
            raise Mismatch(
                f"frdu_factors({s}) = {got} starts at 1: the first FRDU already works on the "
                "max-pooled stream, at half resolution (factor 2)"
            )
        expect(
            len(got) == len(expected),
            f"frdu_factors({s}) has {len(got)} entries; there are 2S - 1 = {len(expected)} FRDUs",
        )
        raise Mismatch(f"frdu_factors({s}) = {got}, expected {expected}")


factors_exercise = Exercise(
    name="factors",
    title="FRDU scale factors",
    checker=_check_factors,
    reference=reference_factors,
    hints=(
        "Write them down for S = 3 first: the stream o goes down three times, then up twice.",
        "Encoder: [2**i for i in range(1, S + 1)]. The decoder mirrors it without the bottom.",
        "down + down[-2::-1]",
    ),
    solution_notebook=NOTEBOOK,
)
check_factors = factors_exercise.check


# ------------------------------------------------------------------------------ the network

# (config, batch, height, width): sizes are multiples of 2**S, so no padding is involved
_NET_CASES = (
    (GRUUNetConfig.preset("tiny"), 1, 16, 16),
    (
        GRUUNetConfig.preset(
            "tiny", encoder_widths=(8, 12), decoder_widths=(8,), hidden_channels=6, growth_rate=4
        ),
        2,
        8,
        12,
    ),
)


def _reference_net(config: GRUUNetConfig, seed: int) -> GRUUNet:
    with seeded(seed):
        net = GRUUNet(config)
        vary_batchnorm(net)
        return net.eval()


@torch.no_grad()
def _net_variants(net: GRUUNet, x: torch.Tensor) -> dict[str, tuple]:
    s = net.config.num_scales

    def run(carry_state: bool = True, up: str = "bilinear", residual: bool = True):
        h = net.stem(x)
        o, h0 = h, h
        for t, frdu in enumerate(net.frdus):
            if t < s:
                o = F.max_pool2d(o, 2)
            else:
                o = F.interpolate(o, scale_factor=2, mode=up)
            o, h_new = frdu(o, h if carry_state else h0)
            h = h_new
        return net.readout(h) if residual else net.head(h)

    return {
        "state_not_carried": (
            run(carry_state=False),
            "the state is not carried: every FRDU must receive the h returned by the previous "
            "one (o, h = frdu(o, h))",
        ),
        "nearest_up": (
            run(up="nearest"),
            "the decoder up-samples o with 'nearest'; use mode='bilinear'",
        ),
        "no_residual": (
            run(residual=False),
            "the residual block is skipped: finish with self.readout(h), which applies the "
            "residual block and then the head",
        ),
    }


def _check_gruunet(student: Any) -> None:
    for index, (config, b, hgt, wid) in enumerate(_NET_CASES):
        ref = _reference_net(config, seed=index)
        net = instantiate(student, ref, config, what="your GRUUNet")
        x = torch.rand(b, config.in_channels, hgt, wid, generator=torch.Generator().manual_seed(5))
        with torch.no_grad(), RecordCalls({"cat"}) as rec:
            try:
                result = call(net, x, what="your GRUUNet's forward(x)")
            except StudentError as err:
                concat = any(name == "cat" for name, _ in rec.calls)
                scales = "of its height x width" in str(err)  # the FRDU's own size check
                if (concat and "Sizes of tensors" in str(err)) or scales:
                    raise Mismatch(
                        f"{err.brief} Inside an FRDU, o and the down-sampled state have different "
                        "resolutions: before FRDU t the stream o must go one scale down "
                        "(F.max_pool2d(o, 2)) in the encoder (t < S) and one scale up "
                        "(F.interpolate(o, scale_factor=2, mode='bilinear')) in the decoder"
                    ) from None
                raise
            expected = ref(x)
        if isinstance(result, tuple | list):
            raise Mismatch("forward(x) must return only the logits, not a tuple")
        got = as_tensor(result, "your GRUUNet's forward(x)")
        expect_shape(got, expected.shape, "the logits", "(B, num_classes, H, W)")
        diagnose(got, expected, partial(_net_variants, ref, x), "the logits", atol=1e-4)


gruunet_exercise = Exercise(
    name="gruunet",
    title="GRUU-Net forward pass",
    checker=_check_gruunet,
    reference=GRUUNet,
    hints=(
        "Start with h = self.stem(x) and o = h; then one loop over self.frdus.",
        "Before FRDU t, o changes scale: max-pool by 2 for the first S = self.config.num_scales "
        "FRDUs, bilinear up-sampling by 2 afterwards.",
        "In the loop: o, h = frdu(o, h). After it: return self.readout(h).",
    ),
    solution_notebook=NOTEBOOK,
)
check_gruunet = gruunet_exercise.check
