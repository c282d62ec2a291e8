"""Post-processing benchmark: peak memory and time of probabilities -> instances on large images.

    python benchmarks/bench_postprocess.py                  # 8192 x 8192 px, tiled (default)
    python benchmarks/bench_postprocess.py --size 2048 --whole   # the former whole-image pass
    python benchmarks/bench_postprocess.py --quick          # smoke test (seconds)

A (3, N, N) float32 probability map is made from synthetic nuclei labels (the three-class target,
Gaussian-smoothed so edges are soft as a network's are) and saved to a temporary .npy file. A
fresh Python process then loads it (that alone is 12 N^2 bytes: 805 MB at 8192^2, what a tiled
prediction hands over) and runs ``probabilities_to_instances``; the script reports that process's
peak resident memory (``ru_maxrss``), the memory before post-processing, the time, and the number
of objects found against the number drawn. Timings depend on what else runs on the machine.
Goal: an 8192^2 image stays under about 2 GB (the whole-image pass needed 8.5 GB and 1000 s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK = 1024  # the labels are generated in blocks of this size (bounded memory while making them)


def make_probabilities(size: int, seed: int, path: Path) -> int:
    """Write soft 3-class probabilities of synthetic nuclei (3, size, size) to `path` (.npy);
    returns the number of nuclei drawn."""
    from scipy import ndimage

    from gruunet_edu.data import make_nuclei
    from gruunet_edu.data.targets import three_class

    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(3, size, size))
    count = 0
    for by in range(0, size, BLOCK):
        for bx in range(0, size, BLOCK):
            h, w = min(BLOCK, size - by), min(BLOCK, size - bx)
            _, labels = make_nuclei((seed, by, bx), size=(h, w))
            count += int(labels.max())
            classes = three_class(labels)
            for k in range(3):
                soft = ndimage.gaussian_filter((classes == k).astype(np.float32), 0.7)
                out[k, by : by + h, bx : bx + w] = soft
            block = out[:, by : by + h, bx : bx + w]
            block /= block.sum(0, keepdims=True)
    out.flush()
    return count


def _child(path: str, tile: int | None, overlap: int) -> None:
    """Runs in a fresh process: load, post-process, print one JSON line."""
    import resource

    from gruunet_edu.evaluation.postprocess import probabilities_to_instances

    probs = np.load(path)  # (3, N, N) float32, in memory
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    start = time.perf_counter()
    labels = probabilities_to_instances(probs, tile=tile, overlap=overlap)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = dict(before_mib=before, peak_mib=peak, seconds=seconds, objects=int(labels.max()))
    print(json.dumps(result))


def benchmark(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="image side (px)")
    parser.add_argument("--tile", type=int, default=1024, help="tile side of the post-processing")
    parser.add_argument("--overlap", type=int, default=96, help="context around every tile (px)")
    parser.add_argument("--whole", action="store_true", help="no tiling (the former behaviour)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: 600 px, 256 px tiles")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.tile, args.overlap = 600, 256, 64
    tile = None if args.whole else args.tile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probs.npy"
        start = time.perf_counter()
        drawn = make_probabilities(args.size, args.seed, path)
        made = time.perf_counter() - start
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import bench_postprocess as b; "
            "b._child(sys.argv[2], None if sys.argv[3] == 'None' else int(sys.argv[3]), "
            "int(sys.argv[4]))"
        )
        here = str(Path(__file__).resolve().parent)
        run = subprocess.run(
            [sys.executable, "-c", code, here, str(path), str(tile), str(args.overlap)],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"post-processing process failed:\n{run.stderr[-2000:]}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
    mode = "whole image" if tile is None else f"tiles of {tile} px, overlap {args.overlap} px"
    print(
        f"{args.size} x {args.size} px ({mode}): peak RSS {result['peak_mib']:.0f} MiB "
        f"(probabilities loaded: {result['before_mib']:.0f} MiB), {result['seconds']:.1f} s; "
        f"{result['objects']} objects found, {drawn} drawn (map made in {made:.1f} s)"
    )
    return {**result, "drawn": drawn, "size": args.size, "tile": tile}


def main(argv: list[str] | None = None) -> int:
    benchmark(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
