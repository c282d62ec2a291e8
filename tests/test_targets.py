"""Targets from instance labels: foreground, three classes, weights, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gruunet_edu.data import (
    BACKGROUND,
    BOUNDARY,
    CONTACT_RADIUS,
    INTERIOR,
    boundary_weights,
    contacts,
    foreground,
    make_nuclei,
    make_target,
    percentile_normalize,
    percentile_range,
    three_class,
)


def _touching_pair() -> np.ndarray:
    labels = np.zeros((20, 30), np.uint16)
    labels[4:16, 3:15] = 1
    labels[4:16, 15:27] = 2  # shares an edge with nucleus 1
    return labels


def _interiors_are_separated(labels: np.ndarray, target: np.ndarray) -> bool:
    """No 4-connected path of interior pixels joins two different nuclei."""
    components, _ = ndimage.label(target == INTERIOR)  # 4-connectivity
    for c in range(1, components.max() + 1):
        ids = np.unique(labels[components == c])
        if ids.size != 1 or ids[0] == 0:
            return False
    return True


def test_foreground_and_three_class_values():
    labels = _touching_pair()
    assert foreground(labels).dtype == np.uint8
    assert np.array_equal(foreground(labels), (labels > 0).astype(np.uint8))
    target = three_class(labels)
    assert set(np.unique(target)) == {BACKGROUND, INTERIOR, BOUNDARY}
    assert (target[labels == 0] == BACKGROUND).all()
    # both sides of the contact line are boundary, the centres are interior
    assert (target[4:16, 14] == BOUNDARY).all() and (target[4:16, 15] == BOUNDARY).all()
    assert target[10, 8] == INTERIOR and target[10, 21] == INTERIOR
    # the outer rim is boundary too
    assert (target[4, 3:27] == BOUNDARY).all()


@pytest.mark.parametrize("seed", range(3))
def test_boundary_separates_every_pair_of_touching_nuclei(seed):
    # one size scale: a large per-image scale would leave too few nuclei to touch
    _, labels = make_nuclei(seed, size=128, density=10.0, cluster_fraction=0.9, scale=(1.0, 1.0))
    touching = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
    assert touching.any(), "the fixture should contain touching nuclei"
    target = three_class(labels)
    assert _interiors_are_separated(labels, target)
    # labelling the interior gives at least one seed per nucleus (a thin neck may split one)
    _, n_seeds = ndimage.label(target == INTERIOR)
    assert n_seeds >= np.unique(labels[target == INTERIOR]).size > 0.8 * labels.max()


def test_contacts_are_the_pixels_within_the_radius_of_another_nucleus():
    labels = _touching_pair()  # nucleus 1 in columns 3-14, nucleus 2 in 15-26, rows 4-15
    near = contacts(labels, 3)
    assert (near[4:16, 12:18]).all()  # three columns on either side of the contact line
    assert not near[:, :12].any() and not near[:, 18:].any()
    assert not near[labels == 0].any()
    # Euclidean: at the corner row only the pixels within a radius of 3 px count
    rows, cols = np.nonzero(near)
    assert set(cols.tolist()) == set(range(12, 18))
    assert not contacts(labels, 0).any()
    with pytest.raises(ValueError, match="radius"):
        contacts(labels, -1)
    # a lone nucleus and nuclei farther apart than the radius have no contacts
    apart = np.zeros((20, 40), np.uint16)
    apart[4:16, 3:15], apart[4:16, 19:31] = 1, 2  # 4 background columns between them
    assert not contacts(apart, 3).any()
    assert contacts(apart, 5).any()


@pytest.mark.parametrize("seed", range(3))
def test_contact_radius_widens_the_boundary_only_where_nuclei_touch(seed):
    _, labels = make_nuclei(seed, size=128, density=10.0, cluster_fraction=0.9, scale=(1.0, 1.0))
    plain, wide = three_class(labels), three_class(labels, CONTACT_RADIUS)
    assert np.array_equal(plain > 0, wide > 0)  # same foreground
    assert ((wide == BOUNDARY) >= (plain == BOUNDARY)).all()  # boundary only grows
    changed = (wide == BOUNDARY) & (plain == INTERIOR)
    assert changed.any() and (changed <= contacts(labels, CONTACT_RADIUS)).all()
    assert _interiors_are_separated(labels, wide)
    pieces, _ = ndimage.label(wide == INTERIOR)
    for i in range(1, int(labels.max()) + 1):
        own = labels == i
        if not own.any():
            continue
        # an interior to grow back from for every nucleus; where widened, exactly one piece
        n_pieces = np.unique(pieces[own & (wide == INTERIOR)]).size
        assert n_pieces >= 1
        if np.array_equal(wide[own], plain[own]):
            continue  # no contact, or squeezed: the one-pixel rim
        assert n_pieces == 1
        # widened: every interior pixel lies more than r px from any pixel of another nucleus
        others = (labels > 0) & ~own
        interior = own & (wide == INTERIOR)
        assert ndimage.distance_transform_edt(~others)[interior].min() > CONTACT_RADIUS


def test_a_nucleus_squeezed_between_others_keeps_its_interior():
    labels = np.zeros((20, 40), np.uint16)
    labels[2:18, 2:17] = 1
    labels[6:14, 17:23] = 2  # 6 px wide: the band of r = 3 would cover all of it
    labels[2:18, 23:38] = 3
    wide = three_class(labels, 3)
    assert np.array_equal(wide[labels == 2], three_class(labels)[labels == 2])
    assert (wide[labels == 2] == INTERIOR).any()
    assert (wide[6:14, 14:17] == BOUNDARY).all()  # the big nuclei's sides still widened
    assert (wide[6:14, 23:26] == BOUNDARY).all()


def test_foreground_alone_merges_touching_nuclei():
    labels = _touching_pair()
    merged, n = ndimage.label(foreground(labels))
    assert n == 1  # why the boundary class exists
    _, n_interior = ndimage.label(three_class(labels) == INTERIOR)
    assert n_interior == 2


def test_make_target_kinds_and_errors():
    labels = _touching_pair()
    assert np.array_equal(make_target(labels, "foreground"), foreground(labels))
    assert np.array_equal(make_target(labels, "labels"), labels)
    assert np.array_equal(make_target(labels, "three_class", 2), three_class(labels, 2))
    with pytest.raises(ValueError, match="unknown target"):
        make_target(labels, "four_class")
    with pytest.raises(ValueError, match="integers"):
        three_class(labels.astype(np.float32))
    with pytest.raises(ValueError, match="2D"):
        three_class(labels[None])


def test_boundary_weights_highest_between_touching_nuclei():
    labels = np.zeros((40, 60), np.uint16)
    labels[10:30, 5:25] = 1
    labels[10:30, 27:47] = 2  # a 2 px gap at columns 25, 26
    w = boundary_weights(labels, w0=10.0, sigma=5.0)
    assert w.dtype == np.float32 and w.shape == labels.shape
    assert w.min() >= 1.0
    assert w[20, 25] > 8.0  # in the gap: d1 + d2 small
    assert w[20, 25] > w[2, 55]
    single = np.zeros_like(labels)
    single[10:20, 10:20] = 1
    assert np.allclose(boundary_weights(single), 1.0)


def test_percentile_normalize_maps_percentiles_to_0_and_1():
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 10.0, (64, 64)).astype(np.float32)
    image[0, 0] = 1e6  # a hot pixel does not squash the range
    out = percentile_normalize(image)
    assert out.dtype == np.float32
    assert np.isclose(np.percentile(out, 1.0), 0.0, atol=1e-4)
    assert np.isclose(np.percentile(out, 99.8), 1.0, atol=1e-3)
    lo, hi = percentile_range(image)
    assert np.allclose(out, (image - lo) / (hi - lo + 1e-6))
    assert np.array_equal(percentile_normalize(np.full((8, 8), 5.0)), np.zeros((8, 8)))
    with pytest.raises(ValueError):
        percentile_normalize(image, low=50, high=10)


def test_percentile_normalize_clip_and_per_channel():
    rng = np.random.default_rng(1)
    dim = rng.normal(10.0, 1.0, (32, 32)).astype(np.float32)
    stack = np.stack([dim, 100.0 * dim])  # (2, H, W): channels 100x apart
    clipped = percentile_normalize(dim, clip=True)
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    assert np.allclose(clipped, np.clip(percentile_normalize(dim), 0.0, 1.0))
    per_channel = percentile_normalize(stack, per_channel=True)
    assert per_channel.shape == stack.shape and per_channel.dtype == np.float32
    assert np.allclose(per_channel[0], per_channel[1], atol=1e-4)  # each on its own range
    joint = percentile_normalize(stack)  # one range for both channels
    assert joint[0].max() < 0.1 < joint[1].mean()
