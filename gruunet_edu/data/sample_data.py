"""Write the synthetic sample data to disk, in the layout `read_pairs` reads.

    out/train/images/000.tif   float32 image (H, W), about [0, 1]
    out/train/masks/000.tif    uint16 instance labels (H, W), 0 = background
    out/val/...                the same for the validation and test splits
    out/test/...
    out/shift/...              optional: the shift test set (`shift_samples`), uint8/uint16 images

The splits come from separate seed streams (see `synthetic_samples`), so they never share an
image, and the files hold exactly the arrays ``synthetic_samples(n, size, seed, split)`` returns.
TIFF opens in Fiji/ImageJ, napari and tifffile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import shift_samples, synthetic_samples
from .synthetic import SyntheticConfig

_OWN_FILE = re.compile(r"^\d{3,}\.tif$")  # files this module writes (removed before rewriting)


def write_sample_dataset(
    out: str | Path,
    n_train: int = 32,
    n_val: int = 8,
    n_test: int = 8,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    config: SyntheticConfig | None = None,
    n_shift: int = 0,
    **overrides: Any,
) -> dict[str, Path]:
    """Write train/val/test splits of synthetic nuclei as TIFF image/mask pairs.

    Splits with 0 images are not written. Files named like ours (``NNN.tif``) already in the
    images/ and masks/ folders of a written split are replaced, so writing again with fewer
    images leaves no stale pairs; other files are left alone. Very small images (below about
    64 x 64 px at the default density) may hold no nucleus; read those back with
    ``read_dataset(..., allow_empty=True)``.

    ``n_shift`` images of the shift test set (other parameter ranges than training, 8- and
    16-bit camera counts; `config` and `overrides` do not apply to it) go to out/shift.

    Returns:
        {"root": out, "train": out/train, "val": out/val, "test": out/test, "shift": out/shift}
        (written splits only).
    """
    import tifffile

    root = Path(out)
    paths: dict[str, Path] = {"root": root}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test), ("shift", n_shift)):
        if n < 0:
            raise ValueError(f"n_{split} must be >= 0, got {n}")
        if n == 0:
            continue
        split_dir = root / split
        folders = split_dir / "images", split_dir / "masks"
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():
                if _OWN_FILE.match(old.name):
                    old.unlink()
        if split == "shift":
            samples = shift_samples(n, size, seed)
        else:
            samples = synthetic_samples(n, size, seed, split, config, **overrides)
        for i, sample in enumerate(samples):
            name = f"{i:03d}.tif"
            image = sample.image
            if not np.issubdtype(image.dtype, np.integer):  # camera counts keep their dtype
                image = image.astype(np.float32)
            tifffile.imwrite(folders[0] / name, image)
            tifffile.imwrite(folders[1] / name, sample.labels.astype(np.uint16))
        paths[split] = split_dir
    return paths
