"""Command line: ``gruunet-edu sample-data | train | predict | evaluate | demo``.

Every command has ``--help``. Without arguments ``train`` trains the preset chosen for the device
(``tiny`` on a CPU, ``paper`` on a GPU) on synthetic sample data; ``demo`` writes sample data,
trains the ``tiny`` preset on it, evaluates on the held-out test split and says where the figures
and the metrics are. Mistakes (a bad argument, a missing or incompatible checkpoint, an image of
the wrong shape) print one clear line and exit with a non-zero status, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import cli_files, cli_parser
from .cli_files import PROG, CLIError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# ------------------------------------------------------------------------------- helpers


def _use_agg() -> None:
    """Figures are written to files: use the non-interactive backend (no display needed)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


# ------------------------------------------------------------------------------- commands


def cmd_sample_data(args: argparse.Namespace) -> int:
    cli_files.output_dir(args.out)
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
    from .models.checks import min_input_size
    from .training.device import choose_device, default_preset, set_seed
    from .training.distributed import is_main_process
    from .training.loop import train
    from .training.quick import synthetic_data
    from .training.recipes import recipe
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
            "eval_interval": args.val_every,
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
        sync_batchnorm=not getattr(args, "no_sync_batchnorm", False),
        **overrides,
    )
    if config.eval_interval > config.total_steps:
        config = config.replace(eval_interval=config.total_steps)
    model_config = GRUUNetConfig.preset(preset)
    smallest = min_input_size(model_config.size_multiple)
    if config.crop < smallest:
        raise CLIError(
            f"--crop {config.crop} is too small for the '{preset}' preset: it needs at least "
            f"{smallest} px (best a multiple of {model_config.size_multiple})"
        )
    set_seed(args.seed)
    model = build_model(model_config, arch=args.arch)
    if args.data is None:
        train_set, val_set = synthetic_data(crop=config.crop, seed=args.seed)
        val_samples = val_set.samples
        source = "synthetic nuclei generated on the fly"
    else:
        train_samples, val_samples = cli_files.train_val_samples(Path(args.data), args.seed)
        cli_files.check_samples(train_samples + val_samples, model_config.size_multiple, args.data)
        length = max(len(train_samples), config.batch_size * config.eval_interval)
        train_set = NucleiDataset(
            train_samples, crop=config.crop, augment=True, seed=args.seed, length=length
        )
        val_set = NucleiDataset(val_samples)
        source = (
            f"{args.data} ({len(train_samples)} training, {len(val_samples)} validation images)"
        )
    if is_main_process():  # under torchrun: rank 0 speaks and writes
        print(
            f"Training a '{preset}' {args.arch} for {config.total_steps} steps on {source}; "
            f"writing to {out}/"
        )
        out.mkdir(parents=True, exist_ok=True)
    history = train(model, train_set, val_set, config, model_config=model_config)
    if not is_main_process():
        return model, history, val_samples, {"checkpoint": checkpoint, "curves": None}
    curves = save_figure(plot_history(history, title=f"{args.arch} '{preset}'"), out / "loss.png")
    return model, history, val_samples, {"checkpoint": checkpoint, "curves": curves}


def cmd_train(args: argparse.Namespace) -> int:
    out = cli_files.output_dir(args.out)
    cli_files.refuse_finished_run(out, args)
    _use_agg()
    model, history, val_samples, paths = _run_training(args, out, args.preset, args.device)
    if paths["curves"] is None:  # another process than rank 0 of a torchrun job
        return EXIT_INTERRUPTED if history.interrupted else 0
    if history.interrupted:
        if len(history):
            print(
                f"Interrupted: the checkpoint of step {history.step[-1]} is kept at "
                f"{paths['checkpoint']}; continue with --resume."
            )
        else:
            print("Interrupted before the first checkpoint: no checkpoint was written.")
        return EXIT_INTERRUPTED
    report = cli_files.write_evaluation(model, val_samples, out, None, args.figures, prefix="val_")
    print("Validation set:")
    cli_files.print_metrics(report["metrics"])
    print(f"Checkpoint: {paths['checkpoint']}")
    print(f"History:    {out / 'history.json'} (loss curves: {paths['curves']})")
    print(f"Metrics:    {report['paths'][0]}")
    print(f"Figures:    {', '.join(str(p) for p in report['paths'][1:])}")
    return 0


def _diameter_note(scale: dict) -> str:
    if scale["diameter"] is None:
        return ""
    how = "estimated" if scale["estimated"] else "given"
    resized = f", resized x{scale['factor']:.2f}" if scale["factor"] != 1.0 else ""
    return f" (diameter {scale['diameter']:.1f} px {how}{resized})"


