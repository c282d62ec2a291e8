"""Speed of a GRUU-Net training step on CPU: the blog's network against the ``paper`` preset.

One run prints, for every row, the forward FLOPs (``torch.utils.flop_counter``), the parameter
count and the median time of a full training step (forward, cross-entropy, backward, Adam step),
then how many times faster ``paper`` is than ``blog``. Extra rows switch one lever at a time, to
show what each is worth:

- ``paper, project_before_upsample=False``: the blog's 1x1 keeping all channels before
  up-sampling (the FLOPs lever);
- ``paper, fused_gru=False``: the readable ConvGRU (six convolutions instead of three);
- ``paper, state_downsample="bilinear"``: the blog's down-sampling of the state;
- ``channels_last`` on or off for both presets.

Rows are timed round-robin (one step of every row per repeat) so that the load of a shared
machine spreads over all rows alike. Usage::

    python benchmarks/bench_model.py                  # batch 2 of 256 x 256, 3 repeats
    python benchmarks/bench_model.py --repeats 5 --size 128 --batch 4
    python benchmarks/bench_model.py --quick          # smoke test: tiny sizes, one repeat
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from gruunet_edu.models import GRUUNet, GRUUNetConfig, count_flops, count_parameters  # noqa: E402


@dataclass
class Row:
    """One configuration to time: a preset, field overrides and the memory format."""

    label: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = False
    bf16: bool = False  # bfloat16 autocast (fast on CPUs with AMX / AVX512-BF16)


ROWS: tuple[Row, ...] = (
    Row("blog", "blog"),
    Row("paper", "paper"),
    Row("blog, channels_last", "blog", channels_last=True),
    Row("paper, channels_last", "paper", channels_last=True),
    Row("paper, fused_gru=False", "paper", {"fused_gru": False}),
    Row("paper, project_before_upsample=False", "paper", {"project_before_upsample": False}),
    Row("paper, state_downsample=bilinear", "paper", {"state_downsample": "bilinear"}),
    Row("paper, bf16 autocast", "paper", bf16=True),
)


def narrowed(config: GRUUNetConfig, divisor: int) -> GRUUNetConfig:
    """The config with every channel width divided by ``divisor`` (at least 1 channel)."""
    if divisor == 1:
        return config

    def div(w: int) -> int:
        return max(1, w // divisor)

    return config.replace(
        hidden_channels=div(config.hidden_channels),
        encoder_widths=tuple(div(w) for w in config.encoder_widths),
        decoder_widths=tuple(div(w) for w in config.decoder_widths),
        growth_rate=div(config.growth_rate),
    )


@functools.cache
def _forward_flops(config: GRUUNetConfig, batch: int, size: int) -> int:
    with torch.device("meta"):  # shapes only: no memory, no compute
        model = GRUUNet(config)
    return count_flops(model, size=size, batch=batch)


def forward_flops(config: GRUUNetConfig, batch: int, size: int) -> int:
    """FLOPs of one forward pass (multiply-add = 2), counted on the ``meta`` device.

    The fused and the readable ConvGRU do the same FLOPs, so both share one count.
    """
    return _forward_flops(config.replace(fused_gru=True), batch, size)


class StepTimer:
    """A model, an Adam optimizer and a fixed batch; ``step()`` times one training step."""

    def __init__(
        self, row: Row, batch: int, size: int, width_divisor: int = 1, num_classes: int = 2
    ) -> None:
        self.row = row
        self.config = narrowed(
            GRUUNetConfig.preset(
                row.preset, in_channels=1, num_classes=num_classes, **row.overrides
            ),
            width_divisor,
        )
        torch.manual_seed(0)
        self.model = GRUUNet(self.config).train()
        self.x = torch.rand(batch, 1, size, size)
        self.target = torch.randint(0, num_classes, (batch, size, size))
        if row.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.cpu_times: list[float] = []  # CPU time of this process (all its threads)
        self.wall_times: list[float] = []

    def step(self, record: bool = True) -> float:
        """Forward, cross-entropy loss, backward, Adam step; returns the seconds taken."""
        start, start_cpu = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.row.bf16):
            logits = self.model(self.x)  # (B, classes, H, W)
        loss = F.cross_entropy(logits.float(), self.target)
        loss.backward()
        self.optimizer.step()
        cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
        if not torch.isfinite(loss):
            raise RuntimeError(f"{self.row.label}: loss is not finite")
        if record:
            self.cpu_times.append(cpu)
            self.wall_times.append(wall)
        return cpu


def run(
    rows: tuple[Row, ...],
    batch: int,
    size: int,
    repeats: int,
    warmup: int,
    width_divisor: int = 1,
) -> list[dict[str, Any]]:
    """Time every row round-robin; one dict per row with flops, params and step times."""
    timers = [StepTimer(row, batch, size, width_divisor) for row in rows]
    for _ in range(warmup):
        for timer in timers:
            timer.step(record=False)
    for _ in range(repeats):
        for timer in timers:
            timer.step()
    return [
        {
            "label": timer.row.label,
            "preset": timer.row.preset,
            "gflops": forward_flops(timer.config, batch, size) / 1e9,
            "params": count_parameters(timer.model),
            "cpu_s": statistics.median(timer.cpu_times),
            "wall_s": statistics.median(timer.wall_times),
            "cpu_times_s": list(timer.cpu_times),
            "wall_times_s": list(timer.wall_times),
        }
        for timer in timers
    ]


def format_report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The table and the speed ratios, as printed by ``main``."""
    narrow = f", widths / {args.width_divisor}" if args.width_divisor > 1 else ""
    lines = [
        f"GRUU-Net training step (forward, cross-entropy, backward, Adam) on CPU: batch "
        f"{args.batch} x 1 x {args.size} x {args.size}, 2 classes{narrow}; median of "
        f"{args.repeats} step(s) per row after {args.warmup} warm-up step(s), rows round-robin",
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{os.cpu_count()} logical CPU(s), {platform.machine()}",
        "cpu s: CPU time of this process (robust to other users of the machine); "
        "wall s: elapsed time",
        "",
        f"{'configuration':<38} {'fwd GFLOP':>9} {'params':>10} {'cpu s':>8} {'wall s':>8} "
        f"{'vs blog (cpu)':>13}",
    ]
    blog = next(r for r in results if r["label"] == "blog")
    for r in results:
        lines.append(
            f"{r['label']:<38} {r['gflops']:>9.1f} {r['params']:>10,} {r['cpu_s']:>8.3f} "
            f"{r['wall_s']:>8.3f} {blog['cpu_s'] / r['cpu_s']:>12.2f}x"
        )
    by_label = {r["label"]: r for r in results}

    def ratio(slow: str, fast: str) -> str:
        a, b = by_label.get(slow), by_label.get(fast)
        if a is None or b is None:
            return "n/a"
        return f"{a['cpu_s'] / b['cpu_s']:.2f}x ({a['wall_s'] / b['wall_s']:.2f}x wall)"

    paper = by_label["paper"]
    lines += [
        "",
        f"forward FLOPs, blog / paper: {blog['gflops'] / paper['gflops']:.2f}x",
        f"paper vs blog, same memory format (NCHW): {ratio('blog', 'paper')} less time per step",
        f"paper with channels_last vs the blog's code: {ratio('blog', 'paper, channels_last')}",
        f"both channels_last: {ratio('blog, channels_last', 'paper, channels_last')}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per row (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per row first")
    parser.add_argument("--size", type=int, default=256, help="image height and width")
    parser.add_argument("--batch", type=int, default=2, help="images per step")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--width-divisor", type=int, default=1, help="divide every width (smoke tests)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: batch 2 of 32 x 32, widths / 8, one step per row, one thread",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.repeats, args.warmup, args.width_divisor = 32, 2, 1, 0, 8
        args.threads = 1 if args.threads is None else args.threads
    if args.size % 32:
        parser.error("--size must be a multiple of 32 (the blog and paper presets have 5 scales)")
    if args.repeats < 1 or args.batch < 1 or args.warmup < 0 or args.width_divisor < 1:
        parser.error("--repeats, --batch and --width-divisor must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark, print the report and return the per-row results."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    results = run(ROWS, args.batch, args.size, args.repeats, args.warmup, args.width_divisor)
    print(format_report(results, args), flush=True)
    return results


if __name__ == "__main__":
    main()
