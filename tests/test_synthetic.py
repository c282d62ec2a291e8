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
    _, labels = make_nuclei(seed, size=128, density=9.0, cluster_fraction=0.8, scale=(1.0, 1.0))
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
    sparse, _ = _mean_count_and_area(range(6), density=2.0, scale=(1.0, 1.0))
    dense, _ = _mean_count_and_area(range(6), density=8.0, scale=(1.0, 1.0))
    assert dense > 2.0 * sparse
    # expected count: density per 100 x 100 px (some are clipped or merged, none are invented)
    assert 0.6 * 8.0 * 1.6384 < dense < 1.2 * 8.0 * 1.6384


def test_radius_option_changes_nucleus_size():
    fixed = dict(mitotic_fraction=0.0, scale=(1.0, 1.0))
    _, small = _mean_count_and_area(range(4), radius=(5.0, 6.0), **fixed)
    _, large = _mean_count_and_area(range(4), radius=(12.0, 14.0), **fixed)
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
    images, labels = make_nuclei_sequence(0, frames=3, size=96, drift=2.0, scale=(1.0, 1.0))
    assert images.shape == labels.shape == (3, 96, 96)
    assert labels.dtype == np.uint16
    assert not np.array_equal(labels[0], labels[2])
    shared = set(np.unique(labels[0])) & set(np.unique(labels[1])) - {0}
    assert len(shared) > 0


def _nucleus_medians(image, labels):
    return np.array([np.median(image[labels == i]) for i in range(1, int(labels.max()) + 1)])


def test_brightness_spreads_tenfold_within_one_image_next_to_saturated_nuclei():
    image, labels = make_nuclei(0, size=384, noise=0.0, illumination=0.0, mitotic_fraction=0.08)
    level = _nucleus_medians(image, labels) - np.median(image[labels == 0])
    assert np.percentile(level, 90) > 4 * np.percentile(level, 10)
    assert level.min() < 0.15 and (level > 0.5).any()
    assert (image == 1.0).sum() > 20  # saturated (mitotic-like) nuclei


def test_size_scale_varies_from_image_to_image_beyond_the_old_range():
    medians = [np.median(np.bincount(make_nuclei(s, size=192)[1].ravel())[1:]) for s in range(8)]
    assert max(medians) > 2.0 * min(medians)
    assert max(medians) > np.pi * 16**2  # radius above 16 px (the former largest was 13)


# Dense clusters without noise, blur, texture, illumination, debris, mitotic or defocused nuclei:
# what touching nuclei look like, undisturbed.
FLAT_CLUSTERS = dict(
    noise=0.0,
    blur=0.0,
    texture=0.0,
    illumination=0.0,
    debris=0.0,
    background_variation=0.0,
    density=9.0,
    cluster_fraction=0.9,
    mitotic_fraction=0.0,
    defocus_fraction=0.0,
    size=128,
)


def test_touching_nuclei_are_separated_by_a_darker_seam():
    flat = FLAT_CLUSTERS
    image, labels = make_nuclei(1, seam=(0.3, 0.3), **flat)
    plain, labels2 = make_nuclei(1, seam=(0.0, 0.0), **flat)
    assert np.array_equal(labels, labels2)
    ratio = (image - 0.08)[labels > 0] / (plain - 0.08)[labels > 0]
    np.testing.assert_allclose(np.where(ratio < 0.85, ratio, 1.0), ratio, rtol=1e-3)
    np.testing.assert_allclose(np.where(ratio < 0.85, 0.7, ratio), ratio, rtol=1e-3)
    darker = np.zeros(labels.shape, bool)
    darker[labels > 0] = ratio < 0.85
    # every darker pixel touches another nucleus (4-neighbourhood), and there are such pixels
    padded = np.pad(labels.astype(int), 1)
    own = padded[1:-1, 1:-1]
    other = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (1, 2), (2, 1)):
        nb = padded[dy : dy + labels.shape[0], dx : dx + labels.shape[1]]
        other |= (nb > 0) & (nb != own)
    assert darker.sum() > 20 and np.array_equal(darker, other & (labels > 0))


