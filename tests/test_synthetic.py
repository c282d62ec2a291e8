"""Synthetic nuclei: determinism, label properties and the effect of the options."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gruunet_edu.data import SyntheticConfig, make_nuclei, make_nuclei_sequence


def _mean_count_and_area(seeds, **options):
    counts, areas = [], []
    for seed in seeds:
        _, labels = make_nuclei(seed, size=128, **options)
        counts.append(int(labels.max()))
        areas.extend(np.bincount(labels.ravel())[1:].tolist())
    return np.mean(counts), np.median(areas)


def test_image_and_labels_types_and_ranges():
    image, labels = make_nuclei(0, size=(96, 128))
    assert image.shape == labels.shape == (96, 128)
    assert image.dtype == np.float32 and labels.dtype == np.uint16
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
    # consecutive ids 1..N
    assert set(np.unique(labels)) == set(range(int(labels.max()) + 1))


def test_same_seed_same_sample_different_seed_different_sample():
    a_img, a_lab = make_nuclei(3, size=96)
    b_img, b_lab = make_nuclei(3, size=96)
    c_img, c_lab = make_nuclei(4, size=96)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)
    assert not np.array_equal(a_lab, c_lab)
    # a tuple seed is a separate stream
    assert not np.array_equal(make_nuclei((3, 1), size=96)[0], a_img)


@pytest.mark.parametrize("seed", range(4))
def test_every_label_is_one_connected_component_of_min_area(seed):
    _, labels = make_nuclei(seed, size=128, density=9.0, cluster_fraction=0.8)
    assert labels.max() > 5
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        mask = labels[sl] == i
        _, pieces = ndimage.label(mask)  # 4-connectivity
        assert pieces == 1, f"label {i} has {pieces} pieces"
        assert mask.sum() >= SyntheticConfig().min_area


def test_nuclei_are_brighter_than_background():
    image, labels = make_nuclei(1, size=128, noise=0.5)
    assert image[labels > 0].mean() > image[labels == 0].mean() + 0.15


def test_density_option_changes_the_number_of_nuclei():
    sparse, _ = _mean_count_and_area(range(6), density=2.0)
    dense, _ = _mean_count_and_area(range(6), density=8.0)
    assert dense > 2.0 * sparse
    # expected count: density per 100 x 100 px (some are clipped or merged, none are invented)
    assert 0.6 * 8.0 * 1.6384 < dense < 1.2 * 8.0 * 1.6384


def test_radius_option_changes_nucleus_size():
    _, small = _mean_count_and_area(range(4), radius=(5.0, 6.0), mitotic_fraction=0.0)
    _, large = _mean_count_and_area(range(4), radius=(12.0, 14.0), mitotic_fraction=0.0)
    assert large > 3.0 * small
    assert 0.5 * np.pi * 5.5**2 < small < 1.5 * np.pi * 5.5**2


def test_noise_option_changes_the_noise():
    clean, labels = make_nuclei(2, size=128, noise=0.0)
    noisy, labels2 = make_nuclei(2, size=128, noise=2.0)
    assert np.array_equal(labels, labels2)  # noise does not move the nuclei
    residual = noisy - clean
    assert residual.std() > 0.01
    assert np.abs(make_nuclei(2, size=128, noise=0.5)[0] - clean).std() < residual.std()


def test_size_option_and_presets():
    image, labels = make_nuclei(0, SyntheticConfig.preset("hard"), size=(64, 80))
    assert image.shape == (64, 80)
    # the presets are what their names say, and overrides reach them
    easy, default, hard = (SyntheticConfig.preset(n) for n in ("easy", "default", "hard"))
    assert easy == SyntheticConfig.easy() and hard == SyntheticConfig.hard()
    assert default == SyntheticConfig()
    assert easy.density < default.density < hard.density
    assert easy.noise < hard.noise
    assert SyntheticConfig.preset("hard", noise=0.0).noise == 0.0
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        SyntheticConfig.preset("nope")
    with pytest.raises(ValueError):
        SyntheticConfig(radius=(5.0, 2.0))


def test_sequence_keeps_ids_and_moves_nuclei():
    images, labels = make_nuclei_sequence(0, frames=3, size=96, drift=2.0)
    assert images.shape == labels.shape == (3, 96, 96)
    assert labels.dtype == np.uint16
    assert not np.array_equal(labels[0], labels[2])
    shared = set(np.unique(labels[0])) & set(np.unique(labels[1])) - {0}
    assert len(shared) > 0
