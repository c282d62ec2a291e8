"""Bonus of notebook 02: the parameter count of a dense block."""

from __future__ import annotations

from typing import Any

from torch import nn

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import Mismatch, call
from gruunet_edu.models.dense import DenseBlock


def reference_dense_parameters(
    in_features: int, out_features: int, num_layers: int, growth_rate: int, bn_size: int
) -> int:
    """Parameters of :class:`~gruunet_edu.models.dense.DenseBlock` (bias-free convolutions).

    layer l (input c_l = in + l*g):  BN(c_l) + 1x1 c_l -> b*g + BN(b*g) + 3x3 b*g -> g
    transition (input in + k*g):     BN + 1x1 -> out, then BN(out)
    (a k x k convolution from a to b channels: k*k*a*b; a BatchNorm over c channels: 2c)
    """
    total = 0
    for layer in range(num_layers):
        c = in_features + layer * growth_rate
        inner = bn_size * growth_rate
        total += 2 * c + c * inner + 2 * inner + 9 * inner * growth_rate
    c = in_features + num_layers * growth_rate
    return total + 2 * c + c * out_features + 2 * out_features


def _param_count(module: nn.Module, kind: type | None = None) -> int:
    return sum(
        p.numel()
        for m in module.modules()
        if kind is None or isinstance(m, kind)
        for p in m.parameters(recurse=False)
    )


def _check_dense_parameters(student: Any) -> int:
    cases = ((16, 16, 1, 8, 2), (64, 64, 3, 32, 2), (160, 128, 2, 12, 4), (512, 512, 3, 32, 2))
    for args in cases:
        block = DenseBlock(*args)
        expected = _param_count(block)
        got = call(student, *args, what="your function")
        try:
            got = int(got)
        except (TypeError, ValueError):
            raise Mismatch(f"return a whole number, got {type(got).__name__}") from None
        if got == expected:
            continue
        what = "in={}, out={}, k={}, g={}, b={}".format(*args)
        if got == expected - _param_count(block, nn.BatchNorm2d):
            raise Mismatch(
                f"{what}: you counted only the convolutions ({got}); every BatchNorm2d over c "
                "channels adds 2c parameters (weight and bias)"
            )
        raise Mismatch(f"{what}: you count {got} parameters, the block has {expected}")
    return len(cases)


_HINTS = (
    "Layer l reads in_features + l * growth_rate channels; its 1x1 has bn_size * growth_rate "
    "outputs, its 3x3 growth_rate outputs; no conv has a bias.",
    "A k x k convolution from a to b channels without bias has k * k * a * b parameters; a "
    "BatchNorm2d over c channels has 2c.",
)

dense_parameters_exercise = bonus(
    "dense_parameters",
    "the size of a dense block",
    _check_dense_parameters,
    reference_dense_parameters,
    _HINTS,
    "02_dense_block_and_frdu",
)
check_dense_parameters = dense_parameters_exercise.check
