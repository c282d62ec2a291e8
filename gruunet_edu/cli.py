"""Command line: ``gruunet-edu sample-data | train | predict | evaluate | demo``.

Every command has ``--help``. Without arguments ``train`` trains the preset chosen for the device
(``tiny`` on a CPU, ``paper`` on a GPU) on synthetic sample data; ``demo`` writes sample data,
trains the ``tiny`` preset on it, evaluates on the held-out test split and says where the figures
and the metrics are. Mistakes (a bad argument, a missing or incompatible checkpoint, an image of
the wrong shape) print one clear line and exit with a non-zero status, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PROG = "gruunet-edu"
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A problem the user can fix; main() prints the message without a traceback."""


# ------------------------------------------------------------------------------- helpers


def _checked_number(convert, is_valid, expected: str):
    """An argparse ``type`` that converts with ``convert`` and rejects what ``is_valid`` refuses."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not is_valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive_int = _checked_number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked_number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked_number(float, lambda v: v > 0, "a positive number")


def _write_json(path: Path, data: Any) -> Path:
    from .training.loop import _json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(data), indent=1) + "\n")
    return path


def _use_agg() -> None:
    """Figures are written to files: use the non-interactive backend (no display needed)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


def _split_dirs(root: Path) -> dict[str, Path]:
    return {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}


def _read(folder: Path):
    from .data.readers import read_dataset

    return read_dataset(folder, allow_empty=True)


