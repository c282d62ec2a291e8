"""The argument parser of the ``gruunet-edu`` command (a declarative table of its options).

The commands themselves are in :mod:`gruunet_edu.cli`; the ``progress`` and ``grade`` commands add
their own sub-parsers (:mod:`gruunet_edu.progress`, :mod:`gruunet_edu.grading`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .cli_files import PROG


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


def _add_prediction_options(p: argparse.ArgumentParser) -> None:
    """``--diameter`` and ``--tta`` of predict and evaluate (see ``evaluation.rescale`` and
    ``evaluation.tta``)."""
    p.add_argument(
        "--diameter",
        type=_diameter,
        default="auto",
        help="typical nucleus diameter in px: images are resized so nuclei match the training "
        "data's size, and the labels mapped back; 'auto' (default) estimates it from a first "
        "prediction, 'off' predicts at the image's own scale",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average the prediction over the image's 8 turns and flips (default: on; "
        "--no-tta predicts once, 8x faster)",
    )


def _add_training_options(p: argparse.ArgumentParser, demo: bool = False) -> None:
    from .models import ARCHS, PRESETS
    from .training.precision import AMP_MODES

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
            choices=PRESETS,
            default=None,
            help="model preset (default: paper on a GPU, tiny otherwise; $GRUUNET_PRESET)",
        )
    p.add_argument("--arch", choices=ARCHS, default="gruunet", help="network")
    p.add_argument("--steps", type=_positive_int, default=None, help="optimisation steps")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="images per step")
    p.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate")
    p.add_argument("--crop", type=_positive_int, default=None, help="training crop size (px)")
    p.add_argument(
        "--val-every", type=_positive_int, default=None, help="validate, checkpoint every N steps"
    )
    p.add_argument(
        "--device",
        default="cpu" if demo else "auto",
        help="auto, cpu, cuda, cuda:N or mps (default: %(default)s; $GRUUNET_DEVICE)",
    )
    p.add_argument(
        "--amp",
        choices=AMP_MODES,
        default="auto",
        help="mixed precision (auto: bf16/fp16 on CUDA, bf16 on CPUs with bfloat16 "
        "instructions, else off)",
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
        "--force", action="store_true", help="replace a run already in OUT (model.pt, ...)"
    )
    p.add_argument(
        "--no-sync-batchnorm",
        action="store_true",
        help="under torchrun: BatchNorm statistics per process instead of over all processes",
    )
    p.add_argument(
        "--figures",
        type=_non_negative_int,
        default=3,
        help="prediction figures to write (default: %(default)s)",
    )


def build_parser(
    commands: dict[str, Callable[[argparse.Namespace], int]],
) -> argparse.ArgumentParser:
    """The ``gruunet-edu`` parser; ``commands`` maps "sample_data", "train", "predict",
    "evaluate" and "demo" to the functions that run them (in :mod:`gruunet_edu.cli`)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="GRUU-Net course tools: sample data, training, prediction, evaluation.",
    )
    from . import __version__
    from .evaluation.postprocess import MIN_SIZE

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
    p.set_defaults(func=commands["sample_data"])

    p = sub.add_parser(
        "train",
        help="train a network (default: preset chosen for the device, synthetic data)",
        description="Train GRUU-Net (or the U-Net baseline). Writes OUT/model.pt (checkpoint), "
        "OUT/history.json, OUT/loss.png, and validation metrics and figures.",
    )
    _add_training_options(p)
    p.add_argument("--out", default="runs/train", help="output folder (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/model.pt")
    p.set_defaults(func=commands["train"])

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
    p.add_argument(
        "--min-size",
        type=_non_negative_int,
        default=MIN_SIZE,
        help="smallest object in px (default: %(default)s)",
    )
    _add_prediction_options(p)
    p.add_argument("--probabilities", action="store_true", help="also write class probabilities")
    p.set_defaults(func=commands["predict"])

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
    _add_prediction_options(p)
    p.set_defaults(func=commands["evaluate"])

    p = sub.add_parser(
        "demo",
        help="sample data, train the tiny preset on the CPU, evaluate, write figures",
        description="End-to-end demo (a few minutes on a laptop CPU): write sample data, train "
        "the tiny preset, evaluate on held-out images, write the checkpoint, metrics and "
        "figures to OUT.",
    )
    _add_training_options(p, demo=True)
    p.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    p.set_defaults(func=commands["demo"], preset=None)

    from .grading import add_parser as add_grade_parser
    from .progress import add_parser as add_progress_parser

    add_progress_parser(sub)  # gruunet-edu progress: a student's exercises (progress.py)
    add_grade_parser(sub)  # gruunet-edu grade: a class's submitted notebooks (grading.py)
    return parser
