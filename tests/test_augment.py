"""Augmentation: image and target move together, labels stay integer, intensity only on images."""

from __future__ import annotations

import numpy as np
import pytest

from gruunet_edu.data import AugmentConfig, Augmenter, make_nuclei


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return make_nuclei(5, size=(64, 64), density=8.0)[1]


def _one_hot(labels: np.ndarray) -> np.ndarray:
    """The label map as an image with one channel per label (K, H, W) float32."""
    return (labels[None] == np.arange(labels.max() + 1)[:, None, None]).astype(np.float32)


def _check_aligned(image: np.ndarray, target: np.ndarray) -> float:
    """Where the linearly interpolated one-hot image is 1 in channel k, the target must be k.

    (Channel k is 1 only where all interpolation neighbours have label k, so nearest-neighbour
    sampling of the labels must give k there.) Returns the fraction of such pixels.
    """
    sure = image.max(0) > 1.0 - 1e-4
    assert np.array_equal(target[sure], image.argmax(0)[sure])
    return sure.mean()


def test_flips_and_rotations_are_exact_and_aligned(labels):
    augment = Augmenter(seed=0, config=AugmentConfig.none(), flips=True, rot90=True)
    seen = set()
    for _ in range(12):
        image, target = augment(labels.astype(np.float32), labels)
        assert np.array_equal(image, target.astype(np.float32))
        assert target.dtype == labels.dtype
        assert sorted(np.bincount(target.ravel())) == sorted(np.bincount(labels.ravel()))
        seen.add(target.tobytes())
    assert len(seen) > 3  # several different orientations were drawn


@pytest.mark.parametrize("warp", ["affine", "elastic", "both"])
def test_warps_keep_image_and_labels_aligned(labels, warp):
    config = AugmentConfig.geometric(
        flips=False,
        rot90=False,
        affine_p=1.0 if warp in ("affine", "both") else 0.0,
        elastic_p=1.0 if warp in ("elastic", "both") else 0.0,
        rotation=20.0,
        elastic_alpha=4.0,
    )
    augment = Augmenter(seed=1, config=config)
    image, target = augment(_one_hot(labels), labels)
    assert target.dtype == labels.dtype and target.shape == labels.shape
    assert not np.array_equal(target, labels)  # something moved
    assert set(np.unique(target)) <= set(np.unique(labels))  # nearest neighbour: no new values
    assert _check_aligned(image, target) > 0.8


def test_multichannel_image_and_float_target_follow_the_same_warp(labels):
    augment = Augmenter(seed=2, config=AugmentConfig.geometric(affine_p=1.0, elastic_p=1.0))
    stack = np.stack([labels, 2 * labels]).astype(np.float32)  # (2, H, W)
    image, target = augment(stack, labels.astype(np.float32))
    assert image.shape == stack.shape and target.dtype == np.float32
    assert np.allclose(image[1], 2 * image[0], atol=1e-4)
    assert np.allclose(image[0], target, atol=1e-4)  # linear warp of the same field


def test_non_square_arrays_keep_their_shape(labels):
    rect = labels[:, :40]
    augment = Augmenter(seed=3)
    for _ in range(8):
        image, target = augment(rect.astype(np.float32), rect)
        assert image.shape == target.shape == rect.shape


def test_intensity_changes_image_only_and_keeps_order(labels):
    rng = np.random.default_rng(0)
    image = rng.random(labels.shape, dtype=np.float32)
    augment = Augmenter(seed=4, config=AugmentConfig.none(), intensity_p=1.0)
    out, target = augment(image, labels)
    assert np.array_equal(target, labels)
    assert not np.allclose(out, image)
    order = np.argsort(image, axis=None)
    assert (np.diff(out.ravel()[order]) >= -1e-6).all()  # monotone increasing map


def test_own_range_renormalises_a_crop_as_a_small_dim_image_would_be(labels):
    from gruunet_edu.data.normalize import percentile_normalize

    rng = np.random.default_rng(1)
    # a crop of a larger image, normalised on that image: background near 0, dim nuclei at 0.15
    image = (0.02 * rng.standard_normal(labels.shape) + 0.15 * (labels > 0)).astype(np.float32)
    augment = Augmenter(seed=5, config=AugmentConfig.none(), own_range_p=1.0)
    out, target = augment(image, labels)
    assert np.array_equal(target, labels)
    np.testing.assert_allclose(out, percentile_normalize(image), atol=1e-6)
    assert np.percentile(out, 99.8) == pytest.approx(1.0, abs=1e-4)  # dim nuclei now reach 1
    with pytest.raises(ValueError, match="own_range_p"):
        AugmentConfig(own_range_p=1.5)


def test_same_seed_same_augmentation_different_seed_different(labels):
    image = _one_hot(labels)
    config = AugmentConfig.geometric()
    a = Augmenter(seed=7, config=config)(image, labels)
    b = Augmenter(seed=7, config=config)(image, labels)
    c = [Augmenter(seed=s, config=config)(image, labels) for s in (8, 9, 10)]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert any(not np.array_equal(a[0], other[0]) for other in c)
    for out, target in (a, *c):
        assert _check_aligned(out, target) > 0.8


def test_identity_config_and_input_checks(labels):
    image = labels.astype(np.float32) * 0.1
    out, target = Augmenter(config=AugmentConfig.none())(image, labels)
    assert np.array_equal(out, image) and np.array_equal(target, labels)
    with pytest.raises(ValueError, match="differ"):
        Augmenter()(image[:10], labels)
    with pytest.raises(ValueError):
        AugmentConfig(affine_p=2.0)


def test_intensity_range_ignores_a_few_saturated_pixels():
    # a dim image with one saturated speck: gamma and contrast act on the dim nuclei, whose
    # percentile range is not stretched by the speck
    rng = np.random.default_rng(1)
    image = 0.05 + 0.01 * rng.random((64, 64), dtype=np.float32)
    image[20:30, 20:30] = 0.2  # a dim nucleus
    image[0, 0] = 50.0  # one saturated speck
    config = AugmentConfig.none().replace(
        intensity_p=1.0, gamma=(0.5, 0.5), intensity_scale=(1.0, 1.0), intensity_offset=(0, 0)
    )
    out, _ = Augmenter(seed=0, config=config)(image, np.zeros((64, 64), np.uint8))
    lo, hi = np.percentile(image, [1.0, 99.8])
    u = (0.2 - lo) / (hi - lo)
    expected = lo + (hi - lo) * np.sqrt(u)  # gamma 0.5 on the percentile range
    np.testing.assert_allclose(out[25, 25], expected, rtol=1e-4)
    assert out[0, 0] > out[25, 25]  # the speck stays the brightest (continued linearly)


def test_contrast_draws_span_dim_to_bright():
    config = AugmentConfig.none().replace(
        intensity_p=1.0, gamma=(1.0, 1.0), intensity_offset=(0, 0)
    )
    image = np.linspace(0.0, 1.0, 1000, dtype=np.float32).reshape(40, 25)
    target = np.zeros(image.shape, np.uint8)
    augment = Augmenter(seed=3, config=config)
    tops = [augment(image, target)[0].max() for _ in range(60)]
    assert min(tops) < 0.6 < 1.15 < max(tops)  # dimmer, as under a saturated object, and brighter
    with pytest.raises(ValueError, match="percentiles"):
        AugmentConfig(percentiles=(50.0, 10.0))
