"""Post-processing of the 3-class output to instances, and tiled prediction."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from gruunet_edu.evaluation.inference import predict_probabilities
from gruunet_edu.evaluation.postprocess import (
    logits_to_instances,
    probabilities_to_instances,
    remove_small_objects,
)
from gruunet_edu.evaluation.tiling import predict_tiled, tile_starts
from gruunet_edu.models import GRUUNetConfig, build_model


def probs_from_classes(classes: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """(3, H, W) probabilities putting `confidence` on the given class of every pixel."""
    other = (1.0 - confidence) / 2
    probs = np.full((3, *classes.shape), other, np.float32)
    for k in range(3):
        probs[k][classes == k] = confidence
    return probs


def test_touching_nuclei_are_split_along_the_boundary_and_grown_into_foreground():
    classes = np.zeros((12, 20), int)
    classes[2:10, 2:18] = 2  # one foreground blob, boundary class everywhere ...
    classes[3:9, 3:9] = 1  # ... except two interiors separated by boundary pixels
    classes[3:9, 11:17] = 1
    labels = probabilities_to_instances(probs_from_classes(classes), min_size=4)
    assert labels.dtype == np.uint16 and labels.max() == 2
    left, right = labels[5, 5], labels[5, 14]
    assert left != right and left > 0 and right > 0
    assert (labels > 0).sum() == (classes > 0).sum()  # seeds grew into the whole foreground
    assert set(np.unique(labels[2:10, 2:6])) == {left}
    assert set(np.unique(labels[2:10, 15:18])) == {right}


def test_small_objects_are_removed_and_unseeded_islands_kept():
    classes = np.zeros((20, 20), int)
    classes[2:10, 2:10] = 2
    classes[3:9, 3:9] = 1  # a nucleus of 64 px
    classes[14:16, 14:16] = 1  # a speck of 4 px
    classes[12:18, 2:8] = 2  # boundary only, no interior seed: 36 px
    probs = probs_from_classes(classes)
    labels = probabilities_to_instances(probs, min_size=16, min_seed_size=1)
    assert labels.max() == 2  # the nucleus and the unseeded island, not the speck
    assert labels[15, 15] == 0 and labels[14, 4] > 0
    no_islands = probabilities_to_instances(probs, min_size=16, keep_unseeded=False)
    assert no_islands.max() == 1
    kept = remove_small_objects(np.array([[1, 1, 0, 2]]), 2)
    np.testing.assert_array_equal(kept, [[1, 1, 0, 0]])


def test_two_class_output_gives_connected_components_and_logits_work():
    fg = np.zeros((10, 10), bool)
    fg[1:4, 1:4] = fg[6:9, 6:9] = True
    probs = np.stack([~fg, fg]).astype(np.float32)
    assert probabilities_to_instances(probs, min_size=1).max() == 2
    logits = torch.from_numpy(np.log(probs_from_classes(np.where(fg, 1, 0))))
    assert logits_to_instances(logits[None], min_size=1).max() == 2
    with pytest.raises(ValueError, match="probabilities of shape"):
        probabilities_to_instances(np.zeros((4, 5, 5)))


class LocalNet(nn.Module):
    """Two 3x3 convolutions: every output pixel sees only a 5 x 5 window."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 3, 3, 1, 1))

    def forward(self, x):
        return self.net(x)


def test_tiled_prediction_matches_untiled_away_from_tile_borders():
    rng = np.random.default_rng(0)
    image = rng.random((70, 90)).astype(np.float32)
    model = LocalNet().eval()
    full = predict_probabilities(model, image, tile_threshold=None)
    tiled = predict_tiled(model, image, tile=32, overlap=12, batch_size=3)
    assert tiled.shape == full.shape == (3, 70, 90)
    np.testing.assert_allclose(tiled.sum(0), 1.0, atol=1e-5)
    # pixels at least 2 px (the receptive-field radius) from every inner edge of every tile
    # covering them see exactly what the whole-image pass sees
    exact = np.ones(image.shape, bool)
    for axis, length in ((0, 70), (1, 90)):
        for start in tile_starts(length, 32, 12):
            stop = start + 32
            near = np.zeros(length, bool)
            if start > 0:
                near[start : start + 2] = True
            if stop < length:
                near[stop - 2 : stop] = True
            exact &= ~(near[:, None] if axis == 0 else near[None, :])
    assert exact.mean() > 0.7
    np.testing.assert_allclose(tiled[:, exact], full[:, exact], atol=1e-5)
    # elsewhere the blending window keeps the difference small
    assert np.abs(tiled - full).max() < 0.1


