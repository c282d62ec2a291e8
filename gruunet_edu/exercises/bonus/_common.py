"""What the bonus exercises share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gruunet_edu.exercises.core import Exercise


def solutions(name: str) -> str:
    """The path of the worked solution of notebook ``name`` (e.g. ``"00_setup_and_data"``)."""
    return f"solutions/{name}.ipynb"


def bonus(
    name: str,
    title: str,
    checker: Callable[[Any], int | None],
    reference: Any,
    hints: Sequence[str],
    notebook: str,
) -> Exercise:
    """The bonus exercise ``name``, titled "Bonus: ``title``", of notebook ``notebook``."""
    return Exercise(
        name, f"Bonus: {title}", checker, reference, hints, solutions(notebook), bonus=True
    )
