"""Readers: the three layouts, the sample data round trip, and a clear error for every problem."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from gruunet_edu.data import (
    DataFormatError,
    SyntheticConfig,
    detect_layout,
    read_ctc,
    read_dataset,
    read_dsb,
    read_pairs,
    synthetic_samples,
    write_sample_dataset,
)


def _labels(shape=(32, 40)) -> np.ndarray:
    labels = np.zeros(shape, np.uint16)
    labels[4:12, 4:12] = 1
    labels[4:12, 12:20] = 2  # touching nucleus 1
    labels[20:28, 25:35] = 3
    return labels


def _image(labels: np.ndarray) -> np.ndarray:
    return (100 + 1000 * (labels > 0)).astype(np.uint16)


def _pairs(root: Path, n: int = 2, suffix: str = ".tif") -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        labels = _labels()
        if suffix == ".tif":
            tifffile.imwrite(root / "images" / f"cell{i}.tif", _image(labels))
            tifffile.imwrite(root / "masks" / f"cell{i}.tif", labels)
        else:
            iio.imwrite(root / "images" / f"cell{i}.png", (_image(labels) // 8).astype(np.uint8))
            iio.imwrite(root / "masks" / f"cell{i}_mask.png", labels.astype(np.uint8))
    return root


def _ctc(root: Path, frames=3, annotated=(0, 2)) -> Path:
    (root / "01").mkdir(parents=True)
    (root / "01_GT" / "SEG").mkdir(parents=True)
    (root / "01_GT" / "TRA").mkdir()
    for t in range(frames):
        labels = np.roll(_labels(), t, axis=1)
        tifffile.imwrite(root / "01" / f"t{t:03d}.tif", _image(labels))
        if t in annotated:
            tifffile.imwrite(root / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", labels)
    return root


def _dsb(root: Path, ids=("a1b2", "c3d4")) -> Path:
    for k, sample_id in enumerate(ids):
        (root / sample_id / "images").mkdir(parents=True)
        (root / sample_id / "masks").mkdir()
        labels = np.roll(_labels(), k, axis=0)
        grey = (_image(labels) // 8).astype(np.uint8)
        rgba = np.stack([grey, grey, grey, np.full_like(grey, 255)], -1)  # like the DSB PNGs
        iio.imwrite(root / sample_id / "images" / f"{sample_id}.png", rgba)
        for i in range(1, labels.max() + 1):
            mask = np.where(labels == i, 255, 0).astype(np.uint8)
            iio.imwrite(root / sample_id / "masks" / f"m{i:02d}.png", mask)
    return root


# --- round trip and layouts ---


def test_sample_data_round_trip(tmp_path):
    paths = write_sample_dataset(tmp_path / "sample", n_train=3, n_val=2, n_test=1, size=96, seed=4)
    assert set(paths) == {"root", "train", "val", "test"}
    assert sorted(p.name for p in (paths["train"] / "images").iterdir()) == [
        "000.tif",
        "001.tif",
        "002.tif",
    ]
    # training data are drawn like the course trains (alike neighbours), the test split like
    # the benchmarks' test set (the default task)
    training, default = SyntheticConfig.training(), SyntheticConfig()
    for split, n, config in (("train", 3, training), ("val", 2, training), ("test", 1, default)):
        read = read_dataset(paths[split])
        expected = synthetic_samples(n, 96, seed=4, split=split, config=config)
        assert [s.name for s in read] == [f"{i:03d}" for i in range(n)]
        for got, want in zip(read, expected, strict=True):
            assert got.image.dtype == np.float32 and got.labels.dtype == np.uint16
            assert np.array_equal(got.image, want.image)
            assert np.array_equal(got.labels, want.labels)
    # the splits are different images
    assert not np.array_equal(
        read_pairs(paths["train"])[0].image, read_pairs(paths["val"])[0].image
    )


def test_rewriting_sample_data_leaves_no_stale_pairs(tmp_path):
    write_sample_dataset(tmp_path, n_train=3, n_val=0, n_test=0, size=96)
    paths = write_sample_dataset(tmp_path, n_train=2, n_val=0, n_test=0, size=96)
    assert set(paths) == {"root", "train"}
    assert len(read_pairs(paths["train"])) == 2


def test_read_pairs_tiff(tmp_path):
    samples = read_pairs(_pairs(tmp_path))
    assert [s.name for s in samples] == ["cell0", "cell1"]
    assert np.array_equal(samples[0].labels, _labels())
    assert samples[0].image.shape == (32, 40)


def test_read_pairs_png_with_mask_suffix_and_binary_masks(tmp_path):
    samples = read_dataset(_pairs(tmp_path, suffix=".png"))
    assert np.array_equal(samples[1].labels, _labels())
    # a binary mask becomes one label per connected component
    binary = (_labels() > 0).astype(np.uint8) * 255
    iio.imwrite(tmp_path / "masks" / "cell1_mask.png", binary)
    labels = read_pairs(tmp_path)[1].labels
    assert labels.max() == 2  # nuclei 1 and 2 touch: one component; nucleus 3 the other
    assert np.array_equal(labels > 0, _labels() > 0)


def test_read_ctc_only_annotated_frames(tmp_path):
    samples = read_dataset(_ctc(tmp_path), layout="auto")
    assert detect_layout(tmp_path) == "ctc"
    assert [s.name for s in samples] == ["01/t000", "01/t002"]
    assert np.array_equal(samples[1].labels, np.roll(_labels(), 2, axis=1))
    assert np.array_equal(samples[1].image, _image(samples[1].labels))


def test_read_dsb_instance_labels_from_binary_masks(tmp_path):
    samples = read_dataset(_dsb(tmp_path))
    assert detect_layout(tmp_path) == "dsb"
    assert [s.name for s in samples] == ["a1b2", "c3d4"]
    for k, sample in enumerate(samples):
        assert sample.image.ndim == 2  # RGBA -> grey
        assert sample.labels.dtype == np.uint16
        assert np.array_equal(sample.labels, np.roll(_labels(), k, axis=0))


# --- errors: each names the offending file and what was expected ---


def _raises(match: str | Path, fn, *args):
    with pytest.raises(DataFormatError) as info:
        fn(*args)
    assert str(match) in str(info.value), str(info.value)
    return str(info.value)


def test_data_format_error_is_a_value_error():
    assert issubclass(DataFormatError, ValueError)


def test_missing_folders(tmp_path):
    _raises(tmp_path / "nope", read_pairs, tmp_path / "nope")
    (tmp_path / "images").mkdir()
    message = _raises(tmp_path / "masks", read_pairs, tmp_path)
    assert "folder not found" in message
    _raises(tmp_path / "nope", read_dataset, tmp_path / "nope")


def test_image_without_mask_and_mask_without_image(tmp_path):
    root = _pairs(tmp_path)
    (root / "masks" / "cell1.tif").unlink()
    message = _raises("cell1.tif", read_pairs, root)
    assert "without a mask" in message
    tifffile.imwrite(root / "masks" / "cell1.tif", _labels())
    tifffile.imwrite(root / "masks" / "extra.tif", _labels())
    assert "without an image" in _raises("extra.tif", read_pairs, root)


def test_mask_of_another_size(tmp_path):
    root = _pairs(tmp_path)
    tifffile.imwrite(root / "masks" / "cell0.tif", _labels((32, 41)))
    message = _raises(root / "masks" / "cell0.tif", read_pairs, root)
    assert "(32, 41)" in message and "(32, 40)" in message


def test_empty_mask(tmp_path):
    root = _pairs(tmp_path)
    tifffile.imwrite(root / "masks" / "cell1.tif", np.zeros((32, 40), np.uint16))
    assert "empty mask" in _raises(root / "masks" / "cell1.tif", read_pairs, root)
    assert len(read_dataset(root, allow_empty=True)) == 2


def test_non_integer_mask(tmp_path):
    root = _pairs(tmp_path)
    tifffile.imwrite(root / "masks" / "cell0.tif", _labels().astype(np.float32) * 0.5)
    assert "integer" in _raises(root / "masks" / "cell0.tif", read_pairs, root)
    # floats holding whole numbers are accepted
    tifffile.imwrite(root / "masks" / "cell0.tif", _labels().astype(np.float32))
    assert np.array_equal(read_pairs(root)[0].labels, _labels())


def test_unreadable_files(tmp_path):
    root = _pairs(tmp_path)
    (root / "images" / "cell0.tif").write_bytes(b"this is not a TIFF file")
    assert "cannot read" in _raises(root / "images" / "cell0.tif", read_pairs, root)
    root = _pairs(tmp_path / "png", suffix=".png")
    (root / "masks" / "cell0_mask.png").write_bytes(b"\x89PNG broken")
    _raises(root / "masks" / "cell0_mask.png", read_pairs, root)


def test_ctc_errors(tmp_path):
    root = _ctc(tmp_path / "a")
    (root / "01" / "t002.tif").unlink()
    assert "without a frame" in _raises("man_seg002.tif", read_ctc, root)
    root = _ctc(tmp_path / "b")
    for p in (root / "01_GT" / "SEG").iterdir():
        p.unlink()
    (root / "01_GT" / "SEG").rmdir()
    _raises(root / "01_GT" / "SEG", read_ctc, root)
    (tmp_path / "c").mkdir()
    _raises("sequence", read_ctc, tmp_path / "c")


def test_dsb_errors(tmp_path):
    root = _dsb(tmp_path / "a")
    mask = root / "a1b2" / "masks" / "m01.png"
    iio.imwrite(mask, np.zeros((32, 40), np.uint8))
    assert "empty mask" in _raises(mask, read_dsb, root)
    iio.imwrite(mask, np.arange(32 * 40, dtype=np.uint16).reshape(32, 40) % 3)
    assert "binary" in _raises(mask, read_dsb, root)
    iio.imwrite(mask, np.full((16, 40), 255, np.uint8))
    _raises(mask, read_dsb, root)
    root = _dsb(tmp_path / "b")
    for p in (root / "c3d4" / "masks").iterdir():
        p.unlink()
    (root / "c3d4" / "masks").rmdir()  # like the DSB test set: images without masks
    _raises(root / "c3d4" / "masks", read_dsb, root)


def test_unknown_layout(tmp_path):
    (tmp_path / "something").mkdir()
    assert "unknown layout" in _raises(tmp_path, read_dataset, tmp_path)
    with pytest.raises(ValueError, match="unknown layout"):
        read_dataset(tmp_path, layout="zarr")


def test_sample_data_never_overwrites_a_users_files(tmp_path):
    own = tmp_path / "train" / "images"
    own.mkdir(parents=True)
    tifffile.imwrite(own / "000.tif", np.full((8, 8), 7, np.uint16))
    with pytest.raises(FileExistsError, match=r"000.tif already exists and is not sample data"):
        write_sample_dataset(tmp_path, n_train=2, n_val=0, n_test=0, size=64)
    assert (tifffile.imread(own / "000.tif") == 7).all()
    assert not (tmp_path / "train" / "masks").exists()  # refused before anything was written


def test_sample_data_rewrites_its_own_files(tmp_path):
    first = write_sample_dataset(tmp_path, n_train=2, n_val=1, n_test=0, size=64, seed=0)
    again = write_sample_dataset(tmp_path, n_train=2, n_val=0, n_test=0, size=64, seed=1)
    assert len(read_pairs(again["train"])) == 2
    assert len(read_pairs(first["val"])) == 1  # a split not written again keeps its files


def test_hidden_and_macos_resource_files_are_skipped(tmp_path):
    root = _pairs(tmp_path)
    (root / "images" / "._cell0.tif").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (root / "masks" / "._cell0.tif").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (root / "images" / ".DS_Store").write_bytes(b"\x00")
    assert [s.name for s in read_pairs(root)] == ["cell0", "cell1"]


def test_a_1x1_image_keeps_two_dimensions(tmp_path):
    from gruunet_edu.data.readers import read_image

    tifffile.imwrite(tmp_path / "dot.tif", np.ones((1, 1), np.uint16))
    assert read_image(tmp_path / "dot.tif").shape == (1, 1)