def test_tiled_gruunet_is_close_to_untiled_and_one_tile_is_exact():
    torch.manual_seed(0)
    model = build_model(GRUUNetConfig.preset("tiny")).eval()
    rng = np.random.default_rng(1)
    image = rng.random((48, 48)).astype(np.float32)
    full = predict_probabilities(model, image, tile_threshold=None)
    one_tile = predict_tiled(model, image, tile=64, overlap=16)
    np.testing.assert_allclose(one_tile, full, atol=1e-5)
    tiled = predict_tiled(model, image, tile=32, overlap=16)
    assert tiled.shape == (3, 48, 48)
    np.testing.assert_allclose(tiled.sum(0), 1.0, atol=1e-5)


def test_tile_starts_cover_the_image():
    assert tile_starts(100, 40, 10) == [0, 30, 60]
    assert tile_starts(30, 40, 10) == [0]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 10, 10)


def test_distance_seeds_split_interiors_joined_by_a_neck():
    yy, xx = np.mgrid[:24, :40]
    classes = np.zeros((24, 40), int)
    for cx in (11, 28):  # two discs of radius 8 whose interiors touch in a narrow neck
        classes[(yy - 12) ** 2 + (xx - cx) ** 2 <= 64] = 1
    probs = probs_from_classes(classes)
    assert probabilities_to_instances(probs, seeds="interior").max() == 1  # merged
    labels = probabilities_to_instances(probs, seeds="distance")
    assert labels.max() == 2 and labels[12, 11] != labels[12, 28]
    with pytest.raises(ValueError, match="seeds must be one of"):
        probabilities_to_instances(probs, seeds="maxima")


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_touching_pair_separated_by_a_thin_seam_gives_two_instances():
    shape = (40, 56)
    left, right = _disc(shape, 20, 18, 12), _disc(shape, 20, 36, 12)  # overlapping discs
    classes = np.zeros(shape, int)
    classes[left | right] = 1
    classes[:, 27] = np.where(classes[:, 27] > 0, 2, 0)  # one-pixel seam of boundary class
    labels = probabilities_to_instances(probs_from_classes(classes))
    assert labels.max() == 2 and labels[20, 12] != labels[20, 42]
    # a seam the network predicted only in part (a gap of 5 px in its middle): still two
    partial = classes.copy()
    partial[18:23, 27] = 1
    labels = probabilities_to_instances(probs_from_classes(partial))
    assert labels.max() == 2 and labels[20, 12] != labels[20, 42]


def test_a_seam_the_network_saw_but_did_not_call_still_splits_the_pair():
    # two nuclei pressed into one almost round blob (centres 4 px apart: the distance map has a
    # single maximum) and one unbroken interior: along the contact line the network's boundary
    # probability is raised (0.4) but stays below the interior's
    shape = (40, 60)
    left, right = _disc(shape, 20, 28, 12), _disc(shape, 20, 32, 12)
    classes = np.zeros(shape, int)
    classes[left | right] = 1
    classes[(left | right) & ~ndimage.binary_erosion(left | right)] = 2
    probs = probs_from_classes(classes)
    seam = (np.abs(np.arange(shape[1]) - 30) < 1.5)[None, :] & (classes == 1)
    probs[:, seam] = np.array([0.05, 0.55, 0.4], np.float32)[:, None]
    plain = probabilities_to_instances(probs, boundary_power=0)
    weighted = probabilities_to_instances(probs)  # default boundary_power=1
    assert plain.max() == 1  # the distance map alone has one maximum
    assert weighted.max() == 2 and weighted[20, 22] != weighted[20, 38]
    with pytest.raises(ValueError, match="boundary_power"):
        probabilities_to_instances(probs, boundary_power=-1)


