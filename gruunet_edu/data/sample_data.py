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

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import shift_samples, synthetic_samples
from .synthetic import SyntheticConfig

# The list of files this module wrote, kept in the output folder: only these are ever replaced
# or removed when the sample data is written again; a user's own files are never touched.
MANIFEST = ".gruunet-sample-data.json"
_OWN_NAME = re.compile(r"^(train|val|test|shift)/(images|masks)/\d{3,}\.tif$")


def _own_files(root: Path) -> set[str]:
    """The files (relative to ``root``) that an earlier call wrote there."""
    try:
        names = json.loads((root / MANIFEST).read_text())["files"]
        return {name for name in names if isinstance(name, str) and _OWN_NAME.match(name)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _refuse_foreign_files(root: Path, targets: list[Path], own: set[str]) -> None:
    """FileExistsError when a file about to be written exists and was not written by us."""
    foreign = [p for p in targets if p.exists() and p.relative_to(root).as_posix() not in own]
    if foreign:
        raise FileExistsError(
            f"{foreign[0]} already exists and is not sample data written here before "
            f"({len(foreign)} such file(s)); it is left alone: choose another output folder"
        )


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

    Splits with 0 images are not written. The folder keeps a list of the files written
    (``.gruunet-sample-data.json``): writing again replaces those, and removes the ones a smaller
    call no longer writes (no stale pairs), while a file of the same name that was not written
    here (a user's own ``000.tif``) raises FileExistsError before anything is written.
    Very small images (below about 64 x 64 px at the default density) may hold no nucleus; read
    those back with ``read_dataset(..., allow_empty=True)``.

    Without a ``config`` the train and val splits are drawn from ``SyntheticConfig.training()``
    (what `training.quick.synthetic_data` trains on: touching nuclei of alike brightness) and the
    test split from the default task, as the benchmarks' test set is.
    ``n_shift`` images of the shift test set (other parameter ranges than training, 8- and
    16-bit camera counts; `config` and `overrides` do not apply to it) go to out/shift.

    Returns:
        {"root": out, "train": out/train, "val": out/val, "test": out/test, "shift": out/shift}
        (written splits only).
    """
    import tifffile

    root = Path(out)
    counts = {"train": n_train, "val": n_val, "test": n_test, "shift": n_shift}
    for split, n in counts.items():
        if n < 0:
            raise ValueError(f"n_{split} must be >= 0, got {n}")
    own = _own_files(root)
    splits = [split for split, n in counts.items() if n > 0]
    targets = [
        root / split / folder / f"{i:03d}.tif"
        for split in splits
        for folder in ("images", "masks")
        for i in range(counts[split])
    ]
    _refuse_foreign_files(root, targets, own)
    paths: dict[str, Path] = {"root": root}
    written = {p.relative_to(root).as_posix() for p in targets}
    for name in sorted(own - written):  # our files from an earlier, larger call: no stale pairs
        if name.split("/")[0] in splits:
            (root / name).unlink(missing_ok=True)
        else:
            written.add(name)  # a split not written now keeps its files, still ours
    for split in splits:
        folders = root / split / "images", root / split / "masks"
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        if split == "shift":
            samples = shift_samples(counts[split], size, seed)
        else:
            kind = config
            if kind is None:
                kind = SyntheticConfig() if split == "test" else SyntheticConfig.training()
            samples = synthetic_samples(counts[split], size, seed, split, kind, **overrides)
        for i, sample in enumerate(samples):
            name = f"{i:03d}.tif"
            image = sample.image
            if not np.issubdtype(image.dtype, np.integer):  # camera counts keep their dtype
                image = image.astype(np.float32)
            tifffile.imwrite(folders[0] / name, image)
            tifffile.imwrite(folders[1] / name, sample.labels.astype(np.uint16))
        paths[split] = root / split
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).write_text(json.dumps({"files": sorted(written)}, indent=1) + "\n")
    return paths
