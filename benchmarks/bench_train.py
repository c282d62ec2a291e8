"""Training benchmark: how fast does the tiny preset learn on the CPU, and how good does it get?

    python benchmarks/bench_train.py            # full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_train.py --quick    # smoke test (seconds): same code, tiny sizes

1. GRUU-Net, ``tiny`` preset, its training recipe (``PRESET_RECIPES["tiny"]``) on synthetic
   nuclei, validated every ``--val-every`` steps: the time until the validation Dice of the
   foreground first reaches 0.90 (training time including the validation passes), the total time,
   then Dice, AP50, mean AP (IoU 0.5..0.95), F1@0.5 and SEG on held-out synthetic test images.
2. The U-Net baseline of the same config (``build_model(config, arch="unet")``, about the same
   number of parameters) trained with the same recipe and the same time budget: its number of
   steps is what fits into the GRUU-Net's training time (estimated from a few timed steps, with the
   time as a hard limit as well).
3. With a CUDA GPU: training throughput (images/s) of the ``paper`` preset at 256 x 256, with and
   without mixed precision.

Targets on 2 CPU cores: validation Dice >= 0.90 within 120 s, AP50 >= 0.80 on the test images.
Timings depend on the machine and on what else runs on it; the script prints the thread count.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import torch

from gruunet_edu.data.dataset import synthetic_samples
from gruunet_edu.evaluation.evaluate import evaluate_model
from gruunet_edu.models import GRUUNetConfig, build_model, count_parameters
from gruunet_edu.training import History, recipe, resolve_amp, synthetic_data, train
from gruunet_edu.training.device import set_seed
from gruunet_edu.training.losses import make_loss
from gruunet_edu.training.precision import autocast

DICE_TARGET = 0.90


def dice_reached(history: History, target: float = DICE_TARGET) -> tuple[float, int | None]:
    """Training seconds and step at which the validation Dice first reached ``target``
    (NaN and None if never)."""
    for t, s, d in zip(history.time, history.step, history.val_dice, strict=True):
        if d >= target:
            return t, s
    return math.nan, None


def time_to_dice(history: History, target: float = DICE_TARGET) -> float:
    """Training seconds until the validation Dice first reached ``target`` (NaN if never)."""
    return dice_reached(history, target)[0]


def run_one(arch, config, model_config, train_set, val_set, test, seed):
    set_seed(seed)
    model = build_model(model_config, arch=arch)
    history = train(model, train_set, val_set, config, model_config=model_config)
    metrics, _ = evaluate_model(model, test, device="cpu")
    return model, history, metrics


def report(name, model, history, metrics) -> None:
    reach, step_reach = dice_reached(history)
    reach_text = f"{reach:6.1f} s" if math.isfinite(reach) else "   never"
    print(
        f"{name:<22} params {count_parameters(model):>8,d} | val Dice >= {DICE_TARGET} after "
        f"{reach_text} (step {step_reach}) | {history.step[-1]} steps in {history.time[-1]:.1f} s "
        f"| final val Dice {history.val_dice[-1]:.3f}"
    )
    print(
        f"{'':<22} test: Dice {metrics['dice']:.3f}  AP50 {metrics['ap50']:.3f}  "
        f"mean AP {metrics['mean_ap']:.3f}  F1@0.5 {metrics['f1_50']:.3f}  "
        f"SEG {metrics['seg']:.3f}  ({metrics['n_images']} images, {metrics['n_true']} nuclei)"
    )


def seconds_per_step(arch, model_config, train_set, config, steps: int = 4) -> float:
    """Mean seconds per training step (after one warm-up step), measured on real batches."""
    set_seed(config.seed)
    model = build_model(model_config, arch=arch)
    probe = config.replace(
        steps=steps + 1, eval_interval=steps + 1, checkpoint=None, progress=False, verbose=False
    )
    history = train(model, train_set, None, probe, model_config=model_config)
    return history.time[-1] / (steps + 1)


def _train_step(model, opt, scaler, loss_fn, x, y, device, dtype) -> None:
    with autocast(device, dtype):
        logits = model(x)
    loss = loss_fn(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def gpu_throughput(batch: int = 16, size: int = 256, steps: int = 20) -> None:
    device = torch.device("cuda")
    print(f"\nGPU: {torch.cuda.get_device_name(device)}; paper preset, {batch} x {size}^2 batches")
    config = GRUUNetConfig.preset("paper")
    loss_fn = make_loss()
    for amp in ("off", "auto"):
        dtype = resolve_amp(amp, device)
        torch.manual_seed(0)
        model = build_model(config).to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        x = torch.randn(batch, 1, size, size, device=device).contiguous(
            memory_format=torch.channels_last
        )
        y = torch.randint(0, 3, (batch, size, size), device=device)

        args = (model, opt, scaler, loss_fn, x, y, device, dtype)
        for _ in range(3):
            _train_step(*args)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            _train_step(*args)
        torch.cuda.synchronize()
        rate = batch * steps / (time.perf_counter() - t)
        label = "off" if dtype is None else str(dtype).replace("torch.", "")
        print(f"  AMP {label:<9}: {rate:8.1f} images/s")


def benchmark(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the report, return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test on tiny sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-every", type=int, default=10, help="steps between validations")
    parser.add_argument("--n-test", type=int, default=8, help="held-out test images (256 px)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-unet", action="store_true", help="skip the U-Net baseline")
    parser.add_argument("--log", default=None, help="folder for the histories (JSON, per epoch)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    preset = "tiny"
    model_config = GRUUNetConfig.preset(preset)
    if args.quick:
        config = recipe(preset, steps=2, batch_size=2, crop=32, eval_interval=2)
        train_set, val_set = synthetic_data(crop=32, seed=args.seed, pool=2, n_val=1, val_size=32)
        test = synthetic_samples(1, 96, args.seed, "test")
    else:
        config = recipe(preset, eval_interval=args.val_every)
        train_set, val_set = synthetic_data(crop=config.crop, seed=args.seed)
        test = synthetic_samples(args.n_test, 256, args.seed, "test")
    config = config.replace(seed=args.seed, device="cpu", progress=False, verbose=False)

    print(
        f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} CPU threads; "
        f"preset '{preset}': {config.total_steps} steps of {config.batch_size} x {config.crop}^2 "
        f"crops, lr {config.lr}, validation on {len(val_set)} images every {config.eval_interval} "
        f"steps; test on {len(test)} held-out images"
    )
    log = (lambda name: str(Path(args.log) / f"{name}_history.json")) if args.log else None
    model, history, metrics = run_one(
        "gruunet",
        config.replace(history_path=log("gruunet") if log else None),
        model_config,
        train_set,
        val_set,
        test,
        args.seed,
    )
    report("GRUU-Net (tiny)", model, history, metrics)
    budget = history.time[-1]
    results: dict = {"gruunet": {"history": history.to_dict(), "test": metrics}}

    if not args.no_unet:
        if args.quick:
            per_step, steps = budget / 2, 2
        else:
            per_step = seconds_per_step("unet", model_config, train_set, config)
            steps = max(1, int(budget / per_step))
        unet_config = config.replace(
            steps=steps,
            eval_interval=min(config.eval_interval, steps),
            max_time=budget,
            history_path=log("unet") if log else None,
        )
        print(f"U-Net: {per_step:.3f} s/step -> {steps} steps in the same {budget:.1f} s budget")
        unet, uhist, umetrics = run_one(
            "unet", unet_config, model_config, train_set, val_set, test, args.seed
        )
        report("U-Net (same budget)", unet, uhist, umetrics)
        results["unet"] = {"history": uhist.to_dict(), "test": umetrics}

    if torch.cuda.is_available():
        gpu_throughput(steps=3 if args.quick else 20, batch=2 if args.quick else 16)
    else:
        print("\nNo CUDA GPU: paper-preset throughput (images/s, with and without AMP) skipped.")
    results["time_to_dice"] = time_to_dice(history)
    results["targets_met"] = results["time_to_dice"] <= 120 and metrics["ap50"] >= 0.80
    if not args.quick:
        print(
            f"\nTargets (2 CPU cores): Dice >= {DICE_TARGET} within 120 s, AP50 >= 0.80: "
            + ("met" if results["targets_met"] else "not met")
        )
    return results


def main(argv: list[str] | None = None) -> int:
    benchmark(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
