"""Checks for notebook 03 (GRUU-Net): the FRDU scale factors and the network's forward pass.

Exercises: ``factors`` (:func:`check_factors`) and ``gruunet`` (:func:`check_gruunet`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from gruunet_edu.exercises import probes
from gruunet_edu.exercises.core import (
    Exercise,
    Mismatch,
    RecordCalls,
    StudentError,
    call,
    diagnose,
    expect,
    expect_shape,
    instantiate,
    max_difference,
    plural,
    seeded,
    vary_batchnorm,
)
from gruunet_edu.exercises.mistakes import Spread
from gruunet_edu.exercises.mistakes.nb3 import net_variants
from gruunet_edu.models.config import GRUUNetConfig, frdu_factors
from gruunet_edu.models.gruunet import GRUUNet

NOTEBOOK = "solutions/03_gruunet.ipynb"

_HINTS = {
    "factors": (
        "Write them down for S = 3 first: the stream o goes down three times, then up twice.",
        "Encoder: [2**i for i in range(1, S + 1)]. The decoder mirrors it without the bottom.",
        "down + down[-2::-1]",
    ),
    "gruunet": (
        "Start with h = self.stem(x) and o = h; then one loop over self.frdus.",
        "Before FRDU t, o changes scale: max-pool by 2 for the first S = self.config.num_scales "
        "FRDUs, bilinear up-sampling by 2 afterwards.",
        "In the loop: o, h = frdu(o, h). After it: return self.readout(h).",
    ),
}


# ------------------------------------------------------------------------------ scale factors


reference_factors = frdu_factors  # the notebook's name for the package's function


def _type_name(value: Any) -> str:
    return "NumPy array" if isinstance(value, np.ndarray) else type(value).__name__


def _factor_list(got: Any, s: int) -> list[int]:
    """The student's factors as a list of ints, or a Mismatch saying what the type is."""
    what = f"frdu_factors({s})"
    if got is None:
        raise Mismatch(f"{what} returned None: is a `return` statement missing?")
    if not isinstance(got, list):
        raise Mismatch(
            f"{what} returned a {_type_name(got)}; return a list of ints (the notebook "
            "compares it with list(config.frdu_factors) and prints it)"
        )
    if any(isinstance(f, float) for f in got):
        raise Mismatch(f"{what} = {got} contains floats; return ints (2**i, not 2.0**i)")
    if not all(isinstance(f, int) and not isinstance(f, bool) for f in got):
        kinds = sorted({type(f).__name__ for f in got})
        raise Mismatch(f"{what} contains {', '.join(kinds)}; return plain Python ints")
    return got


def _factors_mistake(got: list[int], s: int) -> str:
    """The message naming what is wrong with ``got`` = frdu_factors(s)."""
    expected = frdu_factors(s)
    down = expected[:s]
    head = f"frdu_factors({s}) = {got}"
    exps = list(range(1, s + 1))
    known = [
        (down, "has only the encoder; the decoder FRDUs come back up: " + str(expected)),
        (
            down + down[::-1],
            f"visits the bottom scale {2**s} twice; the decoder starts one scale up, so there "
            f"are 2S - 1 = {2 * s - 1} FRDUs",
        ),
        (
            down + down[:-1],
            f"goes up again in the decoder; after the bottom scale {2**s} the decoder "
            "comes back: 2**(S-1), ..., 2",
        ),
        (
            down + down[-2:0:-1],
            "stops early: the decoder must end at factor 2 (the last FRDU works at half "
            "resolution)",
        ),
        (exps + exps[-2::-1], "lists the exponents i; the factors are 2**i"),
        (
            [2 * i for i in exps] + [2 * i for i in exps][-2::-1],
            "grows by 2 at every scale (2 * i); the factor doubles (2**i)",
        ),
        (
            frdu_factors(s - 1) if s > 1 else [],
            f"stops one scale too early: the encoder goes down to 2**S = {2**s} "
            "(range(1, S + 1) includes S)",
        ),
    ]
    if s != 3:
        known.append(
            (
                frdu_factors(3),
                "are the factors for S = 3, the notebook's example: compute them from num_scales",
            )
        )
    for output, message in known:
        if got == output:
            return f"{head} {message}"
    if got[:1] == [1]:
        return (
            f"{head} starts at 1: the first FRDU already works on the max-pooled stream, at "
            "half resolution (factor 2)"
        )
    if len(got) != len(expected):
        n = plural(len(got), "entry", "entries")
        return f"{head} has {n}; there are 2S - 1 = {len(expected)} FRDUs"
    return f"{head}, expected {expected}"


def _check_factors(student: Any) -> None:
    for s in (5, 2, 1, 3, 4):  # S = 5 first: tells most mistakes apart (S = 3 is the example)
        first = call(student, s, what=f"your frdu_factors({s})")
        got = _factor_list(first, s)
        again = call(student, s, what=f"your frdu_factors({s})")
        expect(
            again == got,
            f"calling frdu_factors({s}) twice gives different results ({got}, then {again}): "
            "build a new list inside the function (a list defined outside it keeps growing)",
        )
        expect(got == frdu_factors(s), _factors_mistake(got, s))


_exercise = partial(Exercise, solution_notebook=NOTEBOOK)