def cmd_predict(args: argparse.Namespace) -> int:
    out = cli_files.output_dir(args.out)
    inputs = cli_files.image_files(args.images, out)
    stems = cli_files.output_stems(inputs)
    _use_agg()
    import numpy as np
    import tifffile

    from .data.readers import read_image
    from .evaluation.rescale import predict_instances_rescaled
    from .training.device import choose_device
    from .viz.plots import prediction_figure, save_figure

    device = choose_device(args.device)
    model, _ = cli_files.load_model(Path(args.checkpoint), device)
    written = sorted(p.name for p in cli_files.written_by_predict(out))
    for path, stem in zip(inputs, stems, strict=True):
        image = read_image(path)  # RGB(A) becomes grey, as for train and evaluate
        try:
            labels, probs, scale = predict_instances_rescaled(
                model, image, args.diameter, device=device, tta=args.tta, min_size=args.min_size
            )
        except ValueError as err:
            raise CLIError(f"{path}: {err}") from None
        outputs = [out / f"{stem}_labels.tif", out / f"{stem}_prediction.png"]
        if args.probabilities:
            outputs.append(out / f"{stem}_probabilities.tif")
        written = sorted({*written, *(p.name for p in outputs)})
        # the list of outputs is written before the outputs themselves
        cli_files.write_json(out / cli_files.PREDICT_MANIFEST, {"files": written})
        tifffile.imwrite(outputs[0], labels)
        if args.probabilities:
            tifffile.imwrite(outputs[2], probs.astype(np.float32), photometric="minisblack")
        fig = prediction_figure(image, None, labels, title=path.name)
        figure_path = save_figure(fig, outputs[1])
        note = _diameter_note(scale)
        print(f"{path}: {int(labels.max())} nuclei{note} -> {outputs[0]}, {figure_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    out = cli_files.output_dir(args.out)
    _use_agg()
    from .training.device import choose_device

    device = choose_device(args.device)
    model, _ = cli_files.load_model(Path(args.checkpoint), device)
    data = Path(args.data) if args.data else None
    samples = cli_files.test_samples(data, args.n, args.size, args.seed)
    where = data if data else f"{len(samples)} synthetic test images"
    if data is not None:
        cli_files.check_samples(samples, model.config.size_multiple, data)
    print(f"Evaluating {args.checkpoint} on {where}")
    report = cli_files.write_evaluation(
        model, samples, out, device, args.figures, diameter=args.diameter, tta=args.tta
    )
    cli_files.print_metrics(report["metrics"])
    print(f"Metrics: {report['paths'][0]}")
    print(f"Figures: {', '.join(str(p) for p in report['paths'][1:])}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _use_agg()
    from .data.sample_data import write_sample_dataset

    start = time.perf_counter()
    out = cli_files.output_dir(args.out)
    cli_files.refuse_finished_run(out, args)
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
    test = cli_files.read(paths["test"])
    print("Held-out test set (the default task; training adds alike touching neighbours):")
    report = cli_files.write_evaluation(model, test, out, None, args.figures)
    cli_files.print_metrics(report["metrics"])
    print("Shift test set (other sizes, brightness, illumination, 8/16-bit; generalisation):")
    shift = cli_files.write_evaluation(
        model, cli_files.read(paths["shift"]), out, None, 0, prefix="shift_"
    )
    cli_files.print_metrics(shift["metrics"])
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    print(f"Checkpoint:  {train_paths['checkpoint']}")
    print(f"Loss curves: {train_paths['curves']}")
    print(f"Metrics:     {report['paths'][0]} (shift test: {shift['paths'][0]})")
    print(f"Figure:      {report['paths'][1]}")
    print(f"Errors:      {report['paths'][-1]}")
    return 0


# ------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``gruunet-edu`` parser, its commands bound to the functions of this module."""
    commands = {
        "sample_data": cmd_sample_data,
        "train": cmd_train,
        "predict": cmd_predict,
        "evaluate": cmd_evaluate,
        "demo": cmd_demo,
    }
    return cli_parser.build_parser(commands)


def interrupted_while_importing(err: BaseException) -> bool:
    """Whether ``err`` is a Ctrl-C, also one that Python wrapped while a class was being
    created (``RuntimeError: Error calling __set_name__ ...`` with the KeyboardInterrupt as its
    cause, seen while matplotlib or torch is imported)."""
    while err is not None:
        if isinstance(err, KeyboardInterrupt):
            return True
        err = err.__cause__ or err.__context__
    return False


def _handled_interrupt() -> int:
    """The exit status of a handled Ctrl-C.

    CPython remembers a KeyboardInterrupt that passed through code run by ``exec`` (dataclasses
    and namedtuples do that while torch is imported) and then ends the process with SIGINT
    (status -2) although the interrupt was handled; a trivial ``exec`` resets that memory."""
    exec("None")
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    try:  # the parser's choices come from the model presets, which import torch (seconds)
        parser = build_parser()
    except (KeyboardInterrupt, RuntimeError) as err:
        if not interrupted_while_importing(err):
            raise
        print(f"{PROG}: interrupted while starting", file=sys.stderr)
        return _handled_interrupt()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:  # importing torch takes seconds: Ctrl-C then ends with one line, not a traceback
        from .data.readers import DataFormatError
        from .training.checkpoint import CheckpointError
        from .training.loop import TrainingDiverged
    except (KeyboardInterrupt, RuntimeError) as err:
        if not interrupted_while_importing(err):
            raise
        print(f"{PROG} {args.command}: interrupted while starting", file=sys.stderr)
        return _handled_interrupt()

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return _handled_interrupt()
    except (CLIError, CheckpointError, DataFormatError, TrainingDiverged) as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, OSError) as err:
        if os.environ.get("GRUUNET_DEBUG"):
            raise
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as err:  # a Ctrl-C that Python wrapped while a class was being created
        if not interrupted_while_importing(err):
            raise
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return _handled_interrupt()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
