"""Prediction at the training nucleus size: rescale before and after, and the size estimate."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from gruunet_edu.data import synthetic_samples
from gruunet_edu.evaluation.rescale import (
    TRAINING_DIAMETER,
    equivalent_diameters,
    estimate_diameter,
    predict_instances_rescaled,
)


class Threshold(nn.Module):
    """Logits that call pixels brighter than 0.5 interior, darker ones background."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1)
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([-10.0, 10.0, 0.0]).view(3, 1, 1, 1)
            self.conv.bias[:] = torch.tensor([5.0, -5.0, -3.0])

    def forward(self, x):
        return self.conv(x)


def _discs(radius: float, size: int = 256) -> tuple[np.ndarray, int]:
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size), np.float32)
    centres = [(y, x) for y in range(48, size - 40, 80) for x in range(48, size - 40, 80)]
    for cy, cx in centres:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1.0
    return image, len(centres)


def test_training_diameter_is_that_of_the_sample_data():
    d = np.concatenate([equivalent_diameters(s.labels) for s in synthetic_samples(24, 256)])
    assert abs(np.median(d) / TRAINING_DIAMETER - 1.0) < 0.1


def test_estimate_diameter_of_discs_and_too_few_objects():
    image, n = _discs(15.0)
    labels, _ = ndimage.label(image > 0)
    assert estimate_diameter(labels) == pytest.approx(30.0, rel=0.03)
    assert estimate_diameter(labels, min_objects=n + 1) is None


@pytest.mark.parametrize("diameter", [40.0, "auto"])
def test_large_nuclei_are_predicted_at_the_training_scale_and_mapped_back(diameter):
    image, n = _discs(20.0)
    labels, probs, info = predict_instances_rescaled(Threshold(), image, diameter=diameter)
    assert labels.shape == image.shape and probs.shape == (3, *image.shape)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-4)
    assert info["factor"] == pytest.approx(TRAINING_DIAMETER / 40.0, rel=0.05)
    assert info["estimated"] == (diameter == "auto")
    assert labels.max() == n
    areas = np.bincount(labels.ravel())[1:]
    np.testing.assert_allclose(areas, np.pi * 20.0**2, rtol=0.1)  # in the image's own pixels


def test_no_rescaling_when_the_size_fits_or_none_is_asked():
    image, n = _discs(TRAINING_DIAMETER / 2)
    for diameter in ("auto", None):
        labels, _, info = predict_instances_rescaled(Threshold(), image, diameter=diameter)
        assert info["factor"] == 1.0 and labels.max() == n
    with pytest.raises(ValueError, match="diameter"):
        predict_instances_rescaled(Threshold(), image, diameter=-3)
    with pytest.raises(ValueError, match="diameter"):
        predict_instances_rescaled(Threshold(), image, diameter="big")


def test_predict_diameter_option_is_checked(tmp_path, capsys):
    from gruunet_edu.cli import main

    image = tmp_path / "a.tif"
    image.write_bytes(b"")
    for command in (["predict", str(image)], ["evaluate"]):
        for bad in ("-1", "0", "nan", "huge"):
            with pytest.raises(SystemExit) as exit_info:
                main([*command, "--checkpoint", "x.pt", "--diameter", bad])
            assert exit_info.value.code == 2
            assert "--diameter must be a positive number of pixels" in capsys.readouterr().err


def test_auto_rescales_nuclei_of_the_size_of_real_micrographs():
    """Nuclei of about 25 px (2018 Data Science Bowl images; the shift test set) are inside the
    training range but off its median by more than AUTO_TOLERANCE: predicted again, resized."""
    from gruunet_edu.evaluation.rescale import AUTO_TOLERANCE

    image, n = _discs(12.5)
    assert 25.0 / TRAINING_DIAMETER > AUTO_TOLERANCE
    labels, _, info = predict_instances_rescaled(Threshold(), image, diameter="auto")
    assert info["estimated"] and info["factor"] == pytest.approx(TRAINING_DIAMETER / 25.0, rel=0.05)
    assert labels.max() == n
    np.testing.assert_allclose(np.bincount(labels.ravel())[1:], np.pi * 12.5**2, rtol=0.1)


def test_evaluate_model_predicts_as_predict_does_when_asked():
    from types import SimpleNamespace

    from gruunet_edu.evaluation.evaluate import evaluate_model

    image, n = _discs(20.0)
    labels, _ = ndimage.label(image > 0)
    samples = [SimpleNamespace(image=image, labels=labels)]
    auto, auto_preds = evaluate_model(Threshold(), samples, diameter="auto")
    own, own_preds = evaluate_model(Threshold(), samples)
    expected, _, _ = predict_instances_rescaled(Threshold(), image, diameter="auto")
    np.testing.assert_array_equal(auto_preds[0], expected)
    assert auto["n_pred"] == own["n_pred"] == n
    assert not np.array_equal(auto_preds[0], own_preds[0])  # resized and back: other outlines
