"""Helpers shared by the checks of notebooks 04-06 (on top of :mod:`gruunet_edu.exercises.core`).

- :func:`keeps_random_state`: a checker leaves torch's, NumPy's and Python's global random
  generators exactly as it found them, whatever the student's code draws;
- :func:`explain`: pass when the value matches, else the message of the known mistake it matches,
  else a message saying what was compared on which input (never only "it differs");
- :func:`exercise`: an :class:`~gruunet_edu.exercises.core.Exercise` whose checker keeps the
  random state, with its hints looked up by name;
- :func:`ratio_mistake`: a value that is exactly the reference times a size of the input (a sum
  where a mean belongs, or the other way round).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gruunet_edu.exercises.core import Exercise, close, diagnose, preserved_rng

ATOL, RTOL = 1e-5, 1e-4  # the tolerance of core.close


def keeps_random_state(checker: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``checker`` inside :func:`~gruunet_edu.exercises.core.preserved_rng`: torch's, NumPy's
    and Python's global generators end exactly as they were, whatever the student's code draws."""

    @functools.wraps(checker)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with preserved_rng():
            return checker(*args, **kwargs)

    return wrapped


def explain(
    got: Any,
    expected: Any,
    variants: dict[str, tuple[Any, str]] | Callable[[], dict[str, tuple[Any, str]]],
    fallback: str,
    atol: float = ATOL,
) -> None:
    """Pass when ``got`` matches ``expected``; else raise the message of the first known mistake
    whose output ``got`` matches; else raise ``fallback`` (what was compared, on which input).
    """
    diagnose(got, expected, variants, what="output", atol=atol, explain=lambda: fallback)


def ratio_mistake(got: float, expected: float, ratios: dict[str, tuple[float, str]]) -> str | None:
    """The message of the first ``name: (factor, message)`` with ``got == factor * expected``."""
    for factor, message in ratios.values():
        if factor != 1 and abs(expected) > 1e-6 and close(got, factor * expected):
            return message
    return None


def moves(a: Any, b: Any, factor: float = 100.0, atol: float = ATOL, rtol: float = RTOL) -> bool:
    """True when ``a`` and ``b`` differ by more than ``factor`` times the check's tolerance
    somewhere (or differ in shape): a known mistake is then far outside what passes."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach().double()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).detach().double()
    if a.shape != b.shape:
        return True
    bad = ~torch.isfinite(a) | ~torch.isfinite(b)
    if bad.any():
        return True
    return bool(((a - b).abs() > factor * (atol + rtol * b.abs())).any())


def exercise(
    name: str,
    title: str,
    checker: Callable[[Any], int | None],
    reference: Any,
    *,
    hints: dict[str, Any],
    notebook: str,
) -> Exercise:
    """The exercise ``name`` of a notebook: ``checker`` wrapped in :func:`keeps_random_state`,
    the hints ``hints[name]``, the worked solution in ``notebook``."""
    return Exercise(
        name=name,
        title=title,
        checker=keeps_random_state(checker),
        reference=reference,
        hints=hints[name],
        solution_notebook=notebook,
    )