def _train_val_samples(data: Path, seed: int):
    """Training and validation samples from a data folder (with train/ and val/ or test/
    subfolders, or a single folder from which one image in ten is held out)."""
    import numpy as np

    splits = _split_dirs(data)
    if "train" in splits:
        train = _read(splits["train"])
        held = splits.get("val") or splits.get("test")
        if held is not None:
            return train, _read(held)
        samples = train
    else:
        samples = _read(data)
    if len(samples) < 2:
        raise CLIError(f"{data}: need at least 2 images to hold one out for validation")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = max(1, len(samples) // 10)
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


def _test_samples(data: Path | None, n: int, size: int, seed: int):
    if data is None:
        from .data.dataset import synthetic_samples

        return synthetic_samples(n, size, seed, "test")
    splits = _split_dirs(data)
    return _read(splits["test"] if "test" in splits else data)


def _load_model(path: Path, device):
    from .training.checkpoint import load_model

    return load_model(path, map_location=device)


def _write_evaluation(model, samples, out: Path, device, figures: int, prefix: str = "") -> dict:
    """Predict every sample, write metrics JSON, prediction figures and an error gallery."""
    from .evaluation.evaluate import evaluate_model
    from .viz.plots import error_gallery, prediction_figure, save_figure

    metrics, preds = evaluate_model(model, samples, device=device)
    metrics["images"] = [s.name for s in samples]
    metrics_path = _write_json(out / f"{prefix}metrics.json", metrics)
    paths = [metrics_path]
    for i, (sample, pred) in enumerate(zip(samples, preds, strict=True)):
        if i >= figures:
            break
        fig = prediction_figure(sample.image, sample.labels, pred, title=sample.name or f"{i}")
        paths.append(save_figure(fig, out / f"{prefix}prediction_{i:03d}.png"))
    gallery = error_gallery([s.image for s in samples], [s.labels for s in samples], preds)
    paths.append(save_figure(gallery, out / f"{prefix}error_gallery.png"))
    return {"metrics": metrics, "paths": paths}


def _print_metrics(metrics: dict) -> None:
    print(
        f"  {metrics['n_images']} images, {metrics['n_true']} true / {metrics['n_pred']} predicted "
        f"nuclei: Dice {metrics['dice']:.3f}, AP50 {metrics['ap50']:.3f}, "
        f"mean AP (0.5:0.95) {metrics['mean_ap']:.3f}, F1@0.5 {metrics['f1_50']:.3f}, "
        f"SEG {metrics['seg']:.3f}"
    )


# ------------------------------------------------------------------------------- commands


def cmd_sample_data(args: argparse.Namespace) -> int:
    from .data.sample_data import write_sample_dataset

    paths = write_sample_dataset(
        args.out, args.n_train, args.n_val, args.n_test, size=args.size, seed=args.seed
    )
    counts = {"train": args.n_train, "val": args.n_val, "test": args.n_test}
    written = ", ".join(f"{counts[s]} {s}" for s in ("train", "val", "test") if s in paths)
    print(f"Wrote synthetic sample data to {paths['root']} ({written} images of {args.size} px).")
    return 0


def _run_training(args: argparse.Namespace, out: Path, preset: str | None, device_name: str):
    """Shared by ``train`` and ``demo``: returns (model, history, val samples, paths)."""
    from .data.dataset import NucleiDataset
    from .models import GRUUNetConfig, build_model
    from .training.device import choose_device, default_preset, set_seed
    from .training.loop import recipe, synthetic_data, train
    from .viz.plots import plot_history, save_figure

    device = choose_device(device_name)
    preset = preset or default_preset(device)
    overrides = {
        k: v
        for k, v in {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "crop": args.crop,
            "val_every": args.val_every,
        }.items()
        if v is not None
    }
    checkpoint = out / "model.pt"
    config = recipe(
        preset,
        seed=args.seed,
        device=str(device),
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        checkpoint=str(checkpoint),
        history_path=str(out / "history.json"),
        resume=getattr(args, "resume", False),
        progress=not args.no_progress,
        **overrides,
    )
    if config.val_every > config.total_steps:
        config = config.replace(val_every=config.total_steps)
    model_config = GRUUNetConfig.preset(preset)
    set_seed(args.seed)
    model = build_model(model_config, arch=args.arch)
    if args.data is None:
        train_set, val_set = synthetic_data(crop=config.crop, seed=args.seed)
        val_samples = val_set.samples
        source = "synthetic nuclei generated on the fly"
    else:
        train_samples, val_samples = _train_val_samples(Path(args.data), args.seed)
        length = max(len(train_samples), config.batch_size * config.val_every)
        train_set = NucleiDataset(
            train_samples, crop=config.crop, augment=True, seed=args.seed, length=length
        )
        val_set = NucleiDataset(val_samples)
        source = (
            f"{args.data} ({len(train_samples)} training, {len(val_samples)} validation images)"
        )
    print(
        f"Training a '{preset}' {args.arch} for {config.total_steps} steps on {source}; "
        f"writing to {out}/"
    )
    out.mkdir(parents=True, exist_ok=True)
    history = train(model, train_set, val_set, config, model_config=model_config)
    curves = save_figure(plot_history(history, title=f"{args.arch} '{preset}'"), out / "loss.png")
    return model, history, val_samples, {"checkpoint": checkpoint, "curves": curves}


def cmd_train(args: argparse.Namespace) -> int:
    _use_agg()
    out = Path(args.out)
    model, history, val_samples, paths = _run_training(args, out, args.preset, args.device)
    if history.interrupted:
        if len(history):
            print(
                f"Interrupted: the checkpoint of step {history.step[-1]} is kept at "
                f"{paths['checkpoint']}; continue with --resume."
            )
        else:
            print("Interrupted before the first epoch ended: no checkpoint was written.")
        return EXIT_INTERRUPTED
    report = _write_evaluation(model, val_samples, out, None, args.figures, prefix="val_")
    print("Validation set:")
    _print_metrics(report["metrics"])
    print(f"Checkpoint: {paths['checkpoint']}")
    print(f"History:    {out / 'history.json'} (loss curves: {paths['curves']})")
    print(f"Metrics:    {report['paths'][0]}")
    print(f"Figures:    {', '.join(str(p) for p in report['paths'][1:])}")
    return 0


def _image_files(inputs: list[str]) -> list[Path]:
    from .data.readers import IMAGE_SUFFIXES
    from .data.readers import _image_files as images_in

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = images_in(path)
            if not found:
                raise CLIError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CLIError(f"{path}: no such file or folder")
    return files


def _diameter(text: str) -> float | str | None:
    """``--diameter``: a number of pixels, "auto" or "off"."""
    if text in ("auto", "off"):
        return None if text == "off" else text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(
            f"--diameter must be a positive number of pixels, 'auto' or 'off', got {text!r}"
        )
    return value


def _diameter_note(scale: dict) -> str:
    if scale["diameter"] is None:
        return ""
    how = "estimated" if scale["estimated"] else "given"
    resized = f", resized x{scale['factor']:.2f}" if scale["factor"] != 1.0 else ""
    return f" (diameter {scale['diameter']:.1f} px {how}{resized})"


def cmd_predict(args: argparse.Namespace) -> int:
    _use_agg()
    import numpy as np
    import tifffile

    from .data.readers import read_array
    from .evaluation.rescale import predict_instances_rescaled
    from .training.device import choose_device
    from .viz.plots import prediction_figure, save_figure

    files = _image_files(args.images)
    device = choose_device(args.device)
    model, _ = _load_model(Path(args.checkpoint), device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        image = np.squeeze(read_array(path))
        try:
            labels, probs, scale = predict_instances_rescaled(
                model, image, args.diameter, device=device, min_size=args.min_size
            )
        except ValueError as err:
            raise CLIError(f"{path}: {err}") from None
        label_path = out / f"{path.stem}_labels.tif"
        tifffile.imwrite(label_path, labels)
        if args.probabilities:
            tifffile.imwrite(out / f"{path.stem}_probabilities.tif", probs.astype(np.float32))
        fig = prediction_figure(image, None, labels, title=path.name)
        figure_path = save_figure(fig, out / f"{path.stem}_prediction.png")
        size = _diameter_note(scale)
        print(f"{path}: {int(labels.max())} nuclei{size} -> {label_path}, {figure_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _use_agg()
    from .training.device import choose_device

    device = choose_device(args.device)
    model, _ = _load_model(Path(args.checkpoint), device)
    data = Path(args.data) if args.data else None
    samples = _test_samples(data, args.n, args.size, args.seed)
    where = data if data else f"{len(samples)} synthetic test images"
    print(f"Evaluating {args.checkpoint} on {where}")
    report = _write_evaluation(model, samples, Path(args.out), device, args.figures)
    _print_metrics(report["metrics"])
    print(f"Metrics: {report['paths'][0]}")
    print(f"Figures: {', '.join(str(p) for p in report['paths'][1:])}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _use_agg()
    from .data.sample_data import write_sample_dataset

    start = time.perf_counter()
    out = Path(args.out)
    data = out / "data"
    paths = write_sample_dataset(
        data, n_train=32, n_val=4, n_test=8, size=256, seed=args.seed, n_shift=8
    )
    print(
        f"Sample data: {data} (32 training, 4 validation, 8 held-out test images, "
        "8 shift-test images from other parameter ranges)"
    )
    args.data = str(data)
    model, history, _, train_paths = _run_training(args, out, "tiny", args.device)
    if history.interrupted:
        print("Interrupted: nothing evaluated.")
        return EXIT_INTERRUPTED
    test = _read(paths["test"])
    print("Held-out test set (drawn like the training data):")
    report = _write_evaluation(model, test, out, None, args.figures)
    _print_metrics(report["metrics"])
    print("Shift test set (other sizes, brightness, illumination, 8/16-bit; generalisation):")
    shift = _write_evaluation(model, _read(paths["shift"]), out, None, 0, prefix="shift_")
    _print_metrics(shift["metrics"])
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    print(f"Checkpoint:  {train_paths['checkpoint']}")
    print(f"Loss curves: {train_paths['curves']}")
    print(f"Metrics:     {report['paths'][0]} (shift test: {shift['paths'][0]})")
    print(f"Figure:      {report['paths'][1]}")
    print(f"Errors:      {report['paths'][-1]}")
    return 0


# ------------------------------------------------------------------------------- parser


def _add_training_options(p: argparse.ArgumentParser, demo: bool = False) -> None:
    if not demo:
        p.add_argument(
            "--data",
            default=None,
            help="data folder: train/ and val/ (or test/) subfolders as written by sample-data, "
            "or one folder (images/ + masks/, Cell Tracking Challenge or Data Science Bowl "
            "layout) from which one image in ten is held out; default: synthetic nuclei",
        )
        p.add_argument(
            "--preset",
            choices=("tiny", "small", "paper", "blog"),
            default=None,
            help="model preset (default: paper on a GPU, tiny otherwise; $GRUUNET_PRESET)",
        )
    p.add_argument("--arch", choices=("gruunet", "unet"), default="gruunet", help="network")
    p.add_argument("--steps", type=_positive_int, default=None, help="optimisation steps")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="images per step")
    p.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate")
    p.add_argument("--crop", type=_positive_int, default=None, help="training crop size (px)")
    p.add_argument("--val-every", type=_positive_int, default=None, help="steps per epoch")
    p.add_argument(
        "--device",
        default="cpu" if demo else "auto",
        help="auto, cpu, cuda, cuda:N or mps (default: %(default)s; $GRUUNET_DEVICE)",
    )
    p.add_argument(
        "--amp",
        choices=("auto", "bf16", "fp16", "off"),
        default="auto",
        help="mixed precision (auto: bf16/fp16 on CUDA, off on CPU)",
    )
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=False,
        metavar="BACKEND",
        help="torch.compile the model (optionally with a backend such as 'eager')",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--figures",
        type=_non_negative_int,
        default=3,
        help="prediction figures to write (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="GRUU-Net course tools: sample data, training, prediction, evaluation.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "sample-data",
        help="write synthetic nuclei images and masks (train/val/test)",
        description="Write synthetic fluorescence nuclei as TIFF image/mask pairs in "
        "OUT/{train,val,test}/{images,masks}/.",
    )
    p.add_argument("--out", default="data/sample", help="output folder (default: %(default)s)")
    p.add_argument("--n-train", type=_non_negative_int, default=32, help="training images")
    p.add_argument("--n-val", type=_non_negative_int, default=8, help="validation images")
    p.add_argument("--n-test", type=_non_negative_int, default=8, help="test images")
    p.add_argument("--size", type=_positive_int, default=256, help="image side (px)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser(
        "train",
        help="train a network (default: preset chosen for the device, synthetic data)",
        description="Train GRUU-Net (or the U-Net baseline). Writes OUT/model.pt (checkpoint), "
        "OUT/history.json, OUT/loss.png, and validation metrics and figures.",
    )
    _add_training_options(p)
    p.add_argument("--out", default="runs/train", help="output folder (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/model.pt")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "predict",
        help="segment images with a trained checkpoint",
        description="Segment images (TIFF or PNG files, or folders of them). Writes "
        "OUT/NAME_labels.tif (instance labels) and OUT/NAME_prediction.png per image.",
    )
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by train")
    p.add_argument("--out", default="runs/predict", help="output folder (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--min-size", type=_non_negative_int, default=16, help="smallest object (px)")
    p.add_argument(
        "--diameter",
        type=_diameter,
        default="auto",
        help="typical nucleus diameter in px: images are resized so nuclei match the training "
        "data's size, and the labels mapped back; 'auto' (default) estimates it from a first "
        "prediction, 'off' predicts at the image's own scale",
    )
    p.add_argument("--probabilities", action="store_true", help="also write class probabilities")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "evaluate",
        help="metrics of a checkpoint on annotated data",
        description="Evaluate a checkpoint: Dice, IoU, AP at IoU 0.5..0.95, F1, SEG. Writes "
        "OUT/metrics.json, prediction figures (image, truth, prediction, errors) and an error "
        "gallery.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint written by train")
    p.add_argument(
        "--data",
        default=None,
        help="annotated data folder (its test/ split if it has one); default: synthetic test "
        "images",
    )
    p.add_argument("--n", type=_positive_int, default=8, help="synthetic test images")
    p.add_argument("--size", type=_positive_int, default=256, help="synthetic image side (px)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic test images")
    p.add_argument("--out", default="runs/evaluate", help="output folder (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument(
        "--figures", type=_non_negative_int, default=3, help="prediction figures to write"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "demo",
        help="sample data, train the tiny preset on the CPU, evaluate, write figures",
        description="End-to-end demo (a few minutes on a laptop CPU): write sample data, train "
        "the tiny preset, evaluate on held-out images, write the checkpoint, metrics and "
        "figures to OUT.",
    )
    _add_training_options(p, demo=True)
    p.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    p.set_defaults(func=cmd_demo, preset=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    from .data.readers import DataFormatError
    from .training.checkpoint import CheckpointError
    from .training.loop import TrainingDiverged

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, CheckpointError, DataFormatError, TrainingDiverged) as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, OSError) as err:
        if os.environ.get("GRUUNET_DEBUG"):
            raise
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