def _touching_pairs_brightness_ratios(image, labels, background=0.08):
    """Brighter / dimmer peak of every pair of labels that touch (4-neighbourhood)."""
    peak = [0.0] + [image[labels == k].max() - background for k in range(1, labels.max() + 1)]
    pairs = set()
    for x, y in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        contact = (x > 0) & (y > 0) & (x != y)
        pairs |= {tuple(sorted(p)) for p in zip(x[contact], y[contact], strict=True)}
    return np.array([max(peak[i], peak[j]) / min(peak[i], peak[j]) for i, j in pairs])


def test_alike_neighbours_are_as_bright_as_the_nucleus_they_touch():
    from gruunet_edu.data.synthetic import ALIKE_RATIO

    flat = dict(FLAT_CLUSTERS, seam=(0.0, 0.0))
    ratios = {
        f: np.concatenate(
            [
                _touching_pairs_brightness_ratios(*make_nuclei(s, alike_fraction=f, **flat))
                for s in range(6)
            ]
        )
        for f in (0.0, 1.0)
    }
    assert len(ratios[0.0]) == len(ratios[1.0]) > 20  # the same nuclei, placed alike
    alike = {f: np.mean(r <= ALIKE_RATIO * 1.01) for f, r in ratios.items()}
    # pairs placed touching are within ALIKE_RATIO; siblings of one nucleus within its square
    assert alike[1.0] >= 0.8 and ratios[1.0].max() <= ALIKE_RATIO**2 * 1.01
    assert alike[0.0] <= 0.4 and np.median(ratios[0.0]) > 1.4


def test_alike_fraction_zero_draws_the_default_images():
    for seed in range(3):
        image, labels = make_nuclei(seed, size=96)
        image0, labels0 = make_nuclei(seed, size=96, alike_fraction=0.0)
        image1, labels1 = make_nuclei(seed, size=96, alike_fraction=1.0)
        assert np.array_equal(image, image0) and np.array_equal(labels, labels0)
        assert np.array_equal(labels, labels1)  # alike neighbours change brightness, not shapes
    with pytest.raises(ValueError, match="alike_fraction"):
        SyntheticConfig(alike_fraction=1.5)


def test_training_preset_is_the_default_task_with_alike_neighbours():
    from gruunet_edu.data.synthetic_config import TRAINING_ALIKE_FRACTION

    training = SyntheticConfig.preset("training")
    assert 0.0 < TRAINING_ALIKE_FRACTION <= 1.0
    assert training == SyntheticConfig(alike_fraction=TRAINING_ALIKE_FRACTION)
    assert SyntheticConfig().alike_fraction == 0.0  # the test sets' task


def test_uneven_illumination_scales_the_nuclei_smoothly():
    flat = dict(noise=0.0, debris=0.0, seam=(0.0, 0.0), size=160, density=8.0)
    lit, labels = make_nuclei(2, illumination=0.5, **flat)
    even, labels2 = make_nuclei(2, illumination=0.0, **flat)
    assert np.array_equal(labels, labels2)
    centres = ndimage.center_of_mass(labels > 0, labels, range(1, int(labels.max()) + 1))
    ratio = [lit[int(y), int(x)] / even[int(y), int(x)] for y, x in centres]
    assert np.ptp(ratio) > 0.2  # some nuclei lit more than others
    assert np.array_equal(make_nuclei(2, illumination=0.5, **flat)[0], lit)


def test_debris_adds_unlabelled_specks():
    image, labels = make_nuclei(3, density=0.0, debris=8.0, noise=0.0, size=128)
    clean, _ = make_nuclei(3, density=0.0, debris=0.0, noise=0.0, size=128)
    assert labels.max() == 0
    specks, n = ndimage.label(image - clean > 0.05)
    assert n >= 3 and (image - clean).max() > 0.3