factors_exercise = _exercise(
    "factors", "FRDU scale factors", _check_factors, frdu_factors, _HINTS["factors"]
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


def _layer_words(net: GRUUNet) -> dict[str, str]:
    s = net.config.num_scales
    words = {"stem": "x, the input image"}
    for t in range(len(net.frdus)):
        move = (
            "F.max_pool2d(o, 2)" if t < s else "F.interpolate(o, scale_factor=2, mode='bilinear')"
        )
        state = "h = self.stem(x)" if t == 0 else f"h returned by FRDU {t - 1}"
        words[f"frdus.{t}"] = f"o = {move} and {state} (FRDU {t} of {len(net.frdus)})"
    words["residual"] = "h, the state returned by the last FRDU"
    words["head"] = "h + self.residual(h)"
    return words


def _run_net(net: GRUUNet, x: torch.Tensor) -> torch.Tensor:
    """The student's logits, with errors explained by where they happened."""
    s, steps = net.config.num_scales, len(net.frdus)
    with RecordCalls({"cat"}) as rec, probes.LayerLog(net, list(_layer_words(net))) as log:
        try:
            result = call(net, x, what="your GRUUNet's forward(x)")
        except StudentError as err:
            if err.kind == "IndexError" and log.ran("stem"):
                raise Mismatch(
                    f"{err.brief} This network has len(self.frdus) = {steps} FRDUs "
                    f"(S = {s} scales): loop over self.frdus instead of a fixed count"
                ) from None
            if log.ran("stem") == 0:
                raise Mismatch(
                    f"{err.brief} self.stem is never called: the first state is h = "
                    "self.stem(x) (and o = h)"
                ) from None
            original = err.original or str(err)
            concat = any(name == "cat" for name, _ in rec.calls) and "Sizes of tensors" in original
            if concat or "of its height x width" in original:  # the FRDU's own size check
                raise Mismatch(
                    f"{err.brief} Inside an FRDU, o and the down-sampled state have different "
                    "resolutions: before FRDU t the stream o must go one scale down "
                    "(F.max_pool2d(o, 2)) in the encoder (t < self.config.num_scales, which is "
                    f"S = {s} here) and one scale up "
                    "(F.interpolate(o, scale_factor=2, mode='bilinear')) in the decoder"
                ) from None
            raise
    if isinstance(result, tuple | list):
        raise Mismatch("forward(x) must return only the logits, not a tuple")
    return probes.tensor_result(result, "your GRUUNet's forward(x)")


def _compare_net(net: GRUUNet, ref: GRUUNet, x: torch.Tensor, got: torch.Tensor, mode: str) -> None:
    with torch.no_grad():
        expected = ref(x)
    expect_shape(got, expected.shape, "the logits", "(B, num_classes, H, W)")

    def explain() -> str:
        where = probes.first_difference(net, ref, (x,), _layer_words(ref), atol=1e-4)
        return where or (
            f"the logits differ from the reference network's ({mode} mode, largest difference "
            f"{max_difference(got, expected):.3g}) although every layer got the right input"
        )

    diagnose(got, expected, partial(net_variants, ref, x), "the logits", atol=1e-4, explain=explain)


def _missing_gradient(layer: str) -> str | None:
    """A layer of FRDU t that only feeds the state h gets no gradient: h was cut off."""
    parts = layer.split(".")
    if len(parts) > 2 and parts[1] == "frdus" and parts[3] in {"project", "gru"}:
        return (
            f"no gradient flows back through the state h after FRDU {parts[2]} (its "
            f"{parts[3]} layer gets none): h is detached (h.detach() or torch.no_grad()) "
            "between the FRDUs; pass the h each FRDU returns to the next one as it is"
        )
    return None


def _check_gruunet(student: Any) -> None:
    for index, (config, b, hgt, wid) in enumerate(_NET_CASES):
        ref = _reference_net(config, seed=index)
        net = instantiate(student, ref, config, what="your GRUUNet")
        x = torch.rand(b, config.in_channels, hgt, wid, generator=torch.Generator().manual_seed(5))
        before = probes.snapshot([x])
        with torch.no_grad():
            got = _run_net(net, x)
        probes.expect_unchanged([x], before, ["x"])
        _compare_net(net, ref, x, got, "eval")
        # train mode: BatchNorm uses batch statistics, so the up-sampling mode and every other
        # path move the logits far beyond the tolerance (in eval mode on these weights some
        # change them by about 1e-5 only)
        x2 = torch.cat([x, 1 - x.flip(-1)])
        train_ref = probes.train_mode(ref, seed=index)
        train_net = instantiate(student, train_ref, config, what="your GRUUNet")
        with torch.no_grad():
            got = _run_net(train_net, x2)
        _compare_net(train_net, probes.train_mode(ref, seed=index), x2, got, "train")
        grad_ref = probes.train_mode(ref, seed=index)
        grad_net = instantiate(student, grad_ref, config, what="your GRUUNet")
        probes.expect_gradients(
            grad_net,
            grad_ref,
            {"x": x2},
            "your GRUUNet",
            grad_net,
            grad_ref,
            missing=_missing_gradient,
        )


gruunet_exercise = _exercise(
    "gruunet", "GRUU-Net forward pass", _check_gruunet, GRUUNet, _HINTS["gruunet"]
)
check_gruunet = gruunet_exercise.check


def variant_spread() -> Spread:
    """How far each known mistake moves the logits, in eval and train mode (see :class:`Spread`)."""
    spread = Spread()
    for index, (config, b, hgt, wid) in enumerate(_NET_CASES):
        ref = _reference_net(config, seed=index)
        x = torch.rand(b, config.in_channels, hgt, wid, generator=torch.Generator().manual_seed(5))
        x2 = torch.cat([x, 1 - x.flip(-1)])
        for net, inp in ((ref, x), (probes.train_mode(ref, seed=index), x2)):
            with torch.no_grad():
                reference = net(inp)
            for key, (output, _m) in net_variants(net, inp).items():
                spread.note("gruunet", key, max_difference(output, reference), 1e-4)
    return spread
