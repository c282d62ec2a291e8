"""Readers for nucleus segmentation data on disk, returning `Sample` (image, instance labels, name).

Three layouts are understood:

- **pairs** (`read_pairs`): ``root/images/NAME.tif`` with ``root/masks/NAME.tif`` (TIFF or PNG,
  matched by file name; the mask may also be called ``NAME_mask``, ``NAME_label``...). This is what
  `write_sample_dataset` writes, one such folder per split.
- **Cell Tracking Challenge** (`read_ctc`): ``root/01/t000.tif`` with the segmentation ground truth
  ``root/01_GT/SEG/man_seg000.tif``; only frames that have a SEG mask are read (the CTC annotates
  a subset of the frames).
- **2018 Data Science Bowl** (`read_dsb`): ``root/<id>/images/<id>.png`` with
  ``root/<id>/masks/*.png``, one binary mask per nucleus; the masks become one instance label map.

Images are returned as read, except that RGB(A) images become grey (alpha dropped, channels
averaged), so models with one input channel can use them; every command reads images with
`read_image`, so training, evaluation and prediction follow this one rule. Hidden files (``.name``,
such as macOS ``._NAME.tif`` resource files) are skipped. Labels are uint16 (int32 beyond 65535
nuclei), 0 = background. A mask with a single non-zero value (a binary foreground mask) is split
into its 4-connected components, one label each.

Every problem (missing folder, image without mask, mask of another size, empty or non-integer
mask, unreadable file) raises `DataFormatError` (a ValueError) naming the file and what was
expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
MASK_NAME_SUFFIXES = ("", "_mask", "_masks", "_label", "_labels", "_seg")
LAYOUTS = ("auto", "pairs", "ctc", "dsb")


class DataFormatError(ValueError):
    """A data folder or file does not have the expected layout or content."""


@dataclass
class Sample:
    """One image with its instance labels.

    image: (H, W) or (C, H, W) array (any real dtype, normalised later by the dataset).
    labels: (H, W) integer array, 0 = background, 1..N = nuclei.
    name: where the sample came from (a file name or a synthetic id).
    """

    image: np.ndarray
    labels: np.ndarray
    name: str = ""


# --- single files ---


def read_array(path: str | Path) -> np.ndarray:
    """Read a TIFF (tifffile) or PNG (imageio) file; DataFormatError when that fails."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        if suffix == ".png":
            import imageio.v3 as iio

            return np.asarray(iio.imread(path, plugin="pillow"))
    except Exception as exc:  # any decoder error: report the file and the reason
        raise DataFormatError(
            f"{path}: cannot read the file as {suffix[1:].upper()} ({exc})"
        ) from exc
    raise DataFormatError(f"{path}: unsupported file type; expected one of {IMAGE_SUFFIXES}")


def _squeeze(array: np.ndarray) -> np.ndarray:
    """Singleton axes removed, but never below two: a 1x1 image stays (1, 1)."""
    while array.ndim > 2 and 1 in array.shape:
        array = np.squeeze(array, axis=array.shape.index(1))
    return array


def _as_image(array: np.ndarray, path: Path) -> np.ndarray:
    """A 2D image: singleton axes removed, RGB(A) (H, W, 3|4) averaged to grey."""
    image = _squeeze(array)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        rgb = image[..., :3]
        if (rgb == rgb[..., :1]).all():
            image = np.ascontiguousarray(rgb[..., 0])
        else:
            image = rgb.astype(np.float32).mean(-1)
    if image.ndim != 2:
        raise DataFormatError(
            f"{path}: expected a 2D image (H, W) or RGB(A) (H, W, 3|4), got shape {array.shape}"
        )
    if image.dtype.kind == "b":
        image = image.astype(np.uint8)
    if image.dtype.kind not in "uif":
        raise DataFormatError(f"{path}: expected a numeric image, got dtype {image.dtype}")
    return image


