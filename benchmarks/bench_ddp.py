"""Data-parallel training speed: images/s of the training loop with 1, 2, ... processes.

Launches ``torchrun --standalone --nproc_per_node=N`` on this script for each N and times the
steps after a warm-up (``train`` on synthetic nuclei, no validation, no checkpoint). On the CPU
the processes share the machine's cores (Gloo; one thread each unless ``--threads``), so expect
little gain on 2 cores; with CUDA every process drives its own GPU (NCCL). Usage:

    python benchmarks/bench_ddp.py                       # CPU, 1 and 2 processes, tiny preset
    python benchmarks/bench_ddp.py --device cuda --preset paper --procs 1 2 4 --batch 16
    python benchmarks/bench_ddp.py --quick               # a few steps (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def worker(args: argparse.Namespace) -> None:
    """One process of a torchrun job: train ``warmup + steps`` steps; rank 0 writes images/s."""
    from gruunet_edu.models import GRUUNetConfig, build_model
    from gruunet_edu.training import recipe, set_seed, synthetic_data, train

    torch.set_num_threads(args.threads)
    config = recipe(
        args.preset,
        steps=2 * args.steps,
        eval_interval=args.steps,  # rows at the end of the warm-up and at the end
        batch_size=args.batch,
        crop=args.crop,
        device=args.device,
        progress=False,
        verbose=False,
    )
    set_seed(0)
    model = build_model(GRUUNetConfig.preset(args.preset))
    train_set, _ = synthetic_data(crop=args.crop, seed=0, pool=8)
    history = train(model, train_set, None, config)
    if int(os.environ.get("RANK", "0")) == 0:
        seconds = history.time[1] - history.time[0]
        Path(args.result).write_text(
            json.dumps({"images_per_s": args.steps * args.batch / seconds})
        )


def launch(n: int, args: argparse.Namespace, result: Path) -> float:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={n}", __file__, "--worker", "--result", str(result)]
    command += ["--preset", args.preset, "--steps", str(args.steps), "--batch", str(args.batch)]
    command += ["--crop", str(args.crop), "--device", args.device, "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(command, env=env, check=True)
    return json.loads(result.read_text())["images_per_s"]


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="process counts")
    parser.add_argument("--preset", default="tiny", help="model preset (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after as many warm-up)")
    parser.add_argument("--batch", type=int, default=8, help="global batch (all processes)")
    parser.add_argument("--crop", type=int, default=128, help="training crop side")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--quick", action="store_true", help="3 steps of 64^2 crops")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.crop = 3, 64
    if args.worker:
        worker(args)
        return {}
    print(
        f"bench_ddp: {platform.machine()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"device {args.device}, preset '{args.preset}', global batch {args.batch} x "
        f"{args.crop}^2, {args.steps} timed steps, {args.threads} thread(s) per process"
    )
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.procs:
            rates[n] = launch(n, args, Path(tmp) / f"rate-{n}.json")
            speedup = rates[n] / rates[args.procs[0]]
            print(f"{n} process(es): {rates[n]:8.1f} images/s ({speedup:.2f}x)")
    return rates


if __name__ == "__main__":
    main()
