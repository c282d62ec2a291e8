"""Tuning benchmark: which tolerance should ``--diameter auto`` resize at, and which seeds
should post-processing take?

    python benchmarks/bench_rescale.py                        # train the tiny recipe, then sweep
    python benchmarks/bench_rescale.py --checkpoint runs/demo/model.pt   # sweep a trained model
    python benchmarks/bench_rescale.py --postprocess --seeds 0 1 2   # seed_h x boundary_power
    python benchmarks/bench_rescale.py --quick                # smoke test (seconds)

``--diameter auto`` (:func:`gruunet_edu.evaluation.rescale.predict_instances_rescaled`) first
predicts an image at its own scale and estimates its nuclei's median diameter; when the
estimate is off the training diameter by more than a factor ``tolerance``, it predicts again,
resized to it. This script scores every tolerance (and the image's own scale) on *tuning*
images, not on the test sets that ``bench_train.py`` reports: 24 images drawn like the training
data (split 5) and 24 of the shift kind (``SyntheticConfig.shift()``, seed 7), each 256 px.
The default ``AUTO_TOLERANCE`` was chosen from its output.

``--postprocess`` instead scores the post-processing's ``seed_h`` and ``boundary_power``
(:func:`gruunet_edu.evaluation.postprocess.probabilities_to_instances`) on the same tuning
images, predicted as ``gruunet-edu predict`` does (resized, averaged over turns and flips), and
prints the mean over the models trained with ``--seeds``; the defaults were chosen from it.
"""

from __future__ import annotations

import argparse
import sys

import torch

from gruunet_edu.data.dataset import shift_samples, synthetic_samples
from gruunet_edu.evaluation.evaluate import evaluate_model
from gruunet_edu.evaluation.metrics import evaluate_dataset
from gruunet_edu.evaluation.postprocess import probabilities_to_instances
from gruunet_edu.evaluation.rescale import AUTO_TOLERANCE, predict_instances_rescaled

TOLERANCES = (1.0, 1.1, 1.2, 1.3, 1.6)
SEED_H = (0.25, 0.5, 1.0)  # post-processing sweep: h of the h-maxima seeds ...
BOUNDARY_POWERS = (0.0, 1.0, 2.0)  # ... and the power of the boundary weighting
TUNING_SPLIT, TUNING_SHIFT_SEED = 5, 7  # never drawn by training or by the test sets


def tuning_sets(n: int, size: int) -> dict[str, list]:
    """The tuning images: ``{"synthetic (tuning)": ..., "shift (tuning)": ...}``."""
    return {
        "synthetic (tuning)": synthetic_samples(n, size, 0, TUNING_SPLIT),
        "shift (tuning)": shift_samples(n, size, TUNING_SHIFT_SEED),
    }


def sweep(model, sets: dict[str, list], tolerances=TOLERANCES) -> dict[str, dict[str, dict]]:
    """``{set: {"own scale" | "auto, tolerance T": metrics}}``, printed as they come."""
    out: dict[str, dict[str, dict]] = {}
    for name, samples in sets.items():
        rows = {"own scale": dict(diameter=None)}
        for t in tolerances:
            rows[f"auto, tolerance {t}"] = dict(diameter="auto", tolerance=t)
        out[name] = {}
        for label, options in rows.items():
            metrics, _ = evaluate_model(model, samples, device="cpu", **options)
            out[name][label] = metrics
            print(
                f"  {name + ', ' + label + ':':<44} AP50 {metrics['ap50']:.3f}  "
                f"mean AP {metrics['mean_ap']:.3f}  F1@0.5 {metrics['f1_50']:.3f}  "
                f"SEG {metrics['seg']:.3f}",
                flush=True,
            )
    return out


def postprocess_sweep(
    models, sets: dict[str, list], seed_hs=SEED_H, powers=BOUNDARY_POWERS
) -> dict[str, dict[str, dict[str, float]]]:
    """``{set: {"seed_h H, boundary_power P": mean metrics over the models}}``, printed.

    Every image is predicted once per model (``diameter="auto"``, ``tta=True``); only the
    post-processing of those probabilities changes from row to row.
    """
    probs = {
        name: [
            [predict_instances_rescaled(m, s.image, "auto", tta=True)[1] for s in samples]
            for m in models
        ]
        for name, samples in sets.items()
    }
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, samples in sets.items():
        out[name] = {}
        truths = [s.labels for s in samples]
        for h in seed_hs:
            for power in powers:
                runs = [
                    evaluate_dataset(
                        truths,
                        [probabilities_to_instances(p, seed_h=h, boundary_power=power) for p in ps],
                    )
                    for ps in probs[name]
                ]
                mean = {k: sum(r[k] for r in runs) / len(runs) for k in ("ap50", "mean_ap", "seg")}
                label = f"seed_h {h}, boundary_power {power}"
                out[name][label] = mean
                print(
                    f"  {name + ', ' + label + ':':<50} AP50 {mean['ap50']:.3f}  "
                    f"mean AP {mean['mean_ap']:.3f}  SEG {mean['seg']:.3f}",
                    flush=True,
                )
    return out


def benchmark(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a trained model (default: train one)")
    parser.add_argument("--quick", action="store_true", help="smoke test on tiny sizes")
    parser.add_argument("--n", type=int, default=24, help="tuning images of each kind")
    parser.add_argument("--seed", type=int, default=0, help="training seed (without --checkpoint)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="train once per seed (mean over them)"
    )
    parser.add_argument(
        "--postprocess", action="store_true", help="sweep seed_h and boundary_power instead"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.seeds and (args.checkpoint or (len(args.seeds) > 1 and not args.postprocess)):
        parser.error("--seeds trains the models --postprocess averages over; not with --checkpoint")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        from gruunet_edu.training.checkpoint import load_model

        model, _ = load_model(args.checkpoint, map_location="cpu")
        models, source = [model.eval()], args.checkpoint
    else:
        from gruunet_edu.training.quick import quick_train

        steps = 2 if args.quick else None
        extra = dict(batch_size=2, crop=32, eval_interval=2) if args.quick else {}
        seeds = args.seeds or [args.seed]
        models = [
            quick_train(
                "tiny", steps, seed=seed, device="cpu", progress=False, verbose=False, **extra
            )[0].eval()
            for seed in seeds
        ]
        source = f"tiny recipe, seed{'s' if len(seeds) > 1 else ''} " + ", ".join(map(str, seeds))
        source += " (2 steps)" if args.quick else ""
    n, size = (1, 96) if args.quick else (args.n, 256)
    sets = tuning_sets(n, size)
    if args.postprocess:
        print(
            f"Model{'s' if len(models) > 1 else ''}: {source}; {n} + {n} tuning images of {size} "
            "px, predicted resized and averaged over turns and flips; mean over the models"
        )
        return postprocess_sweep(models, sets)
    print(
        f"Model: {source}; {n} + {n} tuning images of {size} px; the default tolerance is "
        f"{AUTO_TOLERANCE}"
    )
    return sweep(models[0], sets)


def main(argv: list[str] | None = None) -> int:
    benchmark(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
