"""What the bonus exercises share."""

from __future__ import annotations


def solutions(name: str) -> str:
    """The path of the worked solution of notebook ``name`` (e.g. ``"00_setup_and_data"``)."""
    return f"solutions/{name}.ipynb"
