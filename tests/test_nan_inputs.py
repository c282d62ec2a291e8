"""NaN pixels are refused with their count by every Python entry point (CLI: test_cli_faults)."""

import numpy as np
import pytest
import torch

from gruunet_edu.evaluation.inference import predict_instances
from gruunet_edu.models import GRUUNetConfig, build_model
from gruunet_edu.viz.explorer import HiddenStateExplorer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(GRUUNetConfig.preset("tiny")).eval()


def _nan_image(n=7):
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    image.flat[:n] = np.nan
    return image


def test_predict_instances_refuses_nan_pixels(model):
    with pytest.raises(ValueError, match=r"image holds 7 NaN pixel\(s\) of 1024"):
        predict_instances(model, _nan_image())
    with pytest.raises(ValueError, match=r"holds 7 NaN pixel"):
        predict_instances(model, torch.from_numpy(_nan_image()))


def test_explorer_refuses_nan_pixels(model):
    with pytest.raises(ValueError, match=r"the explorer's image holds 3 NaN pixel"):
        HiddenStateExplorer(model, _nan_image(3))


def test_integer_images_have_no_nan_to_check(model):
    labels, probs = predict_instances(model, (np.ones((32, 32)) * 100).astype(np.uint16))
    assert labels.shape == (32, 32) and probs.shape[1:] == (32, 32)
