"""How fast the data pipeline produces training images, compared with what training consumes.

Measures, on the CPU threads given (default: 1 for data, as a DataLoader worker would use):

1. raw generation: ``make_nuclei`` of 256 x 256 images (image + labels), images/s;
2. building a pooled dataset (``pool`` images generated up front);
3. dataset items: random crop + augmentation + three-class target, from the pool and generated
   on the fly, and whole 256 x 256 items;
4. the batches the training loop draws (``training.batches.train_batches``: the seeded
   ``StepBatchSampler`` in a DataLoader, num_workers=0);
5. the training step of the ``tiny`` preset (forward + backward + Adam, batch 8 of 128 x 128
   crops, 2 threads) in images/s, unless ``--train-rate`` states it or ``--train-steps 0``.

The data pipeline keeps up when its images/s exceed the training step's. Usage:

    python benchmarks/bench_data.py            # full run (about a minute on 2 CPU cores)
    python benchmarks/bench_data.py --quick    # a few seconds, no training measurement
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch

from gruunet_edu.data import SyntheticNucleiDataset, make_nuclei
from gruunet_edu.training.batches import train_batches
from gruunet_edu.training.config import TrainConfig


def _rate(fn: Callable[[int], object], n: int, warmup: int = 1) -> float:
    """Calls per second of fn(i) over n calls after `warmup` calls."""
    for i in range(warmup):
        fn(i)
    start = time.perf_counter()
    for i in range(n):
        fn(warmup + i)
    return n / (time.perf_counter() - start)


def _line(label: str, value: float, unit: str = "images/s", note: str = "") -> None:
    print(f"{label:<42}{value:10.2f} {unit}{note}")


def _train_rate(batch: int, crop: int, steps: int, threads: int) -> float:
    """Images/s consumed by training steps of the tiny preset (forward, backward, Adam)."""
    from gruunet_edu.models import GRUUNetConfig
    from gruunet_edu.models.gruunet import GRUUNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GRUUNet(GRUUNetConfig.preset("tiny"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, crop, crop)
    y = torch.randint(0, 3, (batch, crop, crop))

    def step(_: int) -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return batch * _rate(step, steps, warmup=1)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, no training")
    parser.add_argument("--size", type=int, default=256, help="generated image side")
    parser.add_argument("--crop", type=int, default=128, help="training crop side")
    parser.add_argument("--pool", type=int, default=64, help="pre-generated images")
    parser.add_argument("--batch", type=int, default=8, help="training batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the data part")
    parser.add_argument("--train-steps", type=int, default=None, help="timed training steps")
    parser.add_argument(
        "--train-rate", type=float, default=None, help="state the training images/s instead"
    )
    args = parser.parse_args(argv)
    n = 5 if args.quick else 40
    pool = min(args.pool, 4) if args.quick else args.pool
    train_steps = args.train_steps if args.train_steps is not None else (0 if args.quick else 3)
    torch.set_num_threads(args.threads)
    results: dict[str, float] = {}

    print(
        f"bench_data: {platform.machine()}, torch {torch.__version__}, data threads {args.threads}"
    )

    results["generate"] = _rate(lambda i: make_nuclei(i, size=args.size), n)
    _line(f"raw make_nuclei {args.size}x{args.size}", results["generate"])

    start = time.perf_counter()
    common = dict(size=args.size, seed=0, crop=args.crop, augment=True)
    pooled = SyntheticNucleiDataset(n=10_000, pool=pool, **common)
    results["pool_build_s"] = time.perf_counter() - start
    _line(f"build a pool of {pool} images", results["pool_build_s"], "s")

    results["item_pool"] = _rate(lambda i: pooled[i], 10 * n)
    _line(f"item: crop {args.crop} + augment, from the pool", results["item_pool"])
    lazy = SyntheticNucleiDataset(n=10_000, **common)
    results["item_fly"] = _rate(lambda i: lazy[i], n)
    _line(f"item: crop {args.crop} + augment, on the fly", results["item_fly"])
    whole = SyntheticNucleiDataset(n=10_000, size=args.size, seed=0, augment=True, pool=pool)
    results["item_whole"] = _rate(lambda i: whole[i], 4 * n)
    _line(f"item: whole {args.size} + augment, from the pool", results["item_whole"])

    settings = TrainConfig(steps=10_000, batch_size=args.batch, crop=args.crop, num_workers=0)
    batches = train_batches(pooled, settings, start=0, device=torch.device("cpu"))
    results["loader"] = args.batch * _rate(lambda i: next(batches), max(2, n // 2))
    _line(f"training batches of {args.batch}, 0 workers, pool", results["loader"])

    if args.train_rate is not None:
        results["train"] = args.train_rate
        source = "stated"
    elif train_steps > 0:
        results["train"] = _train_rate(args.batch, args.crop, train_steps, threads=2)
        source = f"measured, {train_steps} steps, 2 threads"
    else:
        source = ""
    if "train" in results:
        _line(
            f"tiny training step, batch {args.batch} x {args.crop}^2",
            results["train"],
            note=f" ({source})",
        )
        ratio = results["loader"] / results["train"]
        results["headroom"] = ratio
        verdict = "keeps up" if ratio > 1 else "is the bottleneck"
        print(f"data/training ratio: {ratio:.0f}x: the data pipeline {verdict}")
        overhead = 100 * results["train"] / results["loader"]
        print(f"data time per training step: about {overhead:.1f}% of the step (num_workers=0)")
    return results


if __name__ == "__main__":
    main()
