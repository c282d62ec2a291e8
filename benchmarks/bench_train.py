"""Training benchmark: how fast does the tiny preset learn on the CPU, and how good does it get?

    python benchmarks/bench_train.py            # full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_train.py --quick    # smoke test (seconds): same code, tiny sizes
    python benchmarks/bench_train.py --recipe former --data former   # levers off, one by one
    python benchmarks/bench_train.py --precision  # CPU seconds per step: float32 vs bfloat16
    python benchmarks/bench_train.py --seeds 0 1 2   # three trainings, mean and range per metric

1. GRUU-Net, ``tiny`` preset, its training recipe (``PRESET_RECIPES["tiny"]``) on synthetic
   nuclei, validated every ``--val-every`` steps: the time until the validation Dice of the
   foreground first reaches 0.90 (training time including the validation passes), the total time,
   then Dice, AP50, mean AP (IoU 0.5..0.95), F1@0.5 and SEG on both held-out test sets
   (``synthetic_test_sets``): "synthetic", drawn from the default task (the training data's,
   less its alike touching neighbours), and "shift", drawn from other parameter ranges
   (``SyntheticConfig.shift()``: DSB-2018-like sizes, dim nuclei under a few saturated ones,
   8/16-bit counts), a generalisation test.
2. The U-Net baseline of the same config (``build_model(config, arch="unet")``, about the same
   number of parameters) trained with the same recipe and the same compute budget: its number of
   steps is the GRUU-Net's step count times the ratio of their measured seconds per step.
3. With a CUDA GPU: training throughput (images/s) of the ``paper`` preset at 256 x 256, with and
   without mixed precision.

The budget is a step count, not a time, so that quality can be measured on a shared machine:
``--steps`` (default: the recipe's). On a quiet machine with 2 CPU cores and bfloat16
instructions (AVX512-BF16, where ``amp="auto"`` trains in bfloat16) the tiny recipe's 600 steps
of 4 crops take 80-126 s with validation every 50 steps (on the same kind of machine on
different days), about the demo's 120 s budget; without bfloat16 instructions (float32) about
twice as long. The lever options switch one lever
back to its former state: ``--recipe former`` (150 steps of 8 crops, lr 3e-3, float32, the
former recipe at the former budget of 140 steps), ``--data former`` (hidden slivers kept, seams
10-35 % darker), ``--augment former`` (no crop renormalised on its own range), ``--target
former`` (the one-pixel boundary also where nuclei touch: ``contact_radius=0``, see
:func:`gruunet_edu.data.targets.three_class`), ``--alike 0`` (no touching nuclei drawn alike in
brightness: the training data are then the test set's default task); the ``postprocess
(former)`` rows seed with the former ``seed_h=0.25, boundary_power=2``, chosen for networks
trained on the one-pixel target.

Every test image is predicted as ``gruunet-edu predict`` does (``diameter="auto"``, see
:mod:`gruunet_edu.evaluation.rescale`; ``tta=True``, see :mod:`gruunet_edu.evaluation.tta`): a
first prediction estimates its nucleus diameter, an image whose estimate is off the training
data's by more than ``rescale.AUTO_TOLERANCE`` is predicted again, resized to it, and every
prediction is the average over the image's eight turns and flips. The ``no TTA`` rows predict
once per scale; the ``own scale`` rows predict every image once, at its own scale (the course
notebooks' ``evaluate_model`` default).

One training run is one draw: at this budget the same recipe with another seed moves AP50 by
up to about 0.03 on the synthetic test set and 0.05 on the shift test set for GRUU-Net, and by
0.08 and 0.21 for the U-Net (the ranges of the three-seed run the README quotes).
``--seeds`` trains once per seed on the same test sets (``--seed`` draws them) and prints every
metric's mean and range; compare levers on that mean, not on one run. The goals are judged on
the mean.

Goals (synthetic test set): AP50 >= 0.90, mean AP >= 0.70, SEG >= 0.85. Timings depend on the
machine and on what else runs on it; the script prints the thread count.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import torch

from gruunet_edu.data.augment import AugmentConfig
from gruunet_edu.data.dataset import synthetic_test_sets
from gruunet_edu.data.synthetic import SyntheticConfig
from gruunet_edu.data.synthetic_config import TRAINING_ALIKE_FRACTION
from gruunet_edu.evaluation.evaluate import evaluate_model
from gruunet_edu.models import GRUUNetConfig, build_model, count_parameters
from gruunet_edu.training import History, recipe, resolve_amp, train
from gruunet_edu.training.device import set_seed
from gruunet_edu.training.losses import make_loss
from gruunet_edu.training.precision import autocast, cpu_has_bf16
from gruunet_edu.training.quick import synthetic_data
from gruunet_edu.viz.plots import error_examples

DICE_TARGET = 0.90
GOALS = {"ap50": 0.90, "mean_ap": 0.70, "seg": 0.85}  # on the synthetic test set
QUIET_STEPS_PER_S = 600 / 100  # tiny recipe, bfloat16, 2 CPU cores, nothing else running (80-126 s)

# The sample data and augmentation before the realistic-data levers (for the lever table):
# one size range, linear brightness 0.3-0.8, no seams, no illumination field, no debris.
LEGACY_DATA = dict(
    radius=(7.0, 13.0),
    scale=(1.0, 1.0),
    cluster_fraction=0.35,
    touch_overlap=0.12,
    seam=(0.0, 0.0),
    brightness=(0.3, 0.8),
    mitotic_brightness=(1.3, 1.9),
    illumination=0.0,
    debris=0.0,
    min_visible=0.0,
)
LEGACY_AUGMENT = dict(
    intensity_scale=(0.8, 1.25), intensity_offset=(-0.1, 0.1), gamma=(0.8, 1.25), own_range_p=0.0
)
# A stronger intensity augmentation, measured and rejected (AP50 0.70 vs 0.76 at 140 steps).
STRONG_AUGMENT = dict(
    intensity_scale=(0.35, 1.3), intensity_offset=(-0.05, 0.05), gamma=(0.6, 1.6), own_range_p=0.0
)
# The sample data before slivers were dropped and seams deepened.
FORMER_DATA = dict(min_visible=0.0, seam=(0.1, 0.35))
# The augmentation before crops were renormalised on their own range.
FORMER_AUGMENT = dict(own_range_p=0.0)
# The tiny recipe before bfloat16 and the smaller batches (140 steps: its 120 s budget).
FORMER_RECIPE = dict(steps=140, batch_size=8, lr=3e-3, amp="off")
# The post-processing before the widened contact boundary (the seeds' h and boundary weighting).
FORMER_POSTPROCESS = dict(seed_h=0.25, boundary_power=2.0)
# The training target before the widened contact boundary (one pixel on either side).
FORMER_TARGET = dict(contact_radius=0)
# How the test images are predicted: as `gruunet-edu predict` does by default.
PREDICT = dict(device="cpu", diameter="auto", tta=True)


def training_data(
    crop,
    seed,
    data="default",
    augment="default",
    quick=False,
    target="default",
    alike=TRAINING_ALIKE_FRACTION,
):
    """(train, val) datasets of ``training.quick.synthetic_data``, with the lever choices
    (``alike``: the share of touching nuclei drawn alike, ``SyntheticConfig.alike_fraction``)."""
    former = {"legacy": LEGACY_DATA, "former": FORMER_DATA}.get(data, {})
    config = SyntheticConfig.training(**former, alike_fraction=alike)
    augments = {"legacy": LEGACY_AUGMENT, "strong": STRONG_AUGMENT, "former": FORMER_AUGMENT}
    aug = AugmentConfig(**augments.get(augment, {}))
    pool, n_val, val_size = (2, 1, 32) if quick else (64, 8, 128)
    options = FORMER_TARGET if target == "former" else {}
    return synthetic_data(
        crop, seed, pool=pool, n_val=n_val, val_size=val_size, augment=aug, config=config, **options
    )


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


def run_one(arch, config, model_config, train_set, val_set, tests, seed, save=None):
    set_seed(seed)
    model = build_model(model_config, arch=arch)
    history = train(model, train_set, val_set, config, model_config=model_config)
    if save:
        Path(save).mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), Path(save) / f"{arch}.pt")
    metrics = {}
    for name, samples in tests.items():
        # as `gruunet-edu predict` does: resized to the training nucleus size where it is off,
        # averaged over the eight turns and flips
        metrics[name], preds = evaluate_model(model, samples, **PREDICT)
        metrics[name]["errors"] = error_counts(samples, preds)
        metrics[f"{name}, no TTA"], _ = evaluate_model(model, samples, **{**PREDICT, "tta": False})
        metrics[f"{name}, own scale"], _ = evaluate_model(model, samples, device="cpu")
        metrics[f"{name}, postprocess (former)"], _ = evaluate_model(
            model, samples, **PREDICT, **FORMER_POSTPROCESS
        )
    return model, history, metrics


def error_counts(samples, preds, tau: float = 0.5) -> dict[str, dict[str, int]]:
    """What the unmatched objects at IoU >= ``tau`` are (``viz.plots.error_examples``'s names):
    ``{"missed": {name: count}, "spurious": {name: count}}``."""
    errors = error_examples([s.image for s in samples], [s.labels for s in samples], preds, tau)
    out: dict[str, dict[str, int]] = {"missed": {}, "spurious": {}}
    for e in errors:
        out[e["kind"]][e["name"]] = out[e["kind"]].get(e["name"], 0) + 1
    return out


def _errors_line(errors: dict[str, dict[str, int]]) -> str:
    parts = []
    for kind, names in errors.items():
        detail = ", ".join(f"{n} {name}" for name, n in sorted(names.items(), key=lambda x: -x[1]))
        parts.append(f"{kind} {sum(names.values())}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts)


def report(name, model, history, metrics) -> None:
    reach, step_reach = dice_reached(history)
    reach_text = f"{reach:6.1f} s" if math.isfinite(reach) else "   never"
    print(
        f"{name:<22} params {count_parameters(model):>8,d} | val Dice >= {DICE_TARGET} after "
        f"{reach_text} (step {step_reach}) | {history.step[-1]} steps in {history.time[-1]:.1f} s "
        f"| final val Dice {history.val_dice[-1]:.3f}"
    )
    for test_name, m in metrics.items():
        print(
            f"  {test_name + ':':<34} AP50 {m['ap50']:.3f}  mean AP {m['mean_ap']:.3f}  "
            f"F1@0.5 {m['f1_50']:.3f}  SEG {m['seg']:.3f}  Dice {m['dice']:.3f}  "
            f"({m['n_images']} images, {m['n_true']} nuclei, {m['n_pred']} predicted)"
        )
        if "errors" in m:
            print(f"  {'':<34} at IoU 0.5: {_errors_line(m['errors'])}")


def seconds_per_step(arch, model_config, train_set, config, steps: int = 12) -> float:
    """Mean seconds per training step over ``steps + 1`` steps on real batches (the first, slower
    step included)."""
    set_seed(config.seed)
    model = build_model(model_config, arch=arch)
    probe = config.replace(
        steps=steps + 1, eval_interval=steps + 1, checkpoint=None, progress=False, verbose=False
    )
    history = train(model, train_set, None, probe, model_config=model_config)
    return history.time[-1] / (steps + 1)


def precision_table(model_config, train_set, config, steps: int = 6) -> dict[str, float]:
    """Seconds per tiny-preset training step on the CPU in float32 (NCHW, NHWC) and in the
    CPU's bfloat16 autocast (NHWC), measured with the training loop on real batches."""
    rows = {
        "float32, NCHW": config.replace(amp="off", channels_last=False),
        "float32, channels-last": config.replace(amp="off", channels_last=True),
        "bfloat16 autocast, channels-last": config.replace(amp="bf16"),
    }
    print(
        f"CPU step time, tiny preset, batch {config.batch_size} x {config.crop}^2, "
        f"{torch.get_num_threads()} threads; bfloat16 instructions: "
        + ("yes (amp 'auto' = bfloat16)" if cpu_has_bf16() else "no (amp 'auto' = float32)")
    )
    out = {}
    for name, cfg in rows.items():
        out[name] = seconds_per_step("gruunet", model_config, train_set, cfg, steps)
        print(f"  {name:<34} {out[name]:.3f} s/step")
    return out


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


SUMMARY_METRICS = (("AP50", "ap50"), ("mean AP", "mean_ap"), ("F1@0.5", "f1_50"), ("SEG", "seg"))


def _spread(values: list[float]) -> str:
    """``mean`` of one value, ``mean (min-max)`` of several."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ({min(values):.3f}-{max(values):.3f})"


def seed_summary(runs: list[dict], arch: str) -> dict[str, dict[str, float]]:
    """Mean of every metric of ``arch`` over the runs (one per training seed), per test set."""
    tests = runs[0][arch]["test"]
    return {
        name: {
            k: sum(r[arch]["test"][name][k] for r in runs) / len(runs) for _, k in SUMMARY_METRICS
        }
        for name in tests
    }


def print_seed_summary(runs: list[dict], seeds: list[int], names: dict[str, str]) -> None:
    """One line per network and test set: every metric's mean (min-max) over the seeds."""
    print(f"\nOver training seeds {', '.join(map(str, seeds))} (mean, min-max):")
    for arch, label in names.items():
        if arch not in runs[0]:
            continue
        for test in seed_summary(runs, arch):
            cells = "  ".join(
                f"{title} {_spread([r[arch]['test'][test][k] for r in runs])}"
                for title, k in SUMMARY_METRICS
            )
            print(f"  {label + ', ' + test + ':':<32} {cells}")


def benchmark(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the report, return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test on tiny sizes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test sets (and training)")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="train once per seed (on the same test sets) and print mean and range",
    )
    parser.add_argument("--val-every", type=int, default=50, help="steps between validations")
    parser.add_argument("--n-test", type=int, default=16, help="held-out test images (256 px)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-unet", action="store_true", help="skip the U-Net baseline")
    parser.add_argument("--steps", type=int, default=None, help="training steps (the budget)")
    parser.add_argument(
        "--unet-steps", type=int, default=None, help="U-Net steps (default: same cost)"
    )
    parser.add_argument("--save", default=None, help="folder for the trained weights (.pt)")
    parser.add_argument("--skip-gruunet", action="store_true", help="train only the U-Net")
    parser.add_argument("--data", choices=("default", "former", "legacy"), default="default")
    parser.add_argument(
        "--augment", choices=("default", "former", "legacy", "strong"), default="default"
    )
    parser.add_argument("--recipe", choices=("default", "former"), default="default")
    parser.add_argument("--target", choices=("default", "former"), default="default")
    parser.add_argument(
        "--alike",
        type=float,
        default=TRAINING_ALIKE_FRACTION,
        metavar="FRACTION",
        help="share of touching nuclei drawn alike in brightness in the training data "
        f"(default {TRAINING_ALIKE_FRACTION}; 0: the data before alike neighbours)",
    )
    parser.add_argument("--log", default=None, help="folder for the histories (JSON, per epoch)")
    parser.add_argument(
        "--precision", action="store_true", help="only time CPU steps: float32 vs bfloat16"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = args.seeds or [args.seed]

    preset = "tiny"
    model_config = GRUUNetConfig.preset(preset)
    if args.quick:
        config = recipe(preset, steps=2, batch_size=2, crop=32, eval_interval=2)
        tests = synthetic_test_sets(1, 96, args.seed)
    else:
        config = recipe(preset, eval_interval=args.val_every)
        if args.recipe == "former":
            config = config.replace(**FORMER_RECIPE)
        if args.steps:
            config = config.replace(steps=args.steps, eval_interval=min(args.val_every, args.steps))
        tests = synthetic_test_sets(args.n_test, 256, args.seed)
    config = config.replace(progress=False, verbose=False, device="cpu")
    if args.precision:
        train_set, _ = training_data(
            config.crop, seeds[0], args.data, args.augment, args.quick, args.target, args.alike
        )
        return {
            "precision": precision_table(
                model_config, train_set, config.replace(seed=seeds[0]), 2 if args.quick else 6
            )
        }

    estimate = (
        f"about {config.total_steps / QUIET_STEPS_PER_S:.0f} s on a quiet 2-core CPU with bfloat16"
        if args.recipe == "default"
        else "float32"
    )
    n_val = 1 if args.quick else 8
    print(
        f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} CPU threads; "
        f"preset '{preset}': {config.total_steps} steps of {config.batch_size} x {config.crop}^2 "
        f"crops ({estimate}), "
        f"lr {config.lr}, data '{args.data}' (alike neighbours {args.alike:g}), augmentation "
        f"'{args.augment}', target "
        f"'{args.target}', validation on "
        f"{n_val} images every {config.eval_interval} steps; test sets (seed {args.seed}): "
        + ", ".join(f"{k} ({len(v)} images)" for k, v in tests.items())
        + f"; training seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    )
    runs: list[dict] = []
    unet_steps: int | None = 2 if args.quick else args.unet_steps
    for seed in seeds:
        suffix = f", seed {seed}" if len(seeds) > 1 else ""
        train_set, val_set = training_data(
            config.crop, seed, args.data, args.augment, args.quick, args.target, args.alike
        )
        seeded = config.replace(seed=seed)
        tag = f"_seed{seed}" if len(seeds) > 1 else ""
        log = (
            (lambda name, t=tag: str(Path(args.log) / f"{name}{t}_history.json"))
            if args.log
            else None
        )
        save = str(Path(args.save) / f"seed{seed}") if args.save and len(seeds) > 1 else args.save
        results: dict = {}
        if not args.skip_gruunet:
            model, history, metrics = run_one(
                "gruunet",
                seeded.replace(history_path=log("gruunet") if log else None),
                model_config,
                train_set,
                val_set,
                tests,
                seed,
                save,
            )
            report("GRUU-Net (tiny)" + suffix, model, history, metrics)
            results["gruunet"] = {"history": history.to_dict(), "test": metrics}
            results["time_to_dice"] = time_to_dice(history)

        if not args.no_unet:
            if unet_steps is None:  # same compute: measured once, on the first seed's data
                gru_step = seconds_per_step("gruunet", model_config, train_set, seeded)
                unet_step = seconds_per_step("unet", model_config, train_set, seeded)
                unet_steps = max(1, round(config.total_steps * gru_step / unet_step))
                print(
                    f"U-Net: {unet_step:.3f} s/step vs GRUU-Net {gru_step:.3f} s/step "
                    f"(measured now) -> {unet_steps} steps for the same compute"
                )
            unet_config = seeded.replace(
                steps=unet_steps,
                eval_interval=min(config.eval_interval, unet_steps),
                history_path=log("unet") if log else None,
            )
            unet, uhist, umetrics = run_one(
                "unet", unet_config, model_config, train_set, val_set, tests, seed, save
            )
            report("U-Net (same budget)" + suffix, unet, uhist, umetrics)
            results["unet"] = {"history": uhist.to_dict(), "test": umetrics}
        runs.append(results)

    names = {"gruunet": "GRUU-Net", "unet": "U-Net"}
    if len(seeds) > 1:
        print_seed_summary(runs, seeds, names)
    if torch.cuda.is_available():
        gpu_throughput(steps=3 if args.quick else 20, batch=2 if args.quick else 16)
    else:
        print("\nNo CUDA GPU: paper-preset throughput (images/s, with and without AMP) skipped.")
    results = {**runs[0], "runs": runs, "seeds": seeds}
    if "gruunet" not in results:
        return results
    synthetic = seed_summary(runs, "gruunet")["synthetic"]  # the mean over the seeds
    results["targets_met"] = all(synthetic[k] >= v for k, v in GOALS.items())
    if not args.quick:
        goals = ", ".join(f"{k} >= {v}" for k, v in GOALS.items())
        over = f" (mean over {len(seeds)} seeds)" if len(seeds) > 1 else ""
        print(
            f"\nGoals on the synthetic test set ({goals}) after {config.total_steps} steps{over}: "
            + ("met" if results["targets_met"] else "not met")
        )
    return results


def main(argv: list[str] | None = None) -> int:
    benchmark(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