def _integer_mask(array: np.ndarray, path: Path) -> np.ndarray:
    """A 2D mask as non-negative int64: integer dtype, or floats holding whole numbers."""
    mask = _squeeze(array)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):  # a grey mask saved as RGB(A)
        if not (mask[..., :3] == mask[..., :1]).all():
            raise DataFormatError(f"{path}: expected a single-channel mask, got a colour image")
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise DataFormatError(f"{path}: expected a 2D mask (H, W), got shape {array.shape}")
    if mask.dtype.kind == "f":
        if not np.isfinite(mask).all() or (mask != np.round(mask)).any():
            raise DataFormatError(
                f"{path}: expected integer labels (0 = background, 1..N = nuclei), "
                f"got non-integer values of dtype {mask.dtype}"
            )
    elif mask.dtype.kind not in "uib":
        raise DataFormatError(f"{path}: expected an integer mask, got dtype {mask.dtype}")
    mask = mask.astype(np.int64)
    if mask.min() < 0:
        raise DataFormatError(f"{path}: expected labels >= 0, got {mask.min()}")
    return mask


def _check_shape(mask: np.ndarray, image: np.ndarray, mask_path: Path, image_path: Path) -> None:
    if mask.shape != image.shape[-2:]:
        raise DataFormatError(
            f"{mask_path}: mask of size {mask.shape} does not match its image {image_path} of "
            f"size {image.shape[-2:]}; expected the same height and width"
        )


def _to_labels(mask: np.ndarray, path: Path, allow_empty: bool) -> np.ndarray:
    """Instance labels from a label or binary mask (int64 -> uint16 or int32)."""
    values = np.unique(mask)
    values = values[values > 0]
    if values.size == 0 and not allow_empty:
        raise DataFormatError(f"{path}: empty mask (no nucleus); expected at least one label > 0")
    if values.size == 1:  # binary foreground mask: one label per connected component
        mask, _ = ndimage.label(mask > 0)
    return _compact(mask)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Labels as uint16 when they fit, else int32."""
    dtype = np.uint16 if labels.max() <= np.iinfo(np.uint16).max else np.int32
    return labels.astype(dtype)


def read_labels(
    path: str | Path,
    image: np.ndarray | None = None,
    image_path: str | Path = "",
    allow_empty=False,
) -> np.ndarray:
    """Read a label mask (checked against `image` when given) as uint16/int32 instance labels."""
    path = Path(path)
    mask = _integer_mask(read_array(path), path)
    if image is not None:
        _check_shape(mask, image, path, Path(image_path))
    return _to_labels(mask, path, allow_empty)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as a 2D array (RGB(A) averaged to grey)."""
    path = Path(path)
    return _as_image(read_array(path), path)


# --- layouts ---


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DataFormatError(f"{path}: folder not found; expected {what}")