@pytest.mark.parametrize("radius", [8, 16, 30])
def test_nucleus_whose_interior_has_a_hole_stays_one_instance(radius):
    # an elongated nucleus whose centre the network calls "boundary" (a dark nucleolus): the
    # interior is a ring, thickest at both ends of the long axis
    size = 4 * radius + 12
    yy, xx = np.mgrid[:size, :size]
    c = size // 2
    nucleus = ((yy - c) / radius) ** 2 + ((xx - c) / (1.7 * radius)) ** 2 <= 1
    classes = np.zeros((size, size), int)
    classes[nucleus] = 1
    classes[_disc((size, size), c, c, max(2, radius // 2))] = 2  # the hole
    classes[nucleus & ~ndimage.binary_erosion(nucleus)] = 2
    labels = probabilities_to_instances(probs_from_classes(classes))
    assert labels.max() == 1
    assert (labels > 0).sum() == (classes > 0).sum()


def test_large_irregular_nucleus_is_not_over_split():
    shape = (120, 140)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    phi = np.arctan2(yy - 60, xx - 70)
    radius = 38 * (1 + 0.12 * np.cos(3 * phi + 0.4) + 0.08 * np.cos(4 * phi))  # wavy outline
    classes = np.zeros(shape, int)
    inside = np.hypot(yy - 60, xx - 70) < radius
    classes[inside] = 1
    classes[inside & ~ndimage.binary_erosion(inside)] = 2
    assert probabilities_to_instances(probs_from_classes(classes)).max() == 1


def test_tiled_post_processing_agrees_with_the_whole_image():
    from gruunet_edu.data import make_nuclei
    from gruunet_edu.data.targets import three_class
    from gruunet_edu.evaluation.metrics import evaluate_instances

    _, truth = make_nuclei(3, size=(300, 340))
    probs = probs_from_classes(three_class(truth).astype(int))
    whole = probabilities_to_instances(probs, tile=None)
    tiled = probabilities_to_instances(probs, tile=96, overlap=48, progress=False)
    assert tiled.dtype == np.uint16
    assert set(np.unique(tiled)) == set(range(int(tiled.max()) + 1))  # consecutive ids
    assert abs(int(tiled.max()) - int(whole.max())) <= 1
    assert evaluate_instances(whole, tiled)["f1_50"] >= 0.98  # same objects at IoU 0.5
    assert evaluate_instances(truth, tiled)["f1_50"] >= 0.95


@pytest.mark.parametrize("seed", range(3))
def test_the_training_target_of_crowded_nuclei_is_turned_back_into_them(seed):
    # the widened contact boundary (the training target) as a confident prediction: the seeds
    # grow back over the band, so every nucleus comes back whole and touching ones stay apart
    from gruunet_edu.data import CONTACT_RADIUS, make_nuclei
    from gruunet_edu.data.targets import three_class
    from gruunet_edu.evaluation.metrics import evaluate_instances

    _, truth = make_nuclei(seed, size=128, density=10.0, cluster_fraction=0.9, scale=(1.0, 1.0))
    probs = probs_from_classes(three_class(truth, CONTACT_RADIUS).astype(int))
    scores = evaluate_instances(truth, probabilities_to_instances(probs))
    assert scores["ap50"] >= 0.95 and scores["seg"] >= 0.85


def test_a_diagonal_seam_is_not_a_hole():
    # two nuclei pressed together along a diagonal: the one-pixel seam of boundary class is only
    # 8-connected, and must not be filled as if it were a hole in one interior
    size = 48
    yy, xx = np.mgrid[:size, :size]
    blob = (yy - 24) ** 2 + (xx - 24) ** 2 <= 18**2
    classes = np.zeros((size, size), int)
    classes[blob] = 1
    classes[blob & (yy == xx)] = 2  # the seam
    classes[blob & ~ndimage.binary_erosion(blob)] = 2
    labels = probabilities_to_instances(probs_from_classes(classes), seeds="interior")
    assert labels.max() == 2 and labels[30, 14] != labels[14, 30]
