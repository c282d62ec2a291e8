"""The hidden-state explorer: the right array for every widget value, and the widget wiring.

Steps are numbered t = 1 ... 2S-1 (h_0 is the stem); ``states[t - 1]`` holds step t.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
import torch

from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.gruunet import GRUUNet
from gruunet_edu.viz.explorer import HiddenStateExplorer
from gruunet_edu.viz.explorer_widget import ExplorerWidget, explorer_widget
from gruunet_edu.viz.render import array_to_png, colourise, probs_to_rgb

SIZE = 32


@pytest.fixture(scope="module")
def model() -> GRUUNet:
    torch.manual_seed(0)
    config = GRUUNetConfig.preset("tiny", hidden_channels=6)
    net = GRUUNet(config)
    # A few training-mode passes so BatchNorm statistics are not the identity.
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(2, 1, SIZE, SIZE))
    return net.eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((SIZE, SIZE), dtype=np.float32)


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    labels = np.zeros((SIZE, SIZE), dtype=np.uint16)
    labels[4:14, 4:14] = 1
    labels[18:28, 16:30] = 2
    return labels


@pytest.fixture(scope="module")
def explorer(model, image, truth) -> HiddenStateExplorer:
    return HiddenStateExplorer(model, image, truth=truth)


@pytest.fixture(scope="module")
def reference(model, image):
    with torch.no_grad():
        logits, states = model(torch.from_numpy(image)[None, None], return_states=True)
    return logits, states


def test_sizes(explorer, model):
    assert explorer.num_steps == model.config.num_steps
    assert explorer.num_channels == 6
    assert explorer.shape == (SIZE, SIZE)
    assert list(explorer.steps) == list(range(1, model.config.num_steps + 1))
    assert model.config.num_steps == 2 * model.config.num_scales - 1
    assert explorer.step_name(1).startswith(f"step t = 1 of {explorer.num_steps}")
    assert "encoder" in explorer.step_name(1)
    assert "pooling factor 2" in explorer.step_name(1)
    assert "decoder" in explorer.step_name(explorer.num_steps)


def test_channel_image_is_the_state_channel(explorer, reference):
    _, states = reference
    for step in (1, explorer.num_steps):
        for c in (0, 5):
            np.testing.assert_allclose(
                explorer.channel_image(step, c), states[step - 1].h[0, c].numpy(), atol=1e-5
            )
            assert explorer.state(step).h.shape == (1, 6, SIZE, SIZE)


def test_changing_step_changes_arrays(explorer):
    a, b = 1, explorer.num_steps
    assert not np.allclose(explorer.channel_image(a, 0), explorer.channel_image(b, 0))
    assert not np.allclose(explorer.pca_rgb(a), explorer.pca_rgb(b))
    assert not np.allclose(explorer.gate_image(a, "z"), explorer.gate_image(b, "z"))
    assert not np.allclose(explorer.readout(a), explorer.readout(b))


@pytest.mark.parametrize("basis", ["step", "shared"])
def test_pca_rgb(explorer, basis):
    for step in explorer.steps:
        view = explorer.pca(step, basis)
        assert view.rgb.shape == (SIZE, SIZE, 3)
        assert view.rgb.dtype == np.float32
        assert view.rgb.min() >= 0.0 and view.rgb.max() <= 1.0
        ratio = view.explained_variance_ratio
        assert np.all(ratio >= 0) and ratio.sum() <= 1.0 + 1e-6
        if basis == "step":
            assert ratio[0] >= ratio[1] >= ratio[2]
            np.testing.assert_array_equal(view.basis_ratio, ratio)
            # Red (first component) varies most, as the scale is shared by the three channels.
            var = view.rgb.reshape(-1, 3).var(axis=0)
            assert var[0] >= var[1] - 1e-9 and var[0] >= var[2] - 1e-9
        np.testing.assert_allclose(np.linalg.norm(view.components[0]), 1.0, atol=1e-5)
        basis_ratio = view.basis_ratio  # the fit's own ratios are always in decreasing order
        assert basis_ratio[0] >= basis_ratio[1] >= basis_ratio[2] >= 0
    np.testing.assert_array_equal(explorer.pca_rgb(1), explorer.pca(1).rgb)


def test_pca_first_component_is_the_direction_of_most_variance(explorer):
    h = explorer.state(3).h[0].numpy().reshape(6, -1).T.astype(np.float64)  # (N, C)
    centred = h - h.mean(axis=0)
    first = explorer.pca(3).components[0].astype(np.float64)
    rng = np.random.default_rng(1)
    for _ in range(20):
        v = rng.normal(size=6)
        v /= np.linalg.norm(v)
        assert (centred @ first).var() >= (centred @ v).var() - 1e-6


def test_pca_of_a_constant_state_is_grey():
    from gruunet_edu.viz.pca import principal_components

    mean, components, ratio = principal_components(np.ones((50, 4)))
    assert np.all(components == 0) and np.all(ratio == 0)
    np.testing.assert_allclose(mean, 1.0)


def test_gate_image(explorer, reference):
    _, states = reference
    for step in explorer.steps:
        for which in ("z", "r"):
            mean = explorer.gate_image(step, which)
            assert mean.shape == (SIZE, SIZE)
            assert mean.min() >= 0.0 and mean.max() <= 1.0
            gate = getattr(states[step - 1], which)[0]
            np.testing.assert_allclose(mean, gate.mean(dim=0).numpy(), atol=1e-5)
            np.testing.assert_allclose(
                explorer.gate_image(step, which, channel=3), gate[3].numpy(), atol=1e-5
            )
    z = explorer.gate_means("z")
    assert z.shape == (explorer.num_steps,)
    np.testing.assert_allclose(z[1], explorer.gate_image(2, "z").mean(), atol=1e-5)


def test_readout_is_softmax_of_model_readout(explorer, model, reference):
    logits, states = reference
    for step in explorer.steps:
        with torch.no_grad():
            expected = torch.softmax(model.readout(states[step - 1].h), dim=1)[0].numpy()
        probs = explorer.readout(step)
        assert probs.shape == (3, SIZE, SIZE)
        np.testing.assert_allclose(probs, expected, atol=1e-5)
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(explorer.segmentation(step), probs.argmax(axis=0))
    # The read-out after the last step is the network's prediction.
    last = explorer.readout(explorer.num_steps)
    np.testing.assert_allclose(last, torch.softmax(logits, dim=1)[0].numpy(), atol=1e-5)


def test_dice_and_overlay(explorer, truth):
    dice = explorer.dice_per_step()
    assert dice.shape == (explorer.num_steps,)
    assert np.all((dice >= 0) & (dice <= 1))
    seg = explorer.segmentation(2) > 0
    fg = truth > 0
    expected = 2 * (seg & fg).sum() / (seg.sum() + fg.sum())
    assert explorer.dice(2) == pytest.approx(expected)
    over = explorer.overlay(2)
    assert over.shape == (SIZE, SIZE, 3)
    assert over.min() >= 0.0 and over.max() <= 1.0
    # The outline of the truth is drawn in yellow.
    np.testing.assert_allclose(over[4, 8], (1.0, 0.9, 0.1))


def test_invalid_step_and_channel(explorer):
    with pytest.raises(ValueError, match=r"step 99 is out of range.*t = 1 to"):
        explorer.channel_image(99, 0)
    with pytest.raises(ValueError, match="step -1 is out of range"):
        explorer.readout(-1)
    with pytest.raises(ValueError, match=r"step 0 is out of range.*h_0 is the stem"):
        explorer.gate_image(0, "z")
    with pytest.raises(ValueError, match=f"step {explorer.num_steps + 1} is out of range"):
        explorer.pca(explorer.num_steps + 1)
    with pytest.raises(ValueError, match=r"channel 6 is out of range.*6 channels"):
        explorer.channel_image(1, 6)
    with pytest.raises(ValueError, match="step must be an integer"):
        explorer.pca_rgb(1.5)
    with pytest.raises(ValueError, match="'z' \\(update gate\\) or 'r'"):
        explorer.gate_image(1, "h")
    with pytest.raises(ValueError, match="basis"):
        explorer.pca(1, "global")


def test_no_truth_means_no_dice(model, image):
    e = HiddenStateExplorer(model, image)
    with pytest.raises(ValueError, match="truth="):
        e.dice(1)
    assert e.overlay(1).shape == (SIZE, SIZE, 3)


def test_bad_inputs(model, image):
    with pytest.raises(ValueError, match="floating point"):
        HiddenStateExplorer(model, (image * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="one image"):
        HiddenStateExplorer(model, np.zeros((2, 1, SIZE, SIZE), np.float32))
    with pytest.raises(ValueError, match="truth has shape"):
        HiddenStateExplorer(model, image, truth=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="readout"):
        HiddenStateExplorer(torch.nn.Conv2d(1, 3, 1), image)


def test_states_are_computed_once(model, image, monkeypatch):
    calls = []
    original = model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs.get("return_states"))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    e = HiddenStateExplorer(model, image)
    for step in e.steps:
        e.channel_image(step, 0), e.pca_rgb(step), e.gate_image(step, "r"), e.readout(step)
    assert calls == [True]
    assert model.training is False


def test_accepts_tensors_and_keeps_training_mode(model, image):
    model.train()
    try:
        e = HiddenStateExplorer(model, torch.from_numpy(image)[None])
        assert model.training
    finally:
        model.eval()
    np.testing.assert_allclose(
        e.channel_image(1, 0), HiddenStateExplorer(model, image).channel_image(1, 0), atol=1e-5
    )


def test_odd_sizes_are_cropped_back(model):
    e = HiddenStateExplorer(model, np.random.default_rng(2).random((30, 27), dtype=np.float32))
    assert e.shape == (30, 27)
    assert e.pca_rgb(1).shape == (30, 27, 3)
    assert e.readout(1).shape == (3, 30, 27)


def test_array_to_png():
    png = array_to_png(np.linspace(0, 1, 16).reshape(4, 4), min_size=8)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(png)).size == (8, 8)
    assert Image.open(BytesIO(array_to_png(np.zeros((4, 4, 3)), 1))).mode == "RGB"
    with pytest.raises(ValueError):
        array_to_png(np.zeros((4, 4, 2)))


def test_plot_steps(explorer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ("pca", "channel1", "z", "r", "readout", "overlay")
    fig = explorer.plot_steps(steps=[1, 3], rows=rows)
    assert len(fig.axes) == 12 + 3  # 6 rows x 2 steps, and colour bars for channel1, z and r
    assert [ax.get_title() for ax in fig.axes[:2]] == ["t = 1", "t = 3"]
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown row"):
        explorer.plot_steps(rows=("nonsense",))
    plt.close("all")


# ---------------------------------------------------------------------------- widget wiring
def _bytes(image_widget) -> bytes:
    return bytes(image_widget.value)


def _panels(w) -> dict[str, bytes]:
    return {name: _bytes(p) for name, p in w.panels.items()}


def test_widget_controls(explorer):
    import ipywidgets as widgets

    w = explorer_widget(explorer)
    assert isinstance(w, ExplorerWidget)
    assert isinstance(w.box, widgets.VBox)
    assert "gruunet-explorer" in w.box._dom_classes
    assert isinstance(w.step, widgets.IntSlider) and w.step.description == "step t"
    assert (w.step.min, w.step.max, w.step.value) == (1, explorer.num_steps, explorer.num_steps)
    assert isinstance(w.channel, widgets.IntSlider) and w.channel.max == explorer.num_channels - 1
    assert set(w.view.options) == {"channel", "PCA"}
    assert set(w.panels) == {"image", "state", "z", "r", "readout", "overlay"}
    for name, panel in w.panels.items():
        assert isinstance(panel, widgets.Image)
        assert f"gruunet-explorer-panel-{name}" in panel._dom_classes
        assert _bytes(panel)[:4] == b"\x89PNG"
    assert "gruunet-explorer-step" in w.step._dom_classes
    for bar in w.bars.values():  # a hidden colour bar still holds an image (none is empty)
        assert _bytes(bar)[:4] == b"\x89PNG"
    assert w.picker.layout.display == "none"  # one image: no picker to choose from
    assert "application/vnd.jupyter.widget-view+json" in w._repr_mimebundle_()


def test_moving_the_step_slider_updates_the_images(explorer):
    w = explorer_widget(explorer)
    before = _panels(w)
    info = w.info.value
    w.step.value = 1
    after = _panels(w)
    for name in ("state", "z", "r", "readout", "overlay"):
        assert after[name] != before[name], name
    assert after["image"] == before["image"]
    assert w.info.value != info and "step t = 1 of" in w.info.value and "Dice" in w.info.value
    # The panel shows exactly what the explorer computes for that step.
    assert after["readout"] == array_to_png(probs_to_rgb(explorer.readout(1)))
    assert after["overlay"] == array_to_png(explorer.overlay(1))


def test_view_and_channel_widgets(explorer):
    w = explorer_widget(explorer)
    w.step.value = 2
    pca_state, pca_z = _bytes(w.panels["state"]), _bytes(w.panels["z"])
    assert w.channel.disabled
    w.view.value = "channel"
    assert not w.channel.disabled
    channel0 = _bytes(w.panels["state"])
    assert channel0 != pca_state
    assert _bytes(w.panels["z"]) != pca_z  # gates show channel 0 instead of the mean
    w.channel.value = 4
    assert _bytes(w.panels["state"]) != channel0
    vmax = explorer.channel_range(4)
    expected = array_to_png(colourise(explorer.channel_image(2, 4), -vmax, vmax, "RdBu_r"))
    assert _bytes(w.panels["state"]) == expected
    w.view.value = "PCA"
    assert w.channel.disabled
    assert _bytes(w.panels["state"]) == pca_state


def test_a_disabled_control_looks_disabled(explorer):
    from gruunet_edu.viz.explorer_widget import OFF_CLASS

    w = explorer_widget(explorer)
    assert w.channel.disabled and OFF_CLASS in w.channel._dom_classes  # PCA view: channel unused
    style = w.box.children[0].value
    assert f".{OFF_CLASS}" in style and "opacity" in style
    w.view.value = "channel"
    assert not w.channel.disabled and OFF_CLASS not in w.channel._dom_classes
    w.view.value = "PCA"
    assert OFF_CLASS in w.channel._dom_classes


def test_colour_bars_follow_the_panels(explorer):
    from PIL import Image as PILImage

    from gruunet_edu.viz.render import colour_bar_png

    w = explorer_widget(explorer)
    assert set(w.bars) == {"state", "z", "r"}
    for gate in ("z", "r"):
        png = _bytes(w.bars[gate])
        assert png == colour_bar_png(0.0, 1.0, "magma", f"{gate}_t", width=w.panel_size)
        assert PILImage.open(BytesIO(png)).size[0] == w.panel_size
    # PCA view: no colour bar for h_t but the share of variance of each component, in order.
    assert w.bars["state"].layout.display == "none"
    pca = explorer.pca(w.step.value, "shared")
    note = w.pca_note.value
    labels = [f"PC{i} ({c})" for i, c in ((1, "red"), (2, "green"), (3, "blue"))]
    positions = [note.index(label) for label in labels]
    assert positions == sorted(positions)
    for ratio in pca.explained_variance_ratio:
        assert f"{ratio:.0%}" in note
    # Channel view: the bar spans -max|h| ... +max|h| of that channel and changes with it.
    w.view.value = "channel"
    assert w.bars["state"].layout.display is None and w.pca_note.layout.display == "none"
    vmax = explorer.channel_range(0)
    assert _bytes(w.bars["state"]) == colour_bar_png(
        -vmax, vmax, "RdBu_r", "h_t[0]", width=w.panel_size
    )
    w.channel.value = 3
    if not np.isclose(explorer.channel_range(3), vmax):
        assert _bytes(w.bars["state"]) != colour_bar_png(
            -vmax, vmax, "RdBu_r", "h_t[0]", width=w.panel_size
        )


def test_legend_names_the_class_colours(explorer):
    from gruunet_edu.viz.render import CLASS_COLOURS, legend_html

    w = explorer_widget(explorer)
    legends = [
        c.value
        for box in w.box.children[3].children
        for c in box.children
        if "gruunet-explorer-legend" in c._dom_classes
    ]
    assert len(legends) == 2  # under the read-out and under the overlay
    assert legends[1] == legend_html(with_outline=True)
    for name, rgb in zip(("background", "interior", "boundary"), CLASS_COLOURS, strict=True):
        r, g, b = (int(round(255 * float(v))) for v in rgb)
        assert name in legends[0] and f"rgb({r},{g},{b})" in legends[0]
    assert "outline" in legends[1] and "outline" not in legends[0]


def test_image_picker_switches_explorers_and_builds_them_once(model, image, truth, explorer):
    built = []
    other_image = np.ascontiguousarray(image[::-1])

    def make_other():
        built.append(1)
        return HiddenStateExplorer(model, other_image, truth=truth[::-1])

    w = explorer_widget({"first": explorer, "flipped": make_other})
    assert w.names == ["first", "flipped"] and built == []  # built only when picked
    assert w.picker.layout.display != "none"
    assert "gruunet-explorer-picker" in w.picker._dom_classes
    w.step.value = 2
    before = _panels(w)
    w.picker.value = "flipped"
    assert built == [1]
    after = _panels(w)
    for name in PANELS_ALL:
        assert after[name] != before[name], name
    assert after["image"] == array_to_png(w.explorer.image)
    assert after["readout"] == array_to_png(probs_to_rgb(w.explorer.readout(2)))
    w.picker.value = "first"
    w.picker.value = "flipped"
    assert built == [1]
    with pytest.raises(ValueError, match="at least one image"):
        explorer_widget({})


PANELS_ALL = ("image", "state", "z", "r", "readout", "overlay")


def test_shared_pca_uses_one_basis_for_all_steps(explorer):
    first, last = explorer.pca(1, "shared"), explorer.pca(explorer.num_steps, "shared")
    np.testing.assert_array_equal(first.components, last.components)
    np.testing.assert_array_equal(first.basis_ratio, last.basis_ratio)
    assert not np.array_equal(first.components, explorer.pca(1, "step").components)


def test_shared_pca_uses_one_colour_scale_for_all_steps(explorer):
    views = [explorer.pca(t, "shared") for t in explorer.steps]
    peak = max(float(np.abs(v.scores).max()) for v in views)  # the largest score of any step
    for v in views:
        expected = np.clip(0.5 + 0.5 * v.scores / peak, 0.0, 1.0)
        np.testing.assert_allclose(v.rgb, expected, atol=1e-5)
    assert min(float(np.abs(v.rgb - 0.5).max()) for v in views) < 0.5 - 1e-3  # not per-step
