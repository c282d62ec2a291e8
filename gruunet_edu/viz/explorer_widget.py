"""The interactive hidden-state explorer for JupyterLab: ipywidgets around HiddenStateExplorer.

Controls: an **image** picker (one explorer per image, built when first picked), the **step**
slider over the FRDU steps t = 1 ... 2S-1, the **view** of h_t ("channel" or "PCA") and the
**channel** slider (used in channel view; greyed out otherwise). Panels (PNG in
``ipywidgets.Image``): the input, h_t, the gates z_t and r_t, the read-out softmax(head(h_t)) and
the read-out on the image; under h_t, z_t and r_t a colour bar says what a colour means (in PCA
view: the share of variance of each component), under the read-outs a legend of the class colours.
Every control and panel carries a CSS class (``gruunet-explorer-step``,
``gruunet-explorer-panel-state``, ...); the whole box has ``gruunet-explorer``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gruunet_edu.viz.explorer import GATES, HiddenStateExplorer
from gruunet_edu.viz.render import (
    GATE_CMAP,
    STATE_CMAP,
    array_to_png,
    colour_bar_png,
    colourise,
    legend_html,
    probs_to_rgb,
)

__all__ = ["PANELS", "VIEWS", "ExplorerWidget", "explorer_widget"]

PANELS = ("image", "state", "z", "r", "readout", "overlay")
VIEWS = ("channel", "PCA")
GATE_NAMES = {"z": "update gate z_t", "r": "reset gate r_t"}
OFF_CLASS = "gruunet-explorer-off"  # a control that does nothing in the current view
# Disabled controls are drawn faded, so that they look disabled, not merely unresponsive.
_STYLE = (
    f"<style>.gruunet-explorer .{OFF_CLASS} {{ opacity: 0.35; }}"
    f" .gruunet-explorer .{OFF_CLASS} * {{ cursor: not-allowed !important; }}</style>"
)

Source = HiddenStateExplorer | Callable[[], HiddenStateExplorer]


class ExplorerWidget:
    """Controls and panels of the explorer, wired to one :class:`HiddenStateExplorer` per image.

    Args:
        explorers: one explorer, or a mapping name -> explorer (or a function returning one,
            called the first time that image is picked).
        panel_size: width of every panel in pixels.

    Attributes a program (or a test) drives like a user would: ``picker``, ``step``, ``view``,
    ``channel``, ``info``, ``panels`` (name -> Image), ``captions`` (name -> HTML), ``bars``
    ("state", "z", "r" -> Image), ``box`` (the VBox that is displayed).
    """

    def __init__(
        self, explorers: HiddenStateExplorer | Mapping[str, Source], panel_size: int = 200
    ) -> None:
        import ipywidgets as widgets

        if isinstance(explorers, HiddenStateExplorer):
            explorers = {"image": explorers}
        if not explorers:
            raise ValueError("the explorer widget needs at least one image (got an empty mapping)")
        self._sources: dict[str, Source] = dict(explorers)
        self._built: dict[str, HiddenStateExplorer] = {}
        self._bar_cache: dict[tuple[float, float, str, str], bytes] = {}
        self.panel_size = panel_size
        name = next(iter(self._sources))
        first = self._explorer(name)

        self.picker = widgets.Dropdown(options=list(self._sources), value=name, description="image")
        if len(self._sources) == 1:
            self.picker.layout.display = "none"
        self.step = widgets.IntSlider(
            value=first.num_steps, min=1, max=first.num_steps, description="step t"
        )
        self.view = widgets.ToggleButtons(options=list(VIEWS), value="PCA", description="view")
        self.channel = widgets.IntSlider(
            value=0, min=0, max=first.num_channels - 1, description="channel"
        )
        self.info = widgets.HTML(value="")
        for w, cls in (
            (self.picker, "picker"),
            (self.step, "step"),
            (self.view, "view"),
            (self.channel, "channel"),
            (self.info, "info"),
        ):
            w.add_class(f"gruunet-explorer-{cls}")

        self.panels: dict[str, Any] = {}
        self.captions: dict[str, Any] = {}
        self.bars: dict[str, Any] = {}
        self.pca_note = widgets.HTML(value="")
        self.pca_note.add_class("gruunet-explorer-pca-note")
        boxes = self._panel_boxes(widgets, panel_size)
        self.captions["image"].value = "<b>input</b>"
        self.captions["readout"].value = "<b>read-out softmax(head(h_t))</b>"
        self.captions["overlay"].value = "<b>read-out on the image</b>"

        self.picker.observe(self._on_picker, names="value")
        self.step.observe(self.update, names="value")
        self.channel.observe(self.update, names="value")
        self.view.observe(self._on_view, names="value")

        controls = widgets.HBox([self.picker, self.step, self.view, self.channel])
        grid = widgets.GridBox(
            boxes, layout=widgets.Layout(grid_template_columns=f"repeat(3, {panel_size + 10}px)")
        )
        self.box = widgets.VBox([widgets.HTML(value=_STYLE), controls, self.info, grid])
        self.box.add_class("gruunet-explorer")
        self._show_image()
        self._on_view()

    def _panel_boxes(self, widgets: Any, panel_size: int) -> list[Any]:
        """One VBox per panel: caption, image and, where the panel has them, colour bar, PCA
        note or legend (fills ``self.panels``, ``self.captions`` and ``self.bars``)."""
        boxes = []
        width = widgets.Layout(width=f"{panel_size}px")
        for panel in PANELS:
            image = widgets.Image(format="png", layout=width)
            image.add_class("gruunet-explorer-panel")
            image.add_class(f"gruunet-explorer-panel-{panel}")
            caption = widgets.HTML(value="")
            caption.add_class(f"gruunet-explorer-caption-{panel}")
            self.panels[panel], self.captions[panel] = image, caption
            children = [caption, image]
            if panel in ("state", "z", "r"):
                bar = widgets.Image(format="png", layout=widgets.Layout(width=f"{panel_size}px"))
                bar.add_class("gruunet-explorer-colourbar")
                bar.add_class(f"gruunet-explorer-colourbar-{panel}")
                self.bars[panel] = bar
                children.append(bar)
            if panel == "state":
                children.append(self.pca_note)
            if panel in ("readout", "overlay"):
                legend = widgets.HTML(value=legend_html(with_outline=panel == "overlay"))
                legend.add_class("gruunet-explorer-legend")
                children.append(legend)
            boxes.append(widgets.VBox(children))
        return boxes

    # ------------------------------------------------------------------ state
    def _explorer(self, name: str) -> HiddenStateExplorer:
        if name not in self._built:
            source = self._sources[name]
            self._built[name] = source if isinstance(source, HiddenStateExplorer) else source()
        return self._built[name]

    @property
    def explorer(self) -> HiddenStateExplorer:
        """The explorer of the image the picker shows."""
        return self._explorer(self.picker.value)

    @property
    def names(self) -> list[str]:
        """The names of the images the picker offers."""
        return list(self._sources)

    # ------------------------------------------------------------------ callbacks
    def _on_picker(self, _change: Any = None) -> None:
        e = self.explorer
        self.step.max, self.channel.max = e.num_steps, e.num_channels - 1
        self._show_image()
        self.update()

    def _on_view(self, _change: Any = None) -> None:
        channel_view = self.view.value == "channel"
        self.channel.disabled = not channel_view
        if channel_view:
            self.channel.remove_class(OFF_CLASS)
        else:
            self.channel.add_class(OFF_CLASS)
        self.channel.tooltip = None if channel_view else "used in the channel view"
        self.update()

    def _show_image(self) -> None:
        self.panels["image"].value = array_to_png(self.explorer.image)

    def _bar(self, vmin: float, vmax: float, cmap: str, label: str) -> bytes:
        key = (round(vmin, 6), round(vmax, 6), cmap, label)
        if key not in self._bar_cache:
            self._bar_cache[key] = colour_bar_png(vmin, vmax, cmap, label, width=self.panel_size)
        return self._bar_cache[key]

    def update(self, _change: Any = None) -> None:
        """Redraw every panel for the current image, step, view and channel."""
        e, t = self.explorer, int(self.step.value)
        if self.view.value == "PCA":
            pca = e.pca(t, "shared")
            self.panels["state"].value = array_to_png(pca.rgb)
            self.captions["state"].value = "<b>h_t, first 3 principal components as RGB</b>"
            basis = ", ".join(f"{r:.0%}" for r in pca.basis_ratio)
            self.pca_note.value = (
                f"<small>at this step: {pca.describe()}<br>"
                f"(basis fitted on all steps: {basis})</small>"
            )
            self.pca_note.layout.display = None
            self.bars["state"].layout.display = "none"
            if not self.bars["state"].value:  # hidden, but never an empty image
                c = int(self.channel.value)
                vmax = e.channel_range(c) or 1.0
                self.bars["state"].value = self._bar(-vmax, vmax, STATE_CMAP, f"h_t[{c}]")
            gate_channel = None
        else:
            c = int(self.channel.value)
            vmax = e.channel_range(c) or 1.0
            self.panels["state"].value = array_to_png(
                colourise(e.channel_image(t, c), -vmax, vmax, STATE_CMAP)
            )
            self.captions["state"].value = f"<b>h_t, channel {c}</b> (same scale at every step)"
            self.bars["state"].value = self._bar(-vmax, vmax, STATE_CMAP, f"h_t[{c}]")
            self.bars["state"].layout.display = None
            self.pca_note.layout.display = "none"
            gate_channel = c
        where = "mean over channels" if gate_channel is None else f"channel {gate_channel}"
        for gate in GATES:
            g = e.gate_image(t, gate, gate_channel)
            self.panels[gate].value = array_to_png(colourise(g, 0.0, 1.0, GATE_CMAP))
            self.captions[gate].value = f"<b>{GATE_NAMES[gate]}</b> ({where}, mean {g.mean():.2f})"
            self.bars[gate].value = self._bar(0.0, 1.0, GATE_CMAP, f"{gate}_t")
        self.panels["readout"].value = array_to_png(probs_to_rgb(e.readout(t)))
        self.panels["overlay"].value = array_to_png(e.overlay(t))
        text = e.step_name(t)
        if e.truth is not None:
            text += f"; foreground Dice of the read-out: {e.dice(t):.3f}"
        self.info.value = text

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


def explorer_widget(
    explorers: HiddenStateExplorer | Mapping[str, Source], panel_size: int = 200
) -> ExplorerWidget:
    """The interactive explorer for one explorer or a mapping name -> explorer (an image picker).

    Display the result (the last line of a cell) to see it in JupyterLab.
    """
    return ExplorerWidget(explorers, panel_size=panel_size)