def image_files(folder: Path) -> list[Path]:
    """The TIFF and PNG files of a folder, sorted by name; hidden files are skipped (``.name``,
    such as the ``._NAME.tif`` resource files macOS writes next to every file on some disks)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def read_pairs(
    root: str | Path,
    image_dir: str = "images",
    mask_dir: str = "masks",
    allow_empty: bool = False,
) -> list[Sample]:
    """Image/mask pairs: ``root/images/NAME.ext`` with ``root/masks/NAME.ext`` (sorted by name).

    The mask of NAME may also be called NAME_mask, NAME_masks, NAME_label, NAME_labels or
    NAME_seg; ext is .tif, .tiff or .png for either file.
    """
    root = Path(root)
    _require_dir(root, f"a folder with {image_dir}/ and {mask_dir}/ subfolders")
    images_path, masks_path = root / image_dir, root / mask_dir
    _require_dir(images_path, f"the images of {root} ({image_dir}/NAME.tif or .png)")
    _require_dir(masks_path, f"the masks of {root} ({mask_dir}/NAME.tif or .png)")
    images = image_files(images_path)
    if not images:
        raise DataFormatError(f"{images_path}: no images found; expected {IMAGE_SUFFIXES} files")
    masks = {p.stem: p for p in image_files(masks_path)}
    used: set[str] = set()
    samples = []
    for image_path in images:
        candidates = [image_path.stem + s for s in MASK_NAME_SUFFIXES]
        stem = next((c for c in candidates if c in masks), None)
        if stem is None:
            raise DataFormatError(
                f"{image_path}: image without a mask; expected {masks_path / image_path.stem}"
                f"{{.tif,.tiff,.png}} (or with a suffix {MASK_NAME_SUFFIXES[1:]})"
            )
        used.add(stem)
        image = read_image(image_path)
        labels = read_labels(masks[stem], image, image_path, allow_empty)
        samples.append(Sample(image, labels, image_path.stem))
    unmatched = sorted(set(masks) - used)
    if unmatched:
        raise DataFormatError(
            f"{masks[unmatched[0]]}: mask without an image; expected {images_path / unmatched[0]}"
            f"{{.tif,.tiff,.png}} ({len(unmatched)} unmatched mask(s))"
        )
    return samples


_CTC_SEQUENCE = re.compile(r"^\d+$")
_CTC_MASK = re.compile(r"^man_seg(\d+)\.tiff?$")
_CTC_FRAME = re.compile(r"^t(\d+)\.tiff?$")


def read_ctc(
    root: str | Path, sequences: list[str] | None = None, allow_empty: bool = False
) -> list[Sample]:
    """Cell Tracking Challenge 2D data: ``root/01/tNNN.tif`` + ``root/01_GT/SEG/man_segNNN.tif``.

    Reads every sequence folder (01, 02, ...) or only `sequences`, and in each only the frames
    that have a SEG mask. Names are "01/t000". Note that CTC SEG masks may annotate only some of
    the nuclei of a frame.
    """
    root = Path(root)
    _require_dir(root, "a Cell Tracking Challenge dataset (01/, 01_GT/SEG/)")
    if sequences is None:
        sequences = sorted(
            p.name for p in root.iterdir() if p.is_dir() and _CTC_SEQUENCE.match(p.name)
        )
        if not sequences:
            raise DataFormatError(
                f"{root}: no sequence folders; expected Cell Tracking Challenge folders 01/, 02/ "
                "with 01_GT/SEG/"
            )
    samples = []
    for seq in sequences:
        seq_dir, seg_dir = root / seq, root / f"{seq}_GT" / "SEG"
        _require_dir(seq_dir, f"the frames of sequence {seq} ({seq}/t000.tif, ...)")
        _require_dir(seg_dir, f"the segmentation ground truth of sequence {seq} (man_seg000.tif)")
        masks = sorted((p for p in seg_dir.iterdir() if _CTC_MASK.match(p.name)), key=str)
        if not masks:
            raise DataFormatError(
                f"{seg_dir}: no 2D segmentation masks; expected man_seg000.tif, man_seg001.tif, ..."
            )
        frames = {}
        for p in seq_dir.iterdir():
            m = _CTC_FRAME.match(p.name)
            if m:
                frames[int(m.group(1))] = p
        for mask_path in masks:
            digits = _CTC_MASK.match(mask_path.name).group(1)
            image_path = frames.get(int(digits))
            if image_path is None:
                raise DataFormatError(
                    f"{mask_path}: mask without a frame; expected {seq_dir / ('t' + digits)}.tif"
                )
            image = read_image(image_path)
            labels = read_labels(mask_path, image, image_path, allow_empty)
            samples.append(Sample(image, labels, f"{seq}/{image_path.stem}"))
    return samples


def read_dsb(root: str | Path) -> list[Sample]:
    """2018 Data Science Bowl: ``root/<id>/images/<id>.png`` + ``root/<id>/masks/*.png``.

    Every mask file is one nucleus (binary, 0 and one other value); nucleus k of the sorted mask
    files gets label k (where masks overlap, the later one wins). Names are the ids.
    """
    root = Path(root)
    _require_dir(root, "a Data Science Bowl folder (<id>/images/<id>.png, <id>/masks/*.png)")
    entries = sorted(p for p in root.iterdir() if p.is_dir() and (p / "images").is_dir())
    if not entries:
        raise DataFormatError(
            f"{root}: no sample folders; expected Data Science Bowl folders <id>/images/<id>.png"
        )
    samples = []
    for entry in entries:
        image_path = entry / "images" / f"{entry.name}.png"
        if not image_path.is_file():
            raise DataFormatError(f"{image_path}: image not found; expected <id>/images/<id>.png")
        image = read_image(image_path)
        masks_dir = entry / "masks"
        _require_dir(masks_dir, f"the masks of {image_path} ({entry.name}/masks/*.png)")
        mask_paths = image_files(masks_dir)
        if not mask_paths:
            raise DataFormatError(
                f"{masks_dir}: no masks for {image_path}; expected one binary PNG per nucleus"
            )
        labels = np.zeros(image.shape[-2:], np.int64)
        for k, mask_path in enumerate(mask_paths, start=1):
            mask = _integer_mask(read_array(mask_path), mask_path)
            _check_shape(mask, image, mask_path, image_path)
            values = np.unique(mask)
            if values.size > 2:
                raise DataFormatError(
                    f"{mask_path}: expected a binary mask (one nucleus), got {values.size} values"
                )
            if not (mask > 0).any():
                raise DataFormatError(f"{mask_path}: empty mask; expected one nucleus")
            labels[mask > 0] = k
        samples.append(Sample(image, _compact(labels), entry.name))
    return samples


def detect_layout(root: str | Path) -> str:
    """ "pairs", "ctc" or "dsb" for a data folder; DataFormatError when none fits."""
    root = Path(root)
    _require_dir(root, "a data folder")
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "pairs"
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    if any(_CTC_SEQUENCE.match(p.name) and (root / f"{p.name}_GT").is_dir() for p in subdirs):
        return "ctc"
    if any((p / "images" / f"{p.name}.png").is_file() for p in subdirs):
        return "dsb"
    hint = ""
    if any((p / "images").is_dir() and (p / "masks").is_dir() for p in subdirs):
        hint = "; for a folder of splits, read one split such as train/"
    raise DataFormatError(
        f"{root}: unknown layout; expected images/ + masks/ (pairs), 01/ + 01_GT/SEG/ (Cell "
        f"Tracking Challenge) or <id>/images/ + <id>/masks/ (Data Science Bowl){hint}"
    )


def read_dataset(root: str | Path, layout: str = "auto", allow_empty: bool = False) -> list[Sample]:
    """Read a data folder in the given layout ("pairs", "ctc", "dsb" or "auto": detect it).

    `allow_empty` accepts masks without any nucleus (pairs and CTC layouts; a DSB mask file is
    always one nucleus).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "pairs":
        return read_pairs(root, allow_empty=allow_empty)
    if layout == "ctc":
        return read_ctc(root, allow_empty=allow_empty)
    return read_dsb(root)


def semantic_mask_warning(labels: np.ndarray, name: str = "") -> str | None:
    """A sentence when instance labels look like a semantic mask (one value per class), else None.

    Instance labels give every nucleus its own value, so each value is one connected region. A
    mask with a few values (0 / 1 / 2) of which one is made of many separate blobs is a sign that
    it labels classes (foreground, boundary), not nuclei.
    """
    values = np.unique(labels)
    values = values[values > 0]
    if not 0 < values.size <= 8:
        return None
    for value in values:
        _, blobs = ndimage.label(labels == value)
        if blobs >= 3:
            where = f"{name}: " if name else ""
            return (
                f"{where}label {int(value)} is made of {blobs} separate blobs: this looks like a "
                "semantic mask (one value per class), not instance labels (one value per "
                "nucleus); instance metrics will count it as one object"
            )
    return None
