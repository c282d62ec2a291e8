"""Class maps are drawn in the course's class colours, on a fixed range, with a legend."""

from __future__ import annotations

import numpy as np
import pytest

from gruunet_edu.viz import plots, render


def test_class_colours_live_in_one_place():
    assert plots.TRUTH_COLOUR == render.INTERIOR_COLOUR == tuple(render.CLASS_COLOURS[1])
    assert plots.PRED_COLOUR == render.BOUNDARY_COLOUR == tuple(render.CLASS_COLOURS[2])
    cmap = render.class_cmap()
    np.testing.assert_allclose(cmap(np.arange(3) / 2)[:, :3], render.CLASS_COLOURS, atol=1e-6)


def test_show_classes_fixed_range_and_legend():
    image = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    target = np.zeros((16, 16), np.uint8)
    target[4:12, 4:12] = 1
    only_interior = target.copy()  # a map without the boundary class: same colours still
    target[4, 4:12] = 2
    fig = plots.show_classes(image, {"target": target, "prediction": only_interior})
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["image", "target", "prediction"]
    for ax in axes[1:]:
        im = ax.get_images()[0]
        assert im.get_clim() == (0, 2)
        assert im.get_cmap().N == 3
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["background", "interior", "boundary"]
    with pytest.raises(ValueError, match="must be \\(H, W\\)"):
        plots.show_classes(image, {"bad": np.zeros((2, 16, 16))})
