"""Bonus of notebook 03: the shape of the pooling stream o_t at every FRDU step."""

from __future__ import annotations

from typing import Any

from gruunet_edu.exercises.bonus._common import bonus
from gruunet_edu.exercises.core import Mismatch, call, expect
from gruunet_edu.models.config import GRUUNetConfig


def reference_o_shapes(
    config: GRUUNetConfig, height: int, width: int
) -> list[tuple[int, int, int]]:
    """(C_t, ceil(H / f_t), ceil(W / f_t)) of the pooling stream o_t for t = 1 ... 2S-1."""
    return [
        (c, -(-height // f), -(-width // f))
        for c, f in zip(config.widths, config.frdu_factors, strict=True)
    ]


def _check_o_shapes(student: Any) -> int:
    cases = (
        (GRUUNetConfig.preset("tiny"), 64, 96),
        (GRUUNetConfig.preset("paper"), 256, 256),
        (GRUUNetConfig.preset("tiny"), 100, 60),
    )
    for config, height, width in cases:
        expected = reference_o_shapes(config, height, width)
        got = call(student, config, height, width, what="your function")
        try:
            got = [tuple(int(v) for v in shape) for shape in got]
        except TypeError:
            raise Mismatch(f"return a list of (C, h, w) tuples, got {type(got).__name__}") from None
        what = f"{height}x{width} input"
        expect(
            len(got) == len(expected),
            f"{what}: {len(got)} shapes, expected one per FRDU step t = 1 ... {len(expected)}",
        )
        for t, (g, e) in enumerate(zip(got, expected, strict=True), start=1):
            if g == e:
                continue
            if g[0] != e[0]:
                raise Mismatch(f"{what}, step t = {t}: {g[0]} channels, expected {e[0]}")
            raise Mismatch(
                f"{what}, step t = {t}: size {g[1:]} but o_t is at 1/{config.frdu_factors[t - 1]}"
                f" of the input, {e[1:]} (sizes that do not divide round up: the input is padded)"
            )
    return len(cases)


_HINTS = (
    "config.widths gives C_t and config.frdu_factors the factor f_t of every step, in order.",
    "The model pads the input to a multiple of 2^S and crops back to ceil(H / f): in Python "
    "-(-H // f).",
)

o_shapes_exercise = bonus(
    "o_shapes",
    "the pooling stream's shapes",
    _check_o_shapes,
    reference_o_shapes,
    _HINTS,
    "03_gruunet",
)
check_o_shapes = o_shapes_exercise.check
