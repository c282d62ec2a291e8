"""The FRDU and network diagrams follow the config they are drawn from."""

from __future__ import annotations

import pytest

from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.viz.diagrams import frdu_diagram, network_diagram, preset_name, save_readme_figures


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [fig._suptitle.get_text()]


@pytest.mark.parametrize("preset", ["tiny", "paper", "blog"])
def test_network_diagram_has_one_box_per_frdu_step(preset):
    config = GRUUNetConfig.preset(preset)
    texts = _texts(network_diagram(config, image_size=256))
    frdus = [t for t in texts if t.startswith("FRDU t=")]
    assert [t.split("\n")[0] for t in frdus] == [
        f"FRDU t={t}" for t in range(1, config.num_steps + 1)
    ]
    for t, (factor, width) in enumerate(zip(config.frdu_factors, config.widths, strict=True), 1):
        side = 256 // factor
        assert f"÷{factor}, C={width}\n{width}×{side}×{side}" in frdus[t - 1]
    assert any(f"h_0 = o_0\n{config.hidden_channels}×256×256" in t for t in texts)
    title = texts[-1]
    assert f"preset {preset!r}" in title and f"S = {config.num_scales} scales" in title
    assert ("max-pool" if config.state_downsample == "maxpool" else "bilinear") in title


def test_frdu_diagram_shapes_follow_the_config():
    paper, blog = GRUUNetConfig.preset("paper"), GRUUNetConfig.preset("blog")
    paper_texts = _texts(frdu_diagram(paper, step=3, image_size=256))
    blog_texts = _texts(frdu_diagram(blog, step=3, image_size=256))
    # step 3 of the blog's widths: o_2 has 128 channels, factor 8, the state 32 channels
    for texts in (paper_texts, blog_texts):
        assert "128×32×32" in texts and "160×32×32" in texts and "256×32×32" in texts
        assert "32×256×256" in texts
    assert "x_t 32×256×256" in paper_texts  # projected to C_h before up-sampling
    assert "x_t 256×256×256" in blog_texts  # all 256 channels up-sampled
    assert any("max-pool ÷8" in t for t in paper_texts)
    assert any("bilinear ÷8" in t for t in blog_texts)
    assert "FRDU t = 3 of 9 (encoder, factor 8)" in blog_texts[-1]
    decoder = _texts(frdu_diagram(paper, step=9))
    assert "decoder, factor 2" in decoder[-1]


def test_odd_sizes_round_up_like_the_model():
    texts = _texts(frdu_diagram(GRUUNetConfig.preset("tiny"), step=3, image_size=100))
    assert "64×13×13" in texts  # ceil(100 / 8)


def test_bad_arguments_say_what_is_expected():
    config = GRUUNetConfig.preset("tiny")
    with pytest.raises(ValueError, match="t = 1 to 5"):
        frdu_diagram(config, step=0)
    with pytest.raises(ValueError, match="GRUUNetConfig"):
        network_diagram("tiny")
    with pytest.raises(ValueError, match="image_size"):
        network_diagram(config, image_size=0)


def test_preset_name():
    assert preset_name(GRUUNetConfig.preset("blog", in_channels=3, num_classes=2)) == "blog"
    assert preset_name(GRUUNetConfig.preset("tiny", hidden_channels=7)) is None


def test_save_readme_figures(tmp_path):
    paths = save_readme_figures(tmp_path, "tiny")
    assert [p.name for p in paths] == ["gruunet-tiny.png", "frdu-tiny.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
