"""Files and folders of the command line: what it reads, where it writes, what it never replaces.

- output folders are created and checked for writing before any slow set-up;
- a folder that holds a training run is replaced only with ``--force`` (or continued with
  ``--resume``);
- data folders are read (with train/ and val/ or test/ splits, or one folder from which one image
  in ten is held out) and checked: images too small for the network are refused by name, masks
  that look semantic (one value per class) are reported;
- ``predict`` lists its inputs once each, never reads back the files it wrote (it keeps their list
  in ``.gruunet-predict.json``), and gives inputs that share a name distinct output names;
- evaluation writes metrics JSON, prediction figures and an error gallery.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

PROG = "gruunet-edu"


class CLIError(Exception):
    """A problem the user can fix; main() prints the message without a traceback."""


def write_json(path: Path, data: Any) -> Path:
    from .training.history import json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(data), indent=1) + "\n")
    return path


def output_dir(path: str | Path, option: str = "--out") -> Path:
    """The output folder, created and checked for writing before any slow set-up starts."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{option} {out} is a file; expected a folder (or a path to create one)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"{option} {out}: cannot create this folder ({err.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"{option} {out}: this folder is not writable; choose another {option}")
    return out


def refuse_finished_run(out: Path, args: argparse.Namespace) -> None:
    """A folder that holds a run is never replaced silently: --resume or --force decides."""
    if getattr(args, "resume", False) or getattr(args, "force", False):
        return
    found = [name for name in ("model.pt", "history.json") if (out / name).exists()]
    if found:
        resume = "continue it with --resume, " if hasattr(args, "resume") else ""
        raise CLIError(
            f"{out} already holds a training run ({', '.join(found)}); {resume}replace it with "
            "--force, or choose another --out"
        )


def split_dirs(root: Path) -> dict[str, Path]:
    return {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}


def read(folder: Path):
    from .data.readers import read_dataset

    return read_dataset(folder, allow_empty=True)


def train_val_samples(data: Path, seed: int):
    """Training and validation samples from a data folder (with train/ and val/ or test/
    subfolders, or a single folder from which one image in ten is held out)."""
    import numpy as np

    splits = split_dirs(data)
    if "train" in splits:
        train = read(splits["train"])
        held = splits.get("val") or splits.get("test")
        if held is not None:
            return train, read(held)
        samples = train
    else:
        samples = read(data)
    if len(samples) < 2:
        raise CLIError(f"{data}: need at least 2 images to hold one out for validation")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = max(1, len(samples) // 10)
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


def test_samples(data: Path | None, n: int, size: int, seed: int):
    if data is None:
        from .data.dataset import synthetic_samples

        return synthetic_samples(n, size, seed, "test")
    splits = split_dirs(data)
    return read(splits["test"] if "test" in splits else data)


def check_samples(samples, size_multiple: int, where: Path | str) -> None:
    """Refuse images the network cannot take; warn about semantic masks given as instances."""
    from .data.readers import semantic_mask_warning
    from .models.checks import min_input_size

    smallest = min_input_size(size_multiple)
    for sample in samples:
        height, width = sample.image.shape[-2:]
        if min(height, width) < smallest:
            raise CLIError(
                f"{where}: image '{sample.name}' is {height}x{width} px, smaller than the "
                f"{smallest} px on each side this network needs"
            )
        warning = semantic_mask_warning(sample.labels, f"{where}: '{sample.name}'")
        if warning:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)


def load_model(path: Path, device):
    from .training.checkpoint import load_model

    return load_model(path, map_location=device)


def write_evaluation(
    model,
    samples,
    out: Path,
    device,
    figures: int,
    prefix: str = "",
    diameter="auto",
    tta: bool = True,
) -> dict:
    """Predict every sample (as ``predict`` does: resized to the training nucleus size where
    ``diameter`` says so, averaged over turns and flips with ``tta``), write metrics JSON,
    prediction figures and an error gallery."""
    from .evaluation.evaluate import evaluate_model
    from .viz.plots import error_gallery, prediction_figure, save_figure

    metrics, preds = evaluate_model(model, samples, device=device, diameter=diameter, tta=tta)
    metrics["images"] = [s.name for s in samples]
    metrics["diameter"] = diameter
    metrics["tta"] = tta
    metrics_path = write_json(out / f"{prefix}metrics.json", metrics)
    paths = [metrics_path]
    for i, (sample, pred) in enumerate(zip(samples, preds, strict=True)):
        if i >= figures:
            break
        fig = prediction_figure(sample.image, sample.labels, pred, title=sample.name or f"{i}")
        paths.append(save_figure(fig, out / f"{prefix}prediction_{i:03d}.png"))
    gallery = error_gallery([s.image for s in samples], [s.labels for s in samples], preds)
    paths.append(save_figure(gallery, out / f"{prefix}error_gallery.png"))
    return {"metrics": metrics, "paths": paths}


def print_metrics(metrics: dict) -> None:
    print(
        f"  {metrics['n_images']} images, {metrics['n_true']} true / {metrics['n_pred']} predicted "
        f"nuclei: Dice {metrics['dice']:.3f}, AP50 {metrics['ap50']:.3f}, "
        f"mean AP (0.5:0.95) {metrics['mean_ap']:.3f}, F1@0.5 {metrics['f1_50']:.3f}, "
        f"SEG {metrics['seg']:.3f}"
    )


PREDICT_MANIFEST = ".gruunet-predict.json"  # the files predict wrote into its output folder


def written_by_predict(folder: Path) -> set[Path]:
    """Files an earlier ``predict`` wrote into ``folder`` (never read back as input)."""
    try:
        names = json.loads((folder / PREDICT_MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {(folder / name).resolve() for name in names if isinstance(name, str)}


def image_files(inputs: list[str], out: Path) -> list[Path]:
    """Image files named on the command line or found in the named folders, each once; the
    outputs of an earlier ``predict`` into ``out`` (or into the folder itself) are skipped."""
    from .data.readers import IMAGE_SUFFIXES, image_files

    own = written_by_predict(out)
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            own |= written_by_predict(path)
            found = [p for p in image_files(path) if p.resolve() not in own]
            if not found:
                raise CLIError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files.extend(found)
        elif path.is_file():
            if path.resolve() in own:
                raise CLIError(f"{path} was written by an earlier predict; it is not an input")
            files.append(path)
        else:
            raise CLIError(f"{path}: no such file or folder")
    unique = {p.resolve(): p for p in files}  # the same file named twice is predicted once
    return list(unique.values())


def output_stems(files: list[Path]) -> list[str]:
    """One distinct output name per input: the file's stem, or, where two inputs share it
    (``img.tif`` and ``img.png``, ``a/000.tif`` and ``b/000.tif``), the stem with the suffix
    (``img_tif``) and then with as many parent folders as it takes (``a_000_tif``)."""

    def label(path: Path, level: int) -> str:
        parents = path.resolve().parent.parts[1:]
        parents = parents[len(parents) - (level - 1) :] if level > 1 else ()
        return "_".join([*parents, path.stem, path.suffix.lstrip(".").lower()])

    names = [p.stem for p in files]
    level = 0
    while len(set(names)) < len(names) and level <= max(len(p.resolve().parts) for p in files):
        level += 1
        names = [
            label(p, level) if names.count(n) > 1 else n for p, n in zip(files, names, strict=True)
        ]
    return names
