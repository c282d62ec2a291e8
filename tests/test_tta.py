"""Test-time augmentation: the average over the eight turns and flips of the square."""

import numpy as np
import pytest
import torch
from torch import nn

from gruunet_edu.evaluation.inference import predict_probabilities
from gruunet_edu.evaluation.tiling import predict_tiled
from gruunet_edu.evaluation.tta import DIHEDRAL, class_probabilities, inverse, transform
from gruunet_edu.models import GRUUNetConfig, build_model


class Lopsided(nn.Module):
    """A network that is not symmetric: a 3x3 kernel heavier on one corner, and a ramp."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        with torch.no_grad():
            self.conv.weight[:, :, 0, 0] += 2.0

    def forward(self, x):
        ramp = torch.linspace(0, 1, x.shape[-1], device=x.device)  # depends on the orientation
        return self.conv(x) + ramp


class Pointwise(nn.Module):
    """A 1x1 convolution: the same answer in every orientation."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(1, 3, 1)

    def forward(self, x):
        return self.conv(x)


def test_the_eight_transforms_are_distinct_and_inverted():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7)  # not square
    seen = set()
    for k, flip in DIHEDRAL:
        y = transform(x, k, flip)
        seen.add((tuple(y.shape), tuple(y.flatten().tolist())))
        assert torch.equal(inverse(y, k, flip), x)
    assert len(DIHEDRAL) == len(seen) == 8


def test_tta_is_the_mean_over_the_group_and_equivariant():
    model = Lopsided().eval()
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    out = class_probabilities(model, x, tta=True)
    # the definition, written out with numpy's rotations and flips
    arr = x.numpy()
    expected = 0
    for k in range(4):
        for flip in (False, True):
            a = np.rot90(arr, k, axes=(2, 3))
            a = a[..., ::-1] if flip else a
            p = torch.softmax(model(torch.from_numpy(a.copy())), 1).detach().numpy()
            p = p[..., ::-1] if flip else p
            expected = expected + np.rot90(p, -k, axes=(2, 3))
    np.testing.assert_allclose(out.numpy(), expected / 8, atol=1e-6)
    np.testing.assert_allclose(out.sum(1).numpy(), 1.0, atol=1e-5)
    plain = class_probabilities(model, x)
    assert not torch.allclose(plain, out, atol=1e-3)  # the model is not symmetric, TTA is:
    for k, flip in DIHEDRAL:
        turned = class_probabilities(model, transform(x, k, flip), tta=True)
        torch.testing.assert_close(turned, transform(out, k, flip), atol=1e-5, rtol=0)


def test_tta_changes_nothing_for_a_symmetric_network():
    x = torch.rand(1, 1, 9, 14)
    model = Pointwise().eval()
    torch.testing.assert_close(
        class_probabilities(model, x, tta=True), class_probabilities(model, x)
    )


@pytest.mark.parametrize("shape", [(48, 48), (40, 56)])
def test_predict_probabilities_with_tta_on_gruunet(shape):
    model = build_model(GRUUNetConfig.preset("tiny")).eval()
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    probs = predict_probabilities(model, image, tta=True)
    assert probs.shape == (3, *shape) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)


def test_tiled_prediction_with_tta():
    model = Lopsided().eval()
    image = np.random.default_rng(1).random((40, 40)).astype(np.float32)
    whole = predict_probabilities(model, image, tta=True)
    # one tile covering the image: the same numbers as the untiled path
    np.testing.assert_allclose(predict_tiled(model, image, tile=64, tta=True), whole, atol=1e-6)
    tiled = predict_probabilities(model, image, tile_threshold=16, tile=24, overlap=8, tta=True)
    np.testing.assert_allclose(tiled.sum(0), 1.0, atol=1e-5)
    symmetric = Pointwise().eval()  # tile by tile, with TTA, still the pointwise answer
    np.testing.assert_allclose(
        predict_tiled(symmetric, image, tile=24, overlap=8, tta=True),
        predict_probabilities(symmetric, image),
        atol=1e-6,
    )


def test_tta_reaches_the_network_from_every_entry_point(monkeypatch):
    """predict_samples (own scale, "auto", a given diameter) and the tiled path pass ``tta`` on
    to the forward pass instead of dropping it."""
    from types import SimpleNamespace

    from gruunet_edu.evaluation import inference, tiling
    from gruunet_edu.evaluation.evaluate import predict_samples

    seen: list[bool] = []

    def spy(model, x, tta=False):
        seen.append(tta)
        return class_probabilities(model, x, tta)

    monkeypatch.setattr(inference, "class_probabilities", spy)
    monkeypatch.setattr(tiling, "class_probabilities", spy)
    image = np.random.default_rng(2).random((40, 40)).astype(np.float32)
    samples = [SimpleNamespace(image=image, labels=np.zeros((40, 40), np.uint16))]
    model = Pointwise().eval()
    for diameter in (None, "auto", 30.0):
        for tta in (True, False):
            seen.clear()
            predict_samples(model, samples, diameter=diameter, tta=tta)
            assert seen and all(t == tta for t in seen), (diameter, tta, seen)
    seen.clear()
    predict_probabilities(model, image, tile_threshold=16, tile=24, overlap=8, tta=True)
    assert len(seen) >= 1 and all(seen)
