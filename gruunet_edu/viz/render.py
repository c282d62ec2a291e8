"""Colours and pictures: the course's class colours in one place, arrays to RGB, PNG, colour bars.

Every figure of the course (``viz.plots``) and every panel of the hidden-state explorer
(``viz.explorer_widget``) colours the three classes the same way:

    background  black      interior  green      boundary  magenta

and draws true outlines in green (``plots``) or yellow on a read-out (explorer), predicted ones in
magenta. The functions here turn arrays into (H, W, 3) RGB in [0, 1] and RGB into PNG bytes, so
the explorer can show them in ``ipywidgets.Image`` panels.
"""

from __future__ import annotations

import html
import io

import numpy as np

__all__ = [
    "BACKGROUND_COLOUR",
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "GATE_CMAP",
    "INTERIOR_COLOUR",
    "BOUNDARY_COLOUR",
    "OUTLINE_COLOUR",
    "PRED_COLOUR",
    "STATE_CMAP",
    "TRUTH_COLOUR",
    "array_to_png",
    "class_cmap",
    "colour_bar_png",
    "colourise",
    "legend_html",
    "outline",
    "probs_to_rgb",
]

BACKGROUND_COLOUR = (0.0, 0.0, 0.0)  # black
INTERIOR_COLOUR = (0.1, 0.9, 0.3)  # green
BOUNDARY_COLOUR = (1.0, 0.2, 0.8)  # magenta
# Class k of the 3-class target (background / interior / boundary) is drawn in CLASS_COLOURS[k].
CLASS_COLOURS = np.array([BACKGROUND_COLOUR, INTERIOR_COLOUR, BOUNDARY_COLOUR], dtype=np.float32)
CLASS_NAMES = ("background", "interior", "boundary")
# Outlines and error maps: truth green, prediction magenta (the interior and boundary colours).
TRUTH_COLOUR = INTERIOR_COLOUR
PRED_COLOUR = BOUNDARY_COLOUR
# The true outline on the explorer's read-out overlay, where green and magenta are taken.
OUTLINE_COLOUR = (1.0, 0.9, 0.1)  # yellow
STATE_CMAP = "RdBu_r"  # one channel of h_t: blue negative, white 0, red positive
GATE_CMAP = "magma"  # a gate in [0, 1]: black 0 (keep the state), bright 1 (take the candidate)


def class_cmap():
    """A matplotlib colour map for a class map with values 0, 1, 2 (use ``vmin=0, vmax=2``)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap([tuple(c) for c in CLASS_COLOURS.tolist()])


def colourise(array: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """Map a (H, W) array to RGB (H, W, 3) in [0, 1] with a matplotlib colour map."""
    import matplotlib

    span = vmax - vmin if vmax > vmin else 1.0
    scaled = np.clip((np.asarray(array, dtype=np.float32) - vmin) / span, 0.0, 1.0)
    return matplotlib.colormaps[cmap](scaled)[..., :3].astype(np.float32)


def probs_to_rgb(probs: np.ndarray) -> np.ndarray:
    """Class probabilities (K, H, W) as RGB (H, W, 3): sum_k p_k * CLASS_COLOURS[k]."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3:
        raise ValueError(f"expected class probabilities (K, H, W), got shape {probs.shape}")
    k = min(probs.shape[0], len(CLASS_COLOURS))
    return np.clip(np.tensordot(probs[:k].transpose(1, 2, 0), CLASS_COLOURS[:k], axes=1), 0, 1)


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a boolean ``mask`` with at least one 4-neighbour outside it."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    return mask & ~inner


def array_to_png(array: np.ndarray, min_size: int = 192) -> bytes:
    """Encode a (H, W) in [0, 1] or (H, W, 3) RGB in [0, 1] array as PNG bytes.

    Small images are enlarged by an integer factor (nearest neighbour) to at least ``min_size``
    pixels so single pixels stay visible in the browser.
    """
    from PIL import Image

    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected (H, W) or (H, W, 3), got shape {arr.shape}")
    factor = max(1, int(np.ceil(min_size / max(1, max(arr.shape[:2])))))
    if factor > 1:
        arr = np.repeat(np.repeat(arr, factor, axis=0), factor, axis=1)
    data = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(data).save(buffer, format="PNG")
    return buffer.getvalue()


def colour_bar_png(
    vmin: float, vmax: float, cmap: str, label: str = "", width: int = 200, dpi: int = 100
) -> bytes:
    """A horizontal colour bar from ``vmin`` to ``vmax`` with ticks, as PNG bytes (``width`` px).

    Drawn under a panel so a colour can be read as a number (a gate of 0.04 is nearly black).
    """
    import matplotlib
    from matplotlib.colorbar import Colorbar
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if not vmax > vmin:
        vmin, vmax = vmin - 0.5, vmin + 0.5
    fig = Figure(figsize=(width / dpi, 0.62), dpi=dpi)
    ax = fig.add_axes((0.06, 0.55, 0.88, 0.3))
    bar = Colorbar(
        ax, cmap=matplotlib.colormaps[cmap], norm=Normalize(vmin, vmax), orientation="horizontal"
    )
    bar.set_ticks([vmin, (vmin + vmax) / 2, vmax])
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    if label:
        bar.set_label(label, fontsize=7, labelpad=1)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _swatch(rgb, name: str) -> str:
    r, g, b = (int(round(255 * float(v))) for v in rgb)
    return (  # one unbreakable item: the swatch never wraps away from its name
        f'<span style="white-space:nowrap;margin-right:0.6em">'
        f'<span style="display:inline-block;width:0.9em;height:0.9em;margin-right:0.25em;'
        f'vertical-align:middle;border:1px solid #888;background:rgb({r},{g},{b})"></span>'
        f"{html.escape(name)}</span> "
    )


def legend_html(with_outline: bool = True) -> str:
    """An HTML legend of the read-out and overlay colours (class colours, true outline)."""
    items = [_swatch(c, n) for c, n in zip(CLASS_COLOURS.tolist(), CLASS_NAMES, strict=True)]
    if with_outline:
        items.append(_swatch(OUTLINE_COLOUR, "true outline (overlay)"))
    return '<div style="font-size:90%;line-height:1.4">' + "".join(items) + "</div>"
