"""Datasets and loaders: item format, normalisation, targets after augmentation, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from gruunet_edu.data import (
    CONTACT_RADIUS,
    NucleiDataset,
    Sample,
    SyntheticNucleiDataset,
    make_loader,
    percentile_normalize,
    synthetic_samples,
    three_class,
)


@pytest.fixture(scope="module")
def pooled() -> SyntheticNucleiDataset:
    return SyntheticNucleiDataset(n=16, size=96, seed=1, crop=48, augment=True, pool=4)


def test_item_format(pooled):
    image, target = pooled[0]
    assert image.dtype == torch.float32 and image.shape == (1, 48, 48)
    assert target.dtype == torch.int64 and target.shape == (48, 48)
    assert set(target.unique().tolist()) <= {0, 1, 2}
    assert len(pooled) == 16


def test_items_are_deterministic_and_vary_with_index_and_seed(pooled):
    a, b = pooled[3], pooled[3]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(pooled[3][0], pooled[7][0])  # same pooled image, other crop
    other = SyntheticNucleiDataset(n=16, size=96, seed=2, crop=48, augment=True, pool=4)
    assert not torch.equal(other[3][0], a[0])


def test_whole_items_are_normalised_images_and_three_class_targets():
    samples = synthetic_samples(2, 64, seed=0)
    dataset = NucleiDataset(samples)
    for (image, target), sample in zip(dataset, samples, strict=True):
        expected = percentile_normalize(sample.image)
        assert torch.allclose(image[0], torch.from_numpy(expected), atol=1e-5)
        assert np.array_equal(target.numpy(), three_class(sample.labels, CONTACT_RADIUS))
    textbook = NucleiDataset(samples, contact_radius=0)  # notebook 00's one-pixel boundary
    for (_, target), sample in zip(textbook, samples, strict=True):
        assert np.array_equal(target.numpy(), three_class(sample.labels))


def test_crops_share_the_whole_image_normalisation():
    sample = synthetic_samples(1, 96, seed=0)[0]
    dataset = NucleiDataset([sample], crop=32, length=6)
    whole = percentile_normalize(sample.image)
    for image, _ in dataset:
        windows = np.lib.stride_tricks.sliding_window_view(whole, (32, 32))  # (65, 65, 32, 32)
        error = np.abs(windows - image[0].numpy()).max(axis=(2, 3))
        assert error.min() < 1e-5, "every crop is a window of the normalised image"


def test_target_is_computed_after_augmentation():
    kwargs = dict(n=6, size=64, seed=3, crop=40, augment=True, pool=2)
    classes = SyntheticNucleiDataset(target="three_class", **kwargs)
    labels = SyntheticNucleiDataset(target="labels", **kwargs)
    for i in range(len(classes)):
        image_c, target = classes[i]
        image_l, instance = labels[i]
        assert torch.equal(image_c, image_l)  # same draws
        assert np.array_equal(target.numpy(), three_class(instance.numpy(), CONTACT_RADIUS))


def test_pool_holds_the_first_images_of_the_on_the_fly_dataset():
    lazy = SyntheticNucleiDataset(n=5, size=64, seed=4)
    pooled = SyntheticNucleiDataset(n=5, size=64, seed=4, pool=2)
    for i in range(5):
        assert torch.equal(pooled[i][1], lazy[i % 2][1])
    assert not torch.equal(lazy[2][1], lazy[0][1])
    assert np.array_equal(lazy.sample(1).labels, synthetic_samples(2, 64, seed=4)[1].labels)


def test_synthetic_options_pass_through_and_splits_differ():
    dense = SyntheticNucleiDataset(n=1, size=96, seed=0, density=10.0, scale=(1, 1)).sample(0)
    sparse = SyntheticNucleiDataset(n=1, size=96, seed=0, density=1.0, scale=(1, 1)).sample(0)
    assert dense.labels.max() > sparse.labels.max()
    train = synthetic_samples(1, 64, seed=0, split="train")[0]
    val = synthetic_samples(1, 64, seed=0, split="val")[0]
    assert not np.array_equal(train.image, val.image)
    with pytest.raises(ValueError, match="unknown split"):
        synthetic_samples(1, 64, split="holdout")


def test_small_images_are_padded_to_the_crop_and_weights_returned():
    labels = np.zeros((20, 30), np.uint16)
    labels[5:15, 5:15] = 1
    labels[5:15, 15:25] = 2
    sample = Sample(labels.astype(np.float32), labels, "small")
    image, target, weights = NucleiDataset([sample], crop=(32, 40), weights=True)[0]
    assert image.shape == (1, 32, 40) and target.shape == weights.shape == (32, 40)
    assert (target[20:, :] == 0).all() and (target[:, 30:] == 0).all()
    assert weights.dtype == torch.float32 and weights.min() >= 1.0
    assert weights[10, 15] > weights[30, 38]  # heavier between the touching nuclei


def test_dataset_argument_checks():
    samples = synthetic_samples(1, 32)
    with pytest.raises(ValueError, match="unknown target"):
        NucleiDataset(samples, target="four_class")
    with pytest.raises(IndexError):
        NucleiDataset(samples)[1]
    with pytest.raises(ValueError):
        SyntheticNucleiDataset(n=2, size=32, pool=0)


def _batches(loader, epochs=2):
    return [[t.clone() for t in batch] for _ in range(epochs) for batch in loader]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        all(torch.equal(x, y) for x, y in zip(p, q, strict=True)) for p, q in zip(a, b, strict=True)
    )


def test_loader_is_deterministic_per_seed_with_and_without_workers():
    dataset = SyntheticNucleiDataset(n=12, size=64, seed=0, crop=32, augment=True, pool=3)
    serial = _batches(make_loader(dataset, batch_size=4, seed=5, num_workers=0))
    again = _batches(make_loader(dataset, batch_size=4, seed=5, num_workers=0))
    workers = _batches(make_loader(dataset, batch_size=4, seed=5, num_workers=2))
    other = _batches(make_loader(dataset, batch_size=4, seed=6, num_workers=0))
    assert len(serial) == 6 and serial[0][0].shape == (4, 1, 32, 32)
    assert _same(serial, again)
    assert _same(serial, workers)
    assert not _same(serial, other)
    assert not _same(serial[:3], serial[3:])  # the second epoch sees new crops and order


def test_loader_without_shuffle_keeps_order_and_plain_datasets_work():
    dataset = NucleiDataset(synthetic_samples(4, 32, seed=1))
    first = next(iter(make_loader(dataset, batch_size=4, shuffle=False)))
    assert torch.equal(first[1], torch.stack([dataset[i][1] for i in range(4)]))
    plain = TensorDataset(torch.arange(10))
    a = [b[0].tolist() for b in make_loader(plain, batch_size=5, seed=1)]
    b = [b[0].tolist() for b in make_loader(plain, batch_size=5, seed=1)]
    assert a == b and sorted(sum(a, [])) == list(range(10))
