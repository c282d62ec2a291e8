"""Data-flow diagrams of an FRDU and of the whole GRUU-Net, drawn from a ``GRUUNetConfig``.

The figures follow the config, so ``tiny``, ``paper`` and ``blog`` each get their own widths,
scales and choices (state down-sampling, projection before up-sampling). The shapes at the arrows
are those of :class:`~gruunet_edu.models.frdu.FRDU` and :class:`~gruunet_edu.models.gruunet.GRUUNet`
for an ``image_size`` x ``image_size`` input (channels x height x width, batch left out):

    FRDU t (factor f, width C, incoming width C_in, state channels C_h):
    o_in = ConvNorm_1x1([o_{t-1}, down_f(h_{t-1})])   (C_in + C_h) x H/f -> C x H/f
    o_t  = Dense_k(o_in)                              C x H/f
    x_t  = up_f(ConvNorm_1x1(o_t))                    C_h (or C without projection) x H
    h_t  = ConvGRU(x_t, h_{t-1})                      C_h x H

    network: h_0 = o_0 = stem(image); t = 1 ... S encoder (f = 2 ... 2^S), t = S+1 ... 2S-1
    decoder (f = 2^(S-1) ... 2); logits = head(h_{2S-1} + residual(h_{2S-1})).

``python -m gruunet_edu.viz.diagrams docs`` (or ``make figures``) writes the README's PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from gruunet_edu.models.config import PRESETS, GRUUNetConfig

__all__ = ["frdu_diagram", "network_diagram", "preset_name", "save_readme_figures"]

STATE_COLOUR = "#d9ecff"  # boxes at full resolution (the state h)
POOL_COLOUR = "#fff1d6"  # boxes at low resolution (the pooling stream o)
OP_COLOUR = "#f2f2f2"  # operations


def preset_name(config: GRUUNetConfig) -> str | None:
    """The preset a config equals (ignoring input channels and classes), or None."""
    for name in PRESETS:
        preset = GRUUNetConfig.preset(
            name, in_channels=config.in_channels, num_classes=config.num_classes
        )
        if preset == config:
            return name
    return None


def _shape(c: int, size: int, factor: int = 1) -> str:
    side = -(-size // factor)  # ceil, as the model crops padded inputs
    return f"{c}×{side}×{side}"


def _box(ax, xy, text, colour, width=2.3, height=0.62, fontsize=8.5) -> None:
    x, y = xy
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.04,rounding_size=0.12",
            facecolor=colour,
            edgecolor="#555555",
            linewidth=0.8,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, label="", offset=(0.0, 0.16), colour="#333333", style="-") -> None:
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=10,
            linewidth=1.0,
            color=colour,
            linestyle=style,
            shrinkA=0,
            shrinkB=0,
        )
    )
    if label:
        mx, my = (start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1]
        ax.text(mx, my, label, ha="center", va="bottom", fontsize=7.5, color="#1a1a1a")


def _check(config: GRUUNetConfig, image_size: int) -> None:
    if not isinstance(config, GRUUNetConfig):
        raise ValueError(f"expected a GRUUNetConfig, got {type(config).__name__}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")


def frdu_diagram(config: GRUUNetConfig, step: int = 1, image_size: int = 256) -> Figure:
    """The data flow of FRDU ``step`` (t = 1 ... 2S-1) of ``config``, shapes at every arrow.

    Top row: the pooling stream o at 1/f of the resolution; bottom row: the full-resolution
    state h. Returns a matplotlib Figure.
    """
    _check(config, image_size)
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= config.num_steps:
        raise ValueError(
            f"step must be an FRDU step t = 1 to {config.num_steps} of this config, got {step!r}"
        )
    i = step - 1
    f = config.frdu_factors[i]
    c = config.widths[i]
    c_in = config.hidden_channels if i == 0 else config.widths[i - 1]
    c_h = config.hidden_channels
    k = config.dense_layers_per_step[i]
    x_c = c_h if config.project_before_upsample else c
    down = "max-pool" if config.state_downsample == "maxpool" else "bilinear"
    part = "encoder" if i < config.num_scales else "decoder"
    s = image_size

    fig = Figure(figsize=(11.5, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(-0.2, 16.6)
    ax.set_ylim(-0.9, 3.9)
    ax.set_axis_off()
    top, bottom = 3.0, 0.0
    # the two inputs
    prev = (
        "stem o_0, max-pooled"
        if i == 0
        else f"o_{step - 1} " + ("max-pooled ×½" if part == "encoder" else "upsampled ×2")
    )
    _box(ax, (1.2, top), f"o_{step - 1}\n({prev})", POOL_COLOUR, width=2.2, height=0.8, fontsize=8)
    _box(ax, (1.2, bottom), f"h_{step - 1}\nfull-resolution state", STATE_COLOUR, width=2.2)
    # down(h) and the merge
    _box(ax, (3.9, 1.5), f"down: {down} ÷{f}", OP_COLOUR, width=2.2)
    _arrow(ax, (1.6, bottom + 0.31), (3.5, 1.5 - 0.31), _shape(c_h, s), offset=(-0.75, 0.0))
    _box(ax, (5.3, top), "concat", OP_COLOUR, width=1.2)
    _arrow(ax, (2.3, top), (4.7, top), _shape(c_in, s, f))
    _arrow(ax, (4.3, 1.5 + 0.31), (5.1, top - 0.31), _shape(c_h, s, f), offset=(0.75, -0.1))
    _box(ax, (8.0, top), "ConvNorm 1×1", OP_COLOUR, width=1.9)
    _arrow(ax, (5.9, top), (7.05, top), _shape(c_in + c_h, s, f))
    dense = f"Dense block\nk={k}, g={config.growth_rate}, b={config.bottleneck}"
    _box(ax, (11.2, top), dense, OP_COLOUR, width=2.2, height=0.8, fontsize=8)
    _arrow(ax, (8.95, top), (10.1, top), _shape(c, s, f))
    _box(ax, (15.2, top), f"o_{step}\n(to the next FRDU)", POOL_COLOUR, width=2.3, height=0.8)
    _arrow(ax, (12.3, top), (14.05, top), _shape(c, s, f))
    # projection, up-sampling and the GRU
    proj = "ConvNorm 1×1" + (f" → C_h={c_h}" if config.project_before_upsample else " (keeps C)")
    _box(ax, (11.2, 1.5), proj, OP_COLOUR, width=2.9)
    _arrow(ax, (11.2, top - 0.4), (11.2, 1.5 + 0.31), _shape(c, s, f), offset=(0.85, -0.1))
    _box(ax, (7.6, 1.5), f"up: bilinear ×{f}", OP_COLOUR, width=2.2)
    _arrow(ax, (9.75, 1.5), (8.7, 1.5), _shape(x_c, s, f))
    _box(ax, (9.4, bottom), "ConvGRU\n(z_t, r_t, h̃_t)", OP_COLOUR, width=2.0, height=0.8)
    _arrow(ax, (7.9, 1.5 - 0.31), (8.9, bottom + 0.4), f"x_t {_shape(x_c, s)}", offset=(-0.9, 0))
    _arrow(ax, (2.3, bottom), (8.4, bottom), _shape(c_h, s))
    _box(ax, (15.2, bottom), f"h_{step}\n(to the next FRDU)", STATE_COLOUR, width=2.3, height=0.8)
    _arrow(ax, (10.4, bottom), (14.05, bottom), _shape(c_h, s))
    ax.text(0.1, 3.75, f"pooling stream o at 1/{f} resolution", fontsize=8.5, color="#8a5a00")
    ax.text(0.1, -0.75, "full resolution", fontsize=8.5, color="#1f4e8c")
    name = preset_name(config)
    title = f"FRDU t = {step} of {config.num_steps} ({part}, factor {f})"
    title += f", preset {name!r}" if name else ""
    title += f", input {config.in_channels}×{s}×{s}; shapes are channels×height×width"
    fig.suptitle(title, fontsize=10)
    return fig


def network_diagram(config: GRUUNetConfig, image_size: int = 256) -> Figure:
    """The whole network: stem (h_0), the FRDU steps t = 1 ... 2S-1 at their scales, the head.

    The state h lives on the bottom line at full resolution; every FRDU reads it (down-sampled)
    and writes it back (up-sampled) once. Returns a matplotlib Figure.
    """
    _check(config, image_size)
    steps, scales = config.num_steps, config.num_scales
    s, c_h = image_size, config.hidden_channels
    width = 1.85
    fig = Figure(
        figsize=(max(7.5, 1.55 * (steps + 3)), 1.25 * (scales + 2.2)), layout="constrained"
    )
    ax = fig.subplots()
    ax.set_xlim(-1.3, (steps + 2) * width + 0.3)
    ax.set_ylim(-scales - 0.8, 0.9)
    ax.set_axis_off()
    # the state line
    x_stem, x_head = 0.0, (steps + 1) * width
    ax.plot([x_stem, x_head], [0, 0], color="#1f4e8c", linewidth=2.2, zorder=0)
    _box(ax, (x_stem, 0), f"stem 5×5\nh_0 = o_0\n{_shape(c_h, s)}", STATE_COLOUR, 1.55, 0.95, 7.5)
    head = f"residual +\n3×3 head\n{_shape(config.num_classes, s)}"
    _box(ax, (x_head, 0), head, STATE_COLOUR, 1.55, 0.95, 7.5)
    ax.text(
        x_stem - 1.2,
        0.62,
        f"h: {c_h} channels at full resolution {s}×{s}",
        fontsize=8,
        color="#1f4e8c",
        ha="left",
    )
    previous = (x_stem, 0.0)
    for i in range(steps):
        t = i + 1
        f = config.frdu_factors[i]
        level = f.bit_length() - 1  # log2 f
        x, y = t * width, -float(level)
        text = f"FRDU t={t}\n÷{f}, C={config.widths[i]}\n{_shape(config.widths[i], s, f)}"
        _box(ax, (x, y), text, POOL_COLOUR, 1.5, 0.85, 7.5)
        # o: the pooling stream from the previous FRDU (or the stem)
        start = (previous[0] + 0.75, previous[1] - (0.3 if previous[1] == 0 else 0.0))
        _arrow(
            ax,
            start,
            (x - 0.75, y + (0.2 if y < previous[1] else -0.2 if y > previous[1] else 0.0)),
            colour="#8a5a00",
        )
        # h: read (down-sampled) and written back (up-sampled) at full resolution
        _arrow(ax, (x - 0.25, 0.0), (x - 0.25, y + 0.43), colour="#1f4e8c", style="--")
        _arrow(ax, (x + 0.25, y + 0.43), (x + 0.25, 0.0), colour="#1f4e8c")
        ax.text(x, 0.12, f"h_{t}", ha="center", va="bottom", fontsize=8, color="#1f4e8c")
        previous = (x, y)
    for level in range(1, scales + 1):
        ax.text(-1.25, -level, f"1/{2**level}", fontsize=8, va="center", color="#8a5a00")
    down = "max-pool" if config.state_downsample == "maxpool" else "bilinear"
    proj = (
        "projected to C_h, then up-sampled"
        if config.project_before_upsample
        else ("up-sampled with all C channels (no projection)")
    )
    name = preset_name(config)
    fig.suptitle(
        f"GRUU-Net{f' preset {name!r}' if name else ''}: S = {scales} scales, "
        f"{steps} FRDU steps t = 1 … {steps}; down(h): {down}; x_t: {proj}",
        fontsize=9.5,
    )
    ax.text(
        x_stem - 1.2,
        -scales - 0.65,
        "solid brown: pooling stream o (max-pool ×½ down, bilinear ×2 up); "
        "dashed blue: down(h_{t-1}) into the FRDU; solid blue: x_t back to the ConvGRU, "
        "which writes h_t",
        fontsize=7.5,
        color="#444444",
    )
    return fig


def save_readme_figures(folder: str | Path = "docs", preset: str = "paper") -> list[Path]:
    """Write ``gruunet-<preset>.png`` and ``frdu-<preset>.png`` (FRDU t = 1) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = GRUUNetConfig.preset(preset)
    paths = []
    for name, fig in (
        (f"gruunet-{preset}.png", network_diagram(config)),
        (f"frdu-{preset}.png", frdu_diagram(config, step=1)),
    ):
        path = folder / name
        fig.savefig(path, dpi=110, metadata={"Software": None})
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - python -m gruunet_edu.viz.diagrams [folder]
    for written in save_readme_figures(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print(written)