@pytest.mark.parametrize("bits, dtype", [(8, np.uint8), (16, np.uint16)])
def test_bit_depth_gives_camera_counts(bits, dtype):
    image, labels = make_nuclei(4, size=128, bit_depth=bits, mitotic_fraction=0.4)
    float_image, float_labels = make_nuclei(4, size=128, mitotic_fraction=0.4)
    assert image.dtype == dtype and np.array_equal(labels, float_labels)
    saturated = float_image == 1.0
    assert saturated.any() and (image[saturated] == image.max()).all()
    if bits == 8:
        assert image.max() == 255
    else:
        assert image.max() > 4000  # more than 8 bits of range used
    assert _nucleus_medians(image, labels).mean() > np.median(image[labels == 0])
    with pytest.raises(ValueError, match="bit_depth"):
        SyntheticConfig(bit_depth=12)


def test_shift_preset_draws_from_other_ranges_than_training():
    from gruunet_edu.data.normalize import percentile_normalize

    shift, default = SyntheticConfig.preset("shift"), SyntheticConfig()
    assert shift.radius[0] * shift.scale[0] > default.radius[0] * default.scale[0]
    assert shift.illumination > default.illumination and shift.blur > default.blur
    assert shift.brightness[0] < default.brightness[0]
    areas, dim = [], []
    for seed in range(4):
        image, labels = make_nuclei(seed, shift, size=256)
        areas.extend(np.bincount(labels.ravel())[1:])
        level = _nucleus_medians(percentile_normalize(image), labels)
        dim.extend(level - np.median(percentile_normalize(image)[labels == 0]) < 0.2)
    assert 300 < np.median(areas) < 650  # radius about 12 px, as in the DSB 2018 images
    assert np.mean(dim) > 0.25  # many nuclei only a little above background after normalising


def test_shift_test_set_is_written_with_its_camera_dtypes(tmp_path):
    from gruunet_edu.data import read_dataset, shift_samples, synthetic_test_sets
    from gruunet_edu.data.sample_data import write_sample_dataset

    paths = write_sample_dataset(tmp_path, 1, 0, 0, size=64, n_shift=2)
    read, expected = read_dataset(paths["shift"]), shift_samples(2, 64)
    assert [s.image.dtype for s in expected] == [np.uint8, np.uint16]
    for got, want in zip(read, expected, strict=True):
        assert np.array_equal(got.image, want.image) and np.array_equal(got.labels, want.labels)
    sets = synthetic_test_sets(2, 64)
    assert set(sets) == {"synthetic", "shift"}
    assert not np.array_equal(sets["synthetic"][0].labels, sets["shift"][0].labels)


def test_nuclei_hidden_under_others_are_dropped_not_left_as_slivers():
    from gruunet_edu.data.synthetic import _cleanup

    ids = np.zeros((20, 20), np.int32)
    ids[2:12, 2:12] = 1  # drawn first: 100 px
    ids[2:12, 5:12] = 2  # drawn on top: 70 px, leaving 30 px (30 %) of nucleus 1 visible
    drawn = np.array([100, 70])
    kept = _cleanup(ids.copy(), min_area=15, drawn=drawn, min_visible=0.5)
    assert set(np.unique(kept)) == {0, 2}  # the sliver is gone, from image and labels alike
    kept = _cleanup(ids.copy(), min_area=15, drawn=drawn, min_visible=0.25)
    assert set(np.unique(kept)) == {0, 1, 2}


def test_sample_nuclei_are_large_enough_for_the_post_processing():
    """No label away from the image border is smaller than what post-processing keeps (a nucleus
    the post-processing always deletes would be a guaranteed miss, not a test of the network)."""
    from gruunet_edu.evaluation.postprocess import MIN_SIZE

    inner = small = 0
    for i in range(24):
        _, labels = make_nuclei((7, i), SyntheticConfig(scale=(0.8, 0.8)), size=128)
        for j, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None or any(s.start == 0 or s.stop == 128 for s in box):
                continue  # cut by the image border
            inner += 1
            small += int((labels[box] == j).sum() < MIN_SIZE)
    assert inner > 100 and small / inner < 0.02
